"""name_pinyin's per-character fast path equals pypinyin's lazy_pinyin on every name it may see."""

from __future__ import annotations

import itertools
import random

import pytest
from pypinyin.constants import PHRASES_DICT, PINYIN_DICT

from datahub.generate import names as gen
from datahub.privacy.normalise import _contains_phrase, name_pinyin, name_pinyin_reference


def _generator_names() -> list[str]:
    """Every name the generator can produce: each surname with each given name of every era."""
    given: set[str] = set()
    for table in (gen._SINGLE, gen._FIRST, gen._SECOND):  # noqa: SLF001 - the generator's pools
        for male, female in table.values():
            given.update(male)
            given.update(female)
    pairs = {a + b for era in gen._FIRST for sex in (0, 1)  # noqa: SLF001
             for a in gen._FIRST[era][sex] for b in gen._SECOND[era][sex]}  # fmt: skip
    return [s + g for s in gen.SURNAMES for g in sorted(given | pairs)]


def test_every_generator_name_matches_pypinyin() -> None:
    mismatched = [n for n in _generator_names() if name_pinyin(n) != name_pinyin_reference(n)]
    # counts only in the message: names are identifiers
    assert not mismatched, f"{len(mismatched)} generator names differ"


def test_random_and_phrase_bearing_strings_match_pypinyin() -> None:
    rng = random.Random(6)
    chars = [chr(cp) for cp in PINYIN_DICT if 0x4E00 <= cp <= 0x9FFF]
    phrases = [p for p in itertools.islice(PHRASES_DICT, 0, None, 97) if 2 <= len(p) <= 4]
    samples = ["".join(rng.choices(chars, k=rng.randint(1, 6))) for _ in range(4000)]
    # phrases inside names, polyphonic surnames, middle dots, latin and digits mixed in
    samples += [
        rng.choice(chars) + p + rng.choice(chars)
        for p in rng.sample(phrases, min(400, len(phrases)))
    ]
    samples += [
        "单雄信",
        "曾国藩",
        "吕布",
        "阿卜杜·热西提",
        "张伟A1",
        "欧阳娜娜",
        "朴 智",
        "乐乐",
        "重庆",
    ]
    assert any(_contains_phrase(s) for s in samples) and not all(
        _contains_phrase(s) for s in samples
    )
    bad = sum(name_pinyin(s) != name_pinyin_reference(s) for s in samples)
    assert bad == 0, f"{bad} of {len(samples)} strings differ"


@pytest.mark.parametrize(
    ("name", "expected"), [("张伟", "zhangwei"), ("吕布", "lvbu"), ("Li Na", "lina")]
)
def test_known_readings(name: str, expected: str) -> None:
    assert name_pinyin(name) == expected

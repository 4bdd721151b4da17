"""Vectorised clean_strings / normalise_ids / normalise_phones equal their per-value references.

The fast paths pass values already in canonical form through (or compute check digit, birth
date, sex and carrier prefix in numpy) and hand everything else to the per-value reference
functions. These tests compare fast and reference results — dtype, index and every value —
over every file in ``sample_sources/`` and over generated adversarial values. Assertion
messages name positions and counts only, never values (they are identifiers).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datahub.identifiers import ALL_MOBILE_PREFIXES, id_check_char, real_dates
from datahub.privacy import normalise as nm
from datahub.sources import parse
from datahub.sources.contracts import Feed, feed_for_file
from datahub.sources.reader import FileRejected, iter_chunks, read_header

SAMPLES = Path(__file__).resolve().parents[2] / "sample_sources"


def _code_points(ranges: tuple[tuple[int, int], ...]) -> set[int]:
    return {c for lo, hi in ranges for c in range(lo, hi + 1)}


def test_whitespace_ranges_are_exactly_str_isspace() -> None:
    python_ws = {c for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert _code_points(parse.PY_WHITESPACE_RANGES) == python_ws
    # and exactly what str.strip() removes
    stripped = {c for c in range(sys.maxunicode + 1) if (chr(c) + "a" + chr(c)).strip() == "a"}
    assert stripped == python_ws


def test_fullwidth_ranges_are_exactly_the_translated_code_points() -> None:
    assert _code_points(parse.FULLWIDTH_RANGES) == set(parse._FULLWIDTH)


def test_real_dates_matches_datetime_date() -> None:
    import datetime as dt

    years = np.array([0, 1, 4, 100, 400, 1900, 1999, 2000, 2024, 2100, 9999, 10000])
    months = np.arange(0, 14)
    days = np.arange(0, 33)
    y, m, d = (a.ravel() for a in np.meshgrid(years, months, days, indexing="ij"))

    def ok(yy: int, mm: int, dd: int) -> bool:
        try:
            dt.date(yy, mm, dd)
        except ValueError:
            return False
        return True

    expected = np.array([ok(*t) for t in zip(y.tolist(), m.tolist(), d.tolist(), strict=True)])
    assert (real_dates(y, m, d) == expected).all()


# ------------------------------------------------------------------ comparison


def _same(label: str, fast: pd.Series, ref: pd.Series) -> None:
    """assert_series_equal, re-raised with positions instead of values."""
    try:
        pd.testing.assert_series_equal(fast, ref, check_exact=True)
    except AssertionError:
        if fast.dtype != ref.dtype or not fast.index.equals(ref.index):
            detail = f"dtype {fast.dtype!r} vs {ref.dtype!r}, index equal: {fast.index.equals(ref.index)}"
        else:
            a, b = fast.to_numpy(dtype=object), ref.to_numpy(dtype=object)
            diff = [
                i for i in range(len(a)) if not (a[i] == b[i] or (pd.isna(a[i]) and pd.isna(b[i])))
            ]
            detail = f"{len(diff)} differing rows, first positions {diff[:10]}"
        raise AssertionError(f"{label}: fast != reference ({detail})") from None


def _check_clean(label: str, s: pd.Series) -> None:
    _same(f"{label} clean_strings", parse.clean_strings(s), parse.clean_strings_reference(s))


def _check_ids(label: str, s: pd.Series) -> None:
    fast, ref = nm.normalise_ids(s), nm.normalise_ids_reference(s)
    for field in ("value", "status", "birth_date", "sex", "birth_year"):
        _same(f"{label} ids.{field}", getattr(fast, field), getattr(ref, field))


def _check_phones(label: str, s: pd.Series) -> None:
    fast, ref = nm.normalise_phones(s), nm.normalise_phones_reference(s)
    for field in ("value", "kind"):
        _same(f"{label} phones.{field}", getattr(fast, field), getattr(ref, field))


# -------------------------------------------------------------- sample sources


def _sample_files() -> Iterator[tuple[Feed, Path]]:
    for dept in sorted(p for p in SAMPLES.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for path in sorted(dept.glob("*.csv")):
            feed, _ = feed_for_file(dept.name, path.name)
            yield feed, path


def _sample_columns() -> Iterator[tuple[str, Feed, pd.Series]]:
    for feed, path in _sample_files():
        try:
            header = read_header(path, feed)
            chunks = list(iter_chunks(path, feed, header))
        except FileRejected:
            continue  # a deliberately broken file: nothing typed or normalised
        if not chunks:
            continue
        frame = pd.concat(chunks, ignore_index=True)
        for col in feed.columns:
            if col.name in frame.columns:
                yield f"{path.parent.name}/{path.name}:{col.name}", feed, frame[col.name]


def test_sample_sources_every_column_fast_equals_reference() -> None:
    checked = {"clean": 0, "id_number": 0, "phone": 0}
    for label, feed, raw in _sample_columns():
        _check_clean(label, raw)
        checked["clean"] += 1
        role = next(c.role for c in feed.columns if c.name == raw.name)
        check: Callable[[str, pd.Series], None] | None = {
            "id_number": _check_ids,
            "phone": _check_phones,
        }.get(role or "")
        if check is not None:
            check(label + " (raw)", raw)
            check(label + " (cleaned)", parse.clean_strings(raw))  # what the pipeline passes
            checked[str(role)] += 1
    # the sample really covers what this test claims to compare
    assert checked["clean"] > 100 and checked["id_number"] > 10 and checked["phone"] > 10, checked


# ------------------------------------------------------------ adversarial input

_WS = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
_ID_SEPARATORS = [" ", "-", "_", ".", "·", "/", "\u3000", "\t", "－"]
_PHONE_SEPARATORS = [" ", "-", "_", ".", "(", ")", "/", "（", "）", "\u3000"]
_ODD = ["\U00020000", "😀", "\u00e9", "e\u0301", "Ⅻ", "ｘ", "Ｘ", "\u200b", "\x00", "\n", "\ufeff"]
_FULLWIDTH_DIGITS = "０１２３４５６７８９"
_BIRTHS = [
    "19900101",
    "19990230",  # 30 February
    "20000229",  # leap (divisible by 400)
    "19000229",  # not leap (divisible by 100)
    "20240229",
    "20230229",
    "00000101",  # year 0
    "00010101",
    "99991231",
    "20001301",
    "20000100",
    "20000431",
    "19991231",
]


def _id18(rng: random.Random) -> str:
    first17 = "511181" + rng.choice(_BIRTHS) + f"{rng.randint(0, 999):03d}"
    check = id_check_char(first17)
    if rng.random() < 0.3:  # wrong check character
        check = rng.choice("0123456789Xx")
    elif check == "X" and rng.random() < 0.5:
        check = "x"
    return first17 + check


def _id15(rng: random.Random) -> str:
    return "511181" + rng.choice(_BIRTHS)[2:] + f"{rng.randint(0, 999):03d}"


def _mobile(rng: random.Random) -> str:
    prefix = rng.choice([*sorted(ALL_MOBILE_PREFIXES), "120", "100", "199", "144", "110"])
    return prefix + "".join(rng.choice("0123456789") for _ in range(8))


def _landline(rng: random.Random) -> str:
    area = rng.choice(["0833", "010", "028", "0", "0833-", ""])
    return area + "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 9)))


def _mangle(rng: random.Random, s: str, separators: list[str]) -> str:
    """Randomly spoil a canonical value the way exports do."""
    r = rng.random()
    if r < 0.45:
        return s  # canonical: the fast path must take it and agree
    chars = list(s)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        pos = rng.randint(0, len(chars))
        if op == 0:
            chars.insert(pos, rng.choice(separators))
        elif op == 1 and chars:
            i = rng.randrange(len(chars))
            if chars[i].isdigit() and chars[i].isascii():
                chars[i] = _FULLWIDTH_DIGITS[int(chars[i])]
        elif op == 2:
            chars.insert(pos, rng.choice(_ODD))
        elif op == 3 and chars:
            del chars[rng.randrange(len(chars))]
        elif op == 4:
            chars.insert(pos, rng.choice("0123456789Xx"))
        elif op == 5:
            chars.insert(0, "".join(rng.choices(_WS, k=rng.randint(1, 2))))
        else:
            chars.append("".join(rng.choices(_WS, k=rng.randint(1, 2))))
    return "".join(chars)


def _adversarial(seed: int, n: int) -> list[object]:
    rng = random.Random(seed)
    makers: list[tuple[Callable[[random.Random], str], list[str]]] = [
        (_id18, _ID_SEPARATORS),
        (_id15, _ID_SEPARATORS),
        (_mobile, _PHONE_SEPARATORS),
        (_landline, _PHONE_SEPARATORS),
    ]
    out: list[object] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.04:
            out.append(rng.choice([None, np.nan, pd.NA]))
        elif r < 0.08:
            out.append("".join(rng.choices(_WS, k=rng.randint(0, 3))))  # empty / whitespace-only
        elif r < 0.12:
            prefix = rng.choice(["+86", "0086", "86", "+86 ", "86-", "0086-"])
            out.append(_mangle(rng, prefix + _mobile(rng), _PHONE_SEPARATORS))
        elif r < 0.15:
            # plain text, fullwidth letters, CJK and non-BMP characters
            alphabet = "abcXYZ张伟·ＡＢＣ！～\U00020001😀 \u3000"
            out.append("".join(rng.choices(alphabet, k=rng.randint(1, 8))))
        else:
            make, seps = rng.choice(makers)
            out.append(_mangle(rng, make(rng), seps))
    return out


def _series_variants(values: list[object]) -> Iterator[tuple[str, pd.Series]]:
    obj = pd.Series(values, dtype=object)
    yield "object", obj
    # pandas 3 "str" dtype (NaN for missing), and a shuffled, non-default index
    yield "str", pd.Series([None if v is pd.NA else v for v in values], dtype="str")
    shuffled = obj.sample(frac=1.0, random_state=3)
    yield "shuffled-index", shuffled.set_axis(shuffled.index + 1000)
    yield "empty", obj.iloc[:0]


@pytest.mark.parametrize("seed", [1, 2])
def test_adversarial_values_mostly_distinct(seed: int) -> None:
    values = _adversarial(seed, 12_000)
    for label, s in _series_variants(values):
        _check_clean(f"seed {seed} {label}", s)
        _check_ids(f"seed {seed} {label}", s)
        _check_phones(f"seed {seed} {label}", s)
        cleaned = parse.clean_strings(s)
        _check_ids(f"seed {seed} {label} cleaned", cleaned)
        _check_phones(f"seed {seed} {label} cleaned", cleaned)


def test_adversarial_values_repeating() -> None:
    """Few distinct values, many rows: clean_strings takes its per-distinct path."""
    pool = _adversarial(5, 300)
    rng = random.Random(9)
    values = [rng.choice(pool) for _ in range(10_000)]
    for label, s in _series_variants(values):
        _check_clean(label, s)
        _check_ids(label, s)
        _check_phones(label, s)


def test_trailing_newline_and_embedded_controls_are_not_canonical() -> None:
    # RE2's $ must not match before a final newline the way Python's does
    good = "511181199001011234"
    good = good[:17] + id_check_char(good[:17])
    values = [good + "\n", "\n" + good, good[:9] + "\n" + good[9:], "13812345678\n", "x\n", "x"]
    s = pd.Series(values * 1500, dtype=object)  # > 2000 rows, few distinct
    _check_clean("newlines", s)
    _check_ids("newlines", s)
    _check_phones("newlines", s)
    distinct = pd.Series([f"{v}{i}" for i, v in enumerate(values * 1000)], dtype=object)
    _check_clean("newlines distinct", distinct)


@pytest.mark.parametrize(
    "values",
    [
        [1, True, 1.0, "1", None],  # equal-hashing non-strings collapse in factorize
        [b"13812345678", "13812345678", None],  # bytes: pyarrow would accept them as text
        ["\ud800", "13812345678"],  # lone surrogate: not UTF-8 encodable
        [pd.NaT, "13812345678"],
        [np.float32("nan"), "511181199001011234"],
    ],
)
def test_non_string_cells_take_the_reference_path(values: list[object]) -> None:
    for s in (pd.Series(values, dtype=object), pd.Series(values * 1500, dtype=object)):
        _check_clean("mixed", s)
        _check_ids("mixed", s)
        _check_phones("mixed", s)

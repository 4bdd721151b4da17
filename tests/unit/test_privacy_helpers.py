"""Synthetic identifiers and masked reprs for the privacy tests (no real person's data)."""

from __future__ import annotations

import random
from pathlib import Path

from datahub.config import Paths
from datahub.identifiers import id_check_char
from datahub.privacy.keys import Keyring, init_keys, load_keyring

REGION = "511181"  # 峨眉山市


def make_id(birth: str = "19900101", seq: int = 123, region: str = REGION) -> str:
    """A valid synthetic 18-digit ID number."""
    first17 = f"{region}{birth}{seq:03d}"
    return first17 + id_check_char(first17)


def random_ids(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        birth = f"{rng.randint(1940, 2010)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        out.append(make_id(birth, rng.randint(0, 999)))
    return out


def mask(value: object) -> str:
    """Masked repr for assertion messages: keep the first 4 and last 1 characters."""
    s = str(value)
    if len(s) <= 5:
        return "*" * len(s)
    return s[:4] + "*" * (len(s) - 5) + s[-1]


def make_keyring(home: Path) -> Keyring:
    """A fresh key file under ``home`` (a test's tmp_path), loaded back."""
    paths = Paths(home)
    init_keys(paths, home / "keys" / "master.key")
    return load_keyring(paths, home / "keys" / "master.key")

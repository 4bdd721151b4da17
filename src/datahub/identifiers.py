"""Check digits and shapes of Chinese identifiers (pure functions, no I/O).

* Resident ID number, GB 11643-1999: 6-digit region, YYYYMMDD birth date,
  3-digit sequence (odd = male), ISO 7064 MOD 11-2 check character.
* Old 15-digit ID: region, YYMMDD, sequence, no check character (all born 19xx).
* Unified social credit code, GB 32100-2015: 18 characters, MOD 31 check.
* Mobile numbers: 11 digits with a carrier prefix.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

ID_WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_MAP = "10X98765432"

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS: tuple[int, ...] = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

#: Mobile prefixes by carrier (2024 allocation).
MOBILE_PREFIXES: dict[str, tuple[str, ...]] = {
    "mobile": (
        "134",
        "135",
        "136",
        "137",
        "138",
        "139",
        "147",
        "150",
        "151",
        "152",
        "157",
        "158",
        "159",
        "172",
        "178",
        "182",
        "183",
        "184",
        "187",
        "188",
        "195",
        "197",
        "198",
    ),
    "unicom": (
        "130",
        "131",
        "132",
        "145",
        "155",
        "156",
        "166",
        "171",
        "175",
        "176",
        "185",
        "186",
        "196",
    ),
    "telecom": ("133", "149", "153", "173", "177", "180", "181", "189", "190", "191", "193", "199"),
    "broadnet": ("192",),
}
ALL_MOBILE_PREFIXES: frozenset[str] = frozenset(p for ps in MOBILE_PREFIXES.values() for p in ps)


def id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_MAP[total % 11]


def id_check_codes(first17: np.ndarray) -> np.ndarray:
    """Vectorised :func:`id_check_char`: ``(n, 17)`` digit values → ``(n,)`` check-character codes.

    Returns the check characters as ASCII codes (``uint8``; ``ord('X')`` for X).
    """
    total = first17.astype(np.int64) @ np.asarray(ID_WEIGHTS, dtype=np.int64)
    return _ID_CHECK_CODES[total % 11]


_ID_CHECK_CODES = np.frombuffer(ID_CHECK_MAP.encode("ascii"), dtype=np.uint8)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def real_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Vectorised: True where ``datetime.date(year, month, day)`` would not raise.

    Proleptic Gregorian calendar, years 1..9999, as :mod:`datetime` has it.
    """
    year, month, day = (np.asarray(a, dtype=np.int64) for a in (year, month, day))
    ok_month = (month >= 1) & (month <= 12)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last_day = _DAYS_IN_MONTH[np.where(ok_month, month, 0)] + (leap & (month == 2))
    return (year >= 1) & (year <= 9999) & ok_month & (day >= 1) & (day <= last_day)


def _birth_date(yyyymmdd: str) -> dt.date | None:
    try:
        return dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


def id18_birth_date(id18: str) -> dt.date | None:
    """Birth date encoded in an 18-digit ID (check digit not verified), or None."""
    if len(id18) != 18 or not id18[:17].isdigit():
        return None
    return _birth_date(id18[6:14])


def is_valid_id18(value: str) -> bool:
    """True for a well-formed 18-character ID with a real birth date and correct check character."""
    if len(value) != 18 or not value[:17].isdigit() or value[17] not in "0123456789X":
        return False
    if id18_birth_date(value) is None:
        return False
    return id_check_char(value[:17]) == value[17]


def id15_to_id18(id15: str) -> str:
    """Convert an old 15-digit ID to its 18-digit form (century 19, computed check character)."""
    if len(id15) != 15 or not id15.isdigit():
        raise ValueError("need exactly 15 digits")
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + id_check_char(first17)


def is_valid_id15(value: str) -> bool:
    """True for 15 digits whose YYMMDD is a real date (19YY)."""
    return len(value) == 15 and value.isdigit() and _birth_date("19" + value[6:12]) is not None


def id18_sex(id18: str) -> str:
    """'M' for an odd sequence digit, 'F' for even."""
    return "M" if int(id18[16]) % 2 == 1 else "F"


def credit_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters."""
    if len(first17) != 17:
        raise ValueError("need exactly 17 characters")
    try:
        total = sum(
            CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True)
        )
    except ValueError as exc:
        raise ValueError("character outside the credit-code alphabet") from exc
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def is_valid_credit_code(value: str) -> bool:
    """True for an 18-character unified social credit code with a correct check character."""
    if len(value) != 18 or any(c not in CREDIT_ALPHABET for c in value):
        return False
    return credit_check_char(value[:17]) == value[17]


def is_mobile(value: str) -> bool:
    """True for an 11-digit number with a known carrier prefix."""
    return len(value) == 11 and value.isdigit() and value[:3] in ALL_MOBILE_PREFIXES

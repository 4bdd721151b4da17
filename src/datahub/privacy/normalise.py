"""Normalisers for identifier columns, vectorised over pandas Series.

Each normaliser works on the *distinct* values of a column (``pd.factorize``)
and maps the results back, because identifiers repeat across records and the
per-value work is Python string handling. Missing input (NA, empty or
whitespace-only strings) yields status ``missing`` and a NA value.

Results never contain the raw input, only normalised values (which are still
identifiers: callers tokenise them and drop them).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np
import pandas as pd

from datahub.identifiers import (
    id15_to_id18,
    id18_birth_date,
    id18_sex,
    is_mobile,
    is_valid_id15,
    is_valid_id18,
)

T = TypeVar("T")

ID_STATUSES = ("valid", "valid_15", "invalid_checksum", "malformed", "missing")
PHONE_KINDS = ("mobile", "landline", "invalid", "missing")
NAME_STATUSES = ("valid", "missing")
USABLE_ID_STATUSES = frozenset({"valid", "valid_15"})

#: Landlines written without an area code belong to the city (峨眉山, Leshan).
LOCAL_AREA_CODE = "0833"

_ID_STRIP = re.compile(r"[\s\-_.·/]+")
_PHONE_STRIP = re.compile(r"[\s\-_.()/（）]+")
_SPACES = re.compile(r"\s+")
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ebef\uf900-\ufaff"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_CJK_ANY = re.compile(rf"[{_CJK}]")
#: Middle dots in minority and foreign names (阿卜杜·热西提) written several ways.
_MIDDLE_DOTS = str.maketrans({"•": "·", "・": "·", "･": "·", "‧": "·", "∙": "·"})


def _map_distinct(values: pd.Series, fn: Callable[[str], T]) -> tuple[np.ndarray, list[T]]:
    """Apply ``fn`` to each distinct non-NA value; return (codes, results per code)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, [fn(str(u)) for u in uniques]


def _take(
    codes: np.ndarray, results: list[object], missing: object, index: pd.Index, dtype: str
) -> pd.Series:
    lookup = pd.array([*results, missing], dtype=dtype)  # type: ignore[call-overload]
    return pd.Series(lookup[codes], index=index, dtype=dtype)


# ----------------------------------------------------------------- ID numbers


@dataclass(frozen=True)
class IdResult:
    """Normalised ID numbers: 18-digit value for usable ones, status, birth date and sex."""

    value: pd.Series  # str, NA unless status is valid / valid_15
    status: pd.Series  # str, one of ID_STATUSES
    birth_date: pd.Series  # datetime64 (date), NA unless usable
    sex: pd.Series  # "M"/"F", NA unless usable

    @property
    def birth_year(self) -> pd.Series:
        return self.birth_date.dt.year.astype("Int64")


def normalise_id_one(raw: str) -> tuple[str | None, str]:
    """One ID number → (18-digit value or None, status)."""
    s = unicodedata.normalize("NFKC", raw)
    s = _ID_STRIP.sub("", s).upper()
    if not s:
        return None, "missing"
    if len(s) == 18 and s[:17].isdigit() and s[17] in "0123456789X":
        if id18_birth_date(s) is None:
            return None, "malformed"
        return (s, "valid") if is_valid_id18(s) else (None, "invalid_checksum")
    if len(s) == 15 and s.isdigit():
        return (id15_to_id18(s), "valid_15") if is_valid_id15(s) else (None, "malformed")
    return None, "malformed"


def _id_details(raw: str) -> tuple[str | None, str, dt.date | None, str | None]:
    value, status = normalise_id_one(raw)
    if value is None:
        return None, status, None, None
    return value, status, id18_birth_date(value), id18_sex(value)


def normalise_ids(values: pd.Series) -> IdResult:
    """Normalise a Series of raw ID numbers (strings, NA allowed)."""
    codes, results = _map_distinct(values, _id_details)
    idx = values.index
    value = _take(codes, [r[0] for r in results], None, idx, "str")
    status = _take(codes, [r[1] for r in results], "missing", idx, "str")
    dates = pd.Series(
        pd.to_datetime(pd.Series([r[2] for r in results] + [None], dtype="object")).to_numpy()[
            codes
        ],
        index=idx,
    )
    sex = _take(codes, [r[3] for r in results], None, idx, "str")
    return IdResult(value, status, dates, sex)


# --------------------------------------------------------------------- phones


@dataclass(frozen=True)
class PhoneResult:
    """Normalised phones: ``13812345678`` or ``0833-5551234``; kind per value."""

    value: pd.Series  # str, NA for invalid / missing
    kind: pd.Series  # str, one of PHONE_KINDS


def normalise_phone_one(raw: str) -> tuple[str | None, str]:
    """One phone number → (normalised value or None, kind)."""
    s = unicodedata.normalize("NFKC", raw).strip()
    if not s:
        return None, "missing"
    s = _PHONE_STRIP.sub("", s)
    if s.startswith("+86"):
        s = s[3:]
    elif s.startswith("0086"):
        s = s[4:]
    elif s.startswith("86") and len(s) == 13:
        s = s[2:]
    if not s.isdigit():
        return None, "invalid"
    if len(s) == 11 and s[0] == "1":
        return (s, "mobile") if is_mobile(s) else (None, "invalid")
    if s[0] == "0" and 10 <= len(s) <= 12:
        # 010 and 02x are three-digit area codes; the rest have four digits
        cut = 3 if s[1] in "12" else 4
        local = s[cut:]
        if 7 <= len(local) <= 8 and local[0] not in "01":
            return f"{s[:cut]}-{local}", "landline"
        return None, "invalid"
    if 7 <= len(s) <= 8 and s[0] not in "01":
        return f"{LOCAL_AREA_CODE}-{s}", "landline"
    return None, "invalid"


def normalise_phones(values: pd.Series) -> PhoneResult:
    """Normalise a Series of raw phone numbers (strings, NA allowed)."""
    codes, results = _map_distinct(values, normalise_phone_one)
    idx = values.index
    return PhoneResult(
        _take(codes, [r[0] for r in results], None, idx, "str"),
        _take(codes, [r[1] for r in results], "missing", idx, "str"),
    )


# ---------------------------------------------------------------------- names


@dataclass(frozen=True)
class NameResult:
    """Normalised names and their toneless pinyin."""

    value: pd.Series  # str, NA when missing
    status: pd.Series  # "valid" / "missing"
    pinyin: pd.Series  # str, NA when missing


def normalise_name_one(raw: str) -> str | None:
    """NFKC, trim, collapse inner spaces, drop spaces between CJK characters."""
    s = unicodedata.normalize("NFKC", raw).translate(_MIDDLE_DOTS)
    s = _SPACES.sub(" ", s).strip()
    s = _CJK_GAP.sub("", s)
    s = re.sub(r"\s*·\s*", "·", s)
    return s or None


@lru_cache(maxsize=200_000)
def name_pinyin(name: str) -> str:
    """Toneless pinyin of a normalised name, lower case, without separators (张伟 → zhangwei)."""
    from pypinyin import lazy_pinyin  # loads its dictionaries: only when names are seen

    if not _CJK_ANY.search(name):
        return re.sub(r"[\s·]+", "", name).lower()
    return re.sub(r"[\s·]+", "", "".join(lazy_pinyin(name))).lower()


def normalise_names(values: pd.Series) -> NameResult:
    """Normalise a Series of raw person names (strings, NA allowed)."""
    codes, results = _map_distinct(values, normalise_name_one)
    idx = values.index
    pinyins = [None if r is None else name_pinyin(r) for r in results]
    return NameResult(
        _take(codes, list(results), None, idx, "str"),
        _take(codes, ["missing" if r is None else "valid" for r in results], "missing", idx, "str"),
        _take(codes, list(pinyins), None, idx, "str"),
    )


def name_dob_values(names: pd.Series, birth_dates: pd.Series) -> pd.Series:
    """``<normalised name>|<YYYY-MM-DD>`` where both exist, else NA (the ``name_dob`` domain)."""
    dates = birth_dates.dt.strftime("%Y-%m-%d")
    both = names.notna() & dates.notna()
    out = pd.Series(pd.NA, index=names.index, dtype="str")
    out[both] = names[both] + "|" + dates[both]
    return out

"""Normalisers for identifier columns, vectorised over pandas Series.

Each normaliser works on the *distinct* values of a column (``pd.factorize``)
and maps the results back, because identifiers repeat across records and the
per-value work is Python string handling. Missing input (NA, empty or
whitespace-only strings) yields status ``missing`` and a NA value.

Results never contain the raw input, only normalised values (which are still
identifiers: callers tokenise them and drop them).

ID numbers and phones have a vectorised fast path for the shapes that dominate
real feeds (18 ASCII digits/X; 11-digit mobiles): for those the per-value
functions would change nothing but case, so check digit, birth date, sex and
carrier prefix are computed in numpy. Every other value takes the per-value
function, which stays the reference (``*_reference``); tests assert equality.
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
import pyarrow as pa
import pyarrow.compute as pc

from datahub.identifiers import (
    ALL_MOBILE_PREFIXES,
    id15_to_id18,
    id18_birth_date,
    id18_sex,
    id_check_codes,
    is_mobile,
    is_valid_id15,
    is_valid_id18,
    real_dates,
)
from datahub.sources.parse import arrow_strings, regex_mask

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


#: pandas 3's default "str" dtype, which :func:`_take` returns.
_STR_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)


def _fixed_width_bytes(strings: pa.StringArray, width: int) -> np.ndarray:
    """The UTF-8 bytes of strings that are all exactly ``width`` bytes, as ``(n, width)`` uint8."""
    n = len(strings)
    if n == 0:
        return np.empty((0, width), dtype=np.uint8)
    _, offsets_buf, data_buf = strings.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1, offset=4 * strings.offset)
    if not (np.diff(offsets) == width).all():
        raise AssertionError("fixed-width fast path got a value of another length")
    data = np.frombuffer(data_buf, dtype=np.uint8)
    return data[offsets[0] : offsets[0] + n * width].reshape(n, width)


def _pick(pool: pa.Array, picks: np.ndarray, index: pd.Index) -> pd.Series:
    """Series (dtype ``str``) of ``pool[picks[i]]``, NA where ``picks[i] < 0``."""
    taken = pc.cast(pc.take(pool, pa.array(picks, mask=picks < 0)), pa.large_string())
    return taken.to_pandas(types_mapper={pa.large_string(): _STR_DTYPE}.get).set_axis(index)


class _Assembly:
    """Per-row picks into a pool of strings: the input values, then values the slow path made.

    Keeps the result in Arrow until the end: building a ``str`` Series from Python
    objects costs more than all the vectorised work.
    """

    def __init__(self, strings: pa.StringArray) -> None:
        self.strings = strings
        self.extra: list[str | None] = []

    def add(self, values: list[str | None]) -> np.ndarray:
        """Append ``values`` to the pool; their picks (-1 for None)."""
        base = len(self.strings) + len(self.extra)
        self.extra.extend(values)
        return np.array(
            [-1 if v is None else base + i for i, v in enumerate(values)], dtype=np.int64
        )

    def series(self, picks: np.ndarray, index: pd.Index) -> pd.Series:
        extra = pa.array(self.extra, type=pa.string())
        return _pick(pa.concat_arrays([self.strings, extra]), picks, index)


def _codes_of(results: list[str], choices: tuple[str, ...]) -> np.ndarray:
    """Positions of ``results`` in ``choices`` (int8)."""
    return np.array([choices.index(r) for r in results], dtype=np.int8)


def _present(strings: pa.StringArray) -> np.ndarray:
    return np.asarray(strings.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


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


#: 18 ASCII characters that NFKC, separator stripping and ``upper()`` leave as they are
#: (but for x → X): only the check digit and birth date decide their status.
_PLAIN_ID18 = r"^[0-9]{17}[0-9Xx]$"
_DIGIT0, _LOWER_X, _UPPER_X = ord("0"), ord("x"), ord("X")


_SEXES = ("M", "F")


def normalise_ids(values: pd.Series) -> IdResult:
    """Normalise a Series of raw ID numbers (strings, NA allowed)."""
    raw = values.to_numpy(dtype=object)
    strings = arrow_strings(raw)
    if strings is None:
        return normalise_ids_reference(values)
    n = len(raw)
    out = _Assembly(strings)
    value = np.full(n, -1, dtype=np.int64)
    status = np.full(n, ID_STATUSES.index("missing"), dtype=np.int8)
    birth = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    sex = np.full(n, -1, dtype=np.int8)

    fast = regex_mask(strings, _PLAIN_ID18)
    rows = np.flatnonzero(fast)
    b = _fixed_width_bytes(pc.filter(strings, pa.array(fast)), 18)
    digits = b[:, :17].astype(np.int64) - _DIGIT0
    last = np.where(b[:, 17] == _LOWER_X, _UPPER_X, b[:, 17])
    year = digits[:, 6:10] @ np.array([1000, 100, 10, 1])
    month = digits[:, 10] * 10 + digits[:, 11]
    day = digits[:, 12] * 10 + digits[:, 13]
    dated = real_dates(year, month, day)
    ok = dated & (id_check_codes(digits) == last)
    status[rows] = np.where(
        dated,
        np.where(ok, ID_STATUSES.index("valid"), ID_STATUSES.index("invalid_checksum")),
        ID_STATUSES.index("malformed"),
    )
    ok_rows = rows[ok]
    lower = b[ok, 17] == _LOWER_X  # 18th character written as x: the value has X
    value[ok_rows[~lower]] = ok_rows[~lower]
    value[ok_rows[lower]] = out.add([v.upper() for v in raw[ok_rows[lower]]])
    months = (year[ok] - 1970) * 12 + month[ok] - 1
    birth[ok_rows] = (
        months.astype("datetime64[M]").astype("datetime64[D]") + (day[ok] - 1)
    ).astype("datetime64[s]")
    sex[ok_rows] = np.where(digits[ok, 16] % 2 == 1, _SEXES.index("M"), _SEXES.index("F"))

    slow = np.flatnonzero(~fast & _present(strings))
    if len(slow):
        codes, results = _map_distinct(pd.Series(raw[slow], dtype=object), _id_details)
        value[slow] = out.add([r[0] for r in results])[codes]
        status[slow] = _codes_of([r[1] for r in results], ID_STATUSES)[codes]
        sex[slow] = np.array([-1 if r[3] is None else _SEXES.index(r[3]) for r in results])[codes]
        dates = np.array(
            [np.datetime64("NaT") if r[2] is None else np.datetime64(r[2], "D") for r in results],
            dtype="datetime64[D]",
        )
        birth[slow] = dates.astype("datetime64[s]")[codes]
    idx = values.index
    return IdResult(
        out.series(value, idx),
        _pick(pa.array(ID_STATUSES), status, idx),
        pd.Series(birth, index=idx),
        _pick(pa.array(_SEXES), sex, idx),
    )


def normalise_ids_reference(values: pd.Series) -> IdResult:
    """Per-distinct-value :func:`normalise_ids` (the reference the fast path must equal)."""
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


#: 11 ASCII digits starting with 1: ``normalise_phone_one`` leaves them as they are and
#: only the carrier prefix decides mobile or invalid.
_PLAIN_MOBILE = r"^1[0-9]{10}$"
_MOBILE_PREFIXES = np.array(sorted(int(p) for p in ALL_MOBILE_PREFIXES))


def normalise_phones(values: pd.Series) -> PhoneResult:
    """Normalise a Series of raw phone numbers (strings, NA allowed)."""
    raw = values.to_numpy(dtype=object)
    strings = arrow_strings(raw)
    if strings is None:
        return normalise_phones_reference(values)
    n = len(raw)
    out = _Assembly(strings)
    value = np.full(n, -1, dtype=np.int64)
    kind = np.full(n, PHONE_KINDS.index("missing"), dtype=np.int8)

    fast = regex_mask(strings, _PLAIN_MOBILE)
    rows = np.flatnonzero(fast)
    b = _fixed_width_bytes(pc.filter(strings, pa.array(fast)), 11)
    prefix = (b[:, :3].astype(np.int64) - _DIGIT0) @ np.array([100, 10, 1])
    mobile = np.isin(prefix, _MOBILE_PREFIXES)
    kind[rows] = np.where(mobile, PHONE_KINDS.index("mobile"), PHONE_KINDS.index("invalid"))
    value[rows[mobile]] = rows[mobile]

    slow = np.flatnonzero(~fast & _present(strings))
    if len(slow):
        codes, results = _map_distinct(pd.Series(raw[slow], dtype=object), normalise_phone_one)
        value[slow] = out.add([r[0] for r in results])[codes]
        kind[slow] = _codes_of([r[1] for r in results], PHONE_KINDS)[codes]
    idx = values.index
    return PhoneResult(out.series(value, idx), _pick(pa.array(PHONE_KINDS), kind, idx))


def normalise_phones_reference(values: pd.Series) -> PhoneResult:
    """Per-distinct-value :func:`normalise_phones` (the reference the fast path must equal)."""
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


_PINYIN_SEPARATORS = re.compile(r"[\s·]+")


@lru_cache(maxsize=200_000)
def name_pinyin(name: str) -> str:
    """Toneless pinyin of a normalised name, lower case, without separators (张伟 → zhangwei)."""
    if not _CJK_ANY.search(name):
        return _PINYIN_SEPARATORS.sub("", name).lower()
    if _contains_phrase(name):
        from pypinyin import lazy_pinyin  # loads its dictionaries: only when names are seen

        text = "".join(lazy_pinyin(name))
    else:
        text = "".join(_char_pinyin(ch) for ch in name)
    return _PINYIN_SEPARATORS.sub("", text).lower()


def name_pinyin_reference(name: str) -> str:
    """:func:`name_pinyin` straight through pypinyin (the reference the fast path is tested on)."""
    from pypinyin import lazy_pinyin

    if not _CJK_ANY.search(name):
        return _PINYIN_SEPARATORS.sub("", name).lower()
    return _PINYIN_SEPARATORS.sub("", "".join(lazy_pinyin(name))).lower()


@lru_cache(maxsize=100_000)  # names use a few thousand distinct characters
def _char_pinyin(ch: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(ch))


def _contains_phrase(name: str) -> bool:
    """True when some run of 2+ characters is a pypinyin phrase (then its segmentation matters).

    Without one, pypinyin's forward maximum matching yields no phrase segment and
    converts character by character (a segment that is not a phrase falls back to
    per-character readings), so joining cached per-character pinyin is exact and
    ~30× cheaper than ``lazy_pinyin`` per name.
    """
    from pypinyin.constants import PHRASES_DICT

    n = len(name)
    return any(name[i:j] in PHRASES_DICT for i in range(n - 1) for j in range(i + 2, n + 1))


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

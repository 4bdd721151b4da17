"""Normalise and type the string cells of a feed chunk (pure pandas, no I/O).

The per-value definitions — :func:`_clean_one` for cleaning, :func:`parse_one`
for typing — are what both prepare engines follow (the SQL engine through
:mod:`datahub.sources.sql`); this module applies them to pandas chunks for the
reference engine.

Every cell is stripped; an empty cell is missing (``None``). Non-identifier
columns are parsed per the contract — the spellings in ``DATETIME_FORMATS``,
``DATE_FORMATS`` and ``MONTH_FORMATS`` (see :func:`parse_one`) — and a cell that
holds text but does not parse is recorded in a ``bad`` mask (row reason
``bad_value``). Identifier columns stay strings: the privacy step normalises
and tokenises them.

Cleaning is vectorised for the common case: cells already in clean form pass
through as they are (picked out by one Arrow regex whose character classes are
exactly Python's ``str.isspace`` set and the fullwidth range), and only the rest
go through the per-value reference :func:`_clean_one`, so the result is the
same as :func:`clean_strings_reference` value for value.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datahub.sources.contracts import (
    DATE_FORMATS,
    DATETIME_FORMATS,
    MONTH_FORMATS,
    Column,
    Feed,
)

#: Fullwidth digits/letters/punctuation (U+FF01..U+FF5E) map to ASCII by a fixed offset.
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

#: Code points for which Python's ``str.isspace`` is true (what ``str.strip()`` removes),
#: as inclusive ranges; a unit test checks this against ``str.isspace`` over all of Unicode.
PY_WHITESPACE_RANGES: tuple[tuple[int, int], ...] = (
    (0x09, 0x0D),
    (0x1C, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)
#: The code points ``_FULLWIDTH`` rewrites, as inclusive ranges.
FULLWIDTH_RANGES: tuple[tuple[int, int], ...] = ((0xFF01, 0xFF5E), (0x3000, 0x3000))


def re2_class(ranges: tuple[tuple[int, int], ...]) -> str:
    """An RE2 character class (``[...]``) matching exactly the given code-point ranges."""
    return "[" + "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in ranges) + "]"


_WS = re2_class(PY_WHITESPACE_RANGES)
#: A cell ``_clean_one`` would change: empty, whitespace at either end, or a fullwidth char.
#: (RE2's ``$`` is the end of the text only, unlike Python's before a final newline.)
_NEEDS_CLEANING = f"^$|^{_WS}|{_WS}$|{re2_class(FULLWIDTH_RANGES)}"


@dataclass
class Typed:
    """A chunk after typing: the typed frame and per-column parse-failure masks."""

    frame: pd.DataFrame
    bad: dict[str, pd.Series]  # column -> True where text did not parse


def _clean_one(v: object) -> str | None:
    t = str(v).translate(_FULLWIDTH).strip()
    return t or None


def clean_strings_reference(s: pd.Series) -> pd.Series:
    """Per-distinct-value :func:`clean_strings` (the reference the fast path must equal)."""
    # clean each distinct value once (codes, categories, dates repeat a lot) and map back
    codes, uniques = pd.factorize(s.to_numpy(dtype=object), use_na_sentinel=True)
    cleaned = np.array([_clean_one(v) for v in uniques] + [None], dtype=object)
    return pd.Series(cleaned[codes], index=s.index, dtype=object)


def arrow_strings(values: np.ndarray) -> pa.StringArray | None:
    """``values`` (object array of ``str`` and missing cells) as an Arrow string array.

    Missing cells (``None``, NaN, ``pd.NA``: what ``pd.factorize`` treats as NA) become
    nulls. Returns None when a cell is neither a ``str`` nor missing, or cannot be UTF-8
    encoded (a lone surrogate): callers then take their per-value reference path.
    """
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return None  # bytes, numbers, NaT, ...: only the reference's str(v) handles them
    try:
        arr = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowException, UnicodeError):
        return None
    return arr if isinstance(arr, pa.StringArray) else None


def regex_mask(strings: pa.StringArray, pattern: str) -> np.ndarray:
    """Boolean numpy mask: True where a non-null string matches the RE2 ``pattern``."""
    matched = pc.fill_null(pc.match_substring_regex(strings, pattern), False)
    return np.asarray(matched.to_numpy(zero_copy_only=False), dtype=bool)


def _mostly_distinct(values: np.ndarray, sample: int = 2000) -> bool:
    """True when a spread sample of ``values`` is mostly distinct (incident numbers, times)."""
    if len(values) <= sample:
        return False  # small: factorizing costs nothing
    picked = values[:: len(values) // sample]
    return len(pd.unique(picked)) > len(picked) // 2


def _clean_distinct(uniques: np.ndarray) -> np.ndarray:
    """``[_clean_one(v) for v in uniques]`` for the non-NA distinct values of a column."""
    strings = arrow_strings(uniques)
    if strings is None:
        return np.array([_clean_one(v) for v in uniques], dtype=object)
    out = uniques.copy()
    todo = np.flatnonzero(regex_mask(strings, _NEEDS_CLEANING))
    out[todo] = [_clean_one(v) for v in uniques[todo]]
    return out


def clean_strings(s: pd.Series) -> pd.Series:
    """Strip, fold fullwidth ASCII, and turn empty cells into ``None`` (object dtype)."""
    values = s.to_numpy(dtype=object)
    # Cells already clean pass through unchanged; only the rest take the per-value path.
    # Columns that repeat (codes, categories) are checked per distinct value, as the
    # reference does; mostly-distinct ones per row, since hashing them costs more.
    if not _mostly_distinct(values):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        cleaned = np.full(len(uniques) + 1, None, dtype=object)  # last: NA → None
        cleaned[:-1] = _clean_distinct(uniques)
        return pd.Series(cleaned[codes], index=s.index, dtype=object)
    strings = arrow_strings(values)
    if strings is None:
        return clean_strings_reference(s)
    out = values.copy()
    out[np.asarray(strings.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = None
    todo = regex_mask(strings, _NEEDS_CLEANING)
    if todo.any():
        out[todo] = clean_strings_reference(pd.Series(values[todo], dtype=object)).to_numpy()
    return pd.Series(out, index=s.index, dtype=object)


#: Numbers as pandas' ``to_numeric`` reads them: ASCII digits, sign, point, exponent
#: (patterns without anchors, for Python's ``fullmatch`` and, anchored, for RE2).
NUMBER = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
INTEGER = r"[+-]?[0-9]+"
#: Every date/time spelling of the contracts starts with a four-digit year, followed by a
#: separator or, in the compact spellings, by exactly 2, 4 or 10 more digits.
YEAR_FIRST = r"[0-9]{4}([^0-9].*|[0-9]{2}|[0-9]{4}|[0-9]{10})"
_NUMBER, _INTEGER = re.compile(NUMBER), re.compile(INTEGER)
_YEAR_FIRST = re.compile(YEAR_FIRST, re.DOTALL)


def _shape(fmt: str) -> re.Pattern[str]:
    """The text a format admits: ASCII digits, zero-padded where fields touch, spaces as runs."""
    parts = re.split(r"(%[YmdHMS])", fmt)
    out = []
    for i, part in enumerate(parts):
        if part == "%Y":
            out.append("[0-9]{4}")
        elif part.startswith("%"):
            touching = (i >= 2 and parts[i - 1] == "") or (
                i + 2 < len(parts) and parts[i + 1] == ""
            )
            out.append("[0-9]{2}" if touching else "[0-9]{1,2}")
        else:
            out.append(r"\s+".join(re.escape(w) for w in part.split(" ")))
    return re.compile("".join(out), re.ASCII)


_SHAPES = {f: _shape(f) for f in (*DATETIME_FORMATS, *DATE_FORMATS, *MONTH_FORMATS)}


def _parse_formats(text: str, formats: tuple[str, ...]) -> dt.datetime | None:
    if not _YEAR_FIRST.fullmatch(text) or text.startswith("0000"):
        return None
    for fmt in formats:
        if not _SHAPES[fmt].fullmatch(text):
            continue
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def parse_one(col: Column, text: str | None) -> object:
    """The typed value of one cleaned cell of a plain column (None when it does not parse).

    The statement of what the contract's types accept, which both prepare engines
    follow (the SQL engine through :mod:`datahub.sources.sql`):

    * date/time: one of the contract's spellings (``DATETIME_FORMATS``,
      ``DATE_FORMATS``, ``MONTH_FORMATS``; a bare date is a coarse timestamp and
      a timestamp where a date is due keeps its date), four-digit year, ASCII
      digits, fields zero-padded where they touch (``20260601``, not ``2026061``),
      a real calendar date and time (no 30 February, no second 60), year 1..9999;
    * numbers: ASCII digits with optional sign, point and exponent, finite; an
      int is whole and fits 64 bits.
    """
    if text is None or col.type == "str":
        return text
    if col.type == "datetime":
        return _parse_formats(text, DATETIME_FORMATS) or _parse_formats(text, DATE_FORMATS)
    if col.type == "date":
        parsed = _parse_formats(text, DATE_FORMATS) or _parse_formats(text, DATETIME_FORMATS)
        return None if parsed is None else parsed.date()
    if col.type == "month":
        parsed = _parse_formats(text, MONTH_FORMATS)
        return None if parsed is None else f"{parsed.year:04d}-{parsed.month:02d}"
    number = float(text) if _NUMBER.fullmatch(text) else None
    if col.type == "float":
        return number if number is not None and math.isfinite(number) else None
    if _INTEGER.fullmatch(text):
        value = int(text)
        return value if -(2**63) <= value < 2**63 else None
    if number is None or not math.isfinite(number) or number != math.floor(number):
        return None
    return int(number) if -(2**63) <= number < 2**63 else None


_DTYPES = {"datetime": "datetime64[us]", "date": "datetime64[us]", "month": "string"}


def parse_column(col: Column, s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse one cleaned string column. Returns (typed series, bad mask).

    Each distinct cell goes through :func:`parse_one`. Types: datetime and date →
    ``datetime64[us]`` (dates at midnight), month → ``string`` ``YYYY-MM``,
    int → ``Int64``, float → ``Float64``, str → ``string``.
    """
    if col.type == "str":
        return s.astype("string"), pd.Series(False, index=s.index)
    codes, uniques = pd.factorize(s.to_numpy(dtype=object), use_na_sentinel=True)
    parsed = [parse_one(col, str(u)) for u in uniques]
    if col.type == "date":
        parsed = [None if v is None else dt.datetime.combine(v, dt.time()) for v in parsed]  # type: ignore[arg-type]
    dtype = _DTYPES.get(col.type) or ("Int64" if col.type == "int" else "Float64")
    table = pd.Series([*parsed, None], dtype=dtype)  # code -1 (missing) picks the last
    typed = pd.Series(table.to_numpy()[codes], index=s.index, dtype=dtype)
    bad = s.notna() & typed.isna()
    return typed, bad


def type_chunk(feed: Feed, chunk: pd.DataFrame) -> Typed:
    """Clean every contract column and type the non-identifier ones."""
    frame = chunk.copy()
    bad: dict[str, pd.Series] = {}
    for col in feed.columns:
        cleaned = clean_strings(frame[col.name])
        if col.role is not None:
            frame[col.name] = cleaned
            continue
        typed, mask = parse_column(col, cleaned)
        frame[col.name] = typed
        bad[col.name] = mask
    return Typed(frame, bad)


def raw_strings(feed: Feed, chunk: pd.DataFrame) -> pd.DataFrame:
    """Cleaned text of the non-identifier columns, as kept in quarantine tables."""
    cols = [c.name for c in feed.columns if c.role is None]
    return pd.DataFrame(
        {c: clean_strings(chunk[c]).astype("string") for c in cols}, index=chunk.index
    )

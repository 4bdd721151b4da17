"""Cleaning and typing of feed cells as DuckDB SQL: the set-based twin of :mod:`.parse`.

The prepare engine (:mod:`datahub.prepare`) runs these expressions over a
reader chunk registered in an in-memory DuckDB, so that every cell is cleaned
and typed by DuckDB's vectorised, multi-threaded operators instead of pandas.
Each expression is equal, value for value, to its pandas/Python reference:

* :func:`clean_sql` to :func:`datahub.sources.parse._clean_one` (strip Python
  whitespace, fold fullwidth ASCII, empty → NULL);
* :func:`typed_sql` to :func:`parse_one`, the per-value statement of what
  the contract's types accept (``tests/unit/test_sources_sql.py`` checks both
  on generated and adversarial values).

Dates and times are parsed with DuckDB's ``strptime`` over the contract's
format lists. Python's ``strptime`` (what pandas emulates) differs in three
corners, which are pinned here so that both agree: the year must be four ASCII
digits (DuckDB would read ``26-06-01`` as year 26), digits must be ASCII
(Python's ``\\d`` also matches ``٢٠٢٦``), and seconds stop at 59 (pandas rolls
``10:00:60`` over into the next minute).
"""

from __future__ import annotations

import datetime as dt
import math
import re

from datahub.sources.contracts import DATE_FORMATS, DATETIME_FORMATS, MONTH_FORMATS, Column
from datahub.sources.parse import FULLWIDTH_RANGES, PY_WHITESPACE_RANGES, re2_class

_WS_CLASS = re2_class(PY_WHITESPACE_RANGES)
#: A non-empty cell that cleaning would change: whitespace at either end or a fullwidth
#: character (empty cells are tested apart: they are the common case in sparse columns).
NEEDS_CLEANING = f"^{_WS_CLASS}|{_WS_CLASS}$|{re2_class(FULLWIDTH_RANGES)}"
_WS_CHARS = "".join(chr(c) for lo, hi in PY_WHITESPACE_RANGES for c in range(lo, hi + 1))
_FULLWIDTH_FROM = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_FULLWIDTH_TO = "".join(chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)) + " "

#: Numbers pandas' ``to_numeric`` reads: ASCII digits, optional sign, point and exponent.
NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INTEGER = r"^[+-]?[0-9]+$"
#: Every date/time spelling of the contracts starts with a four-digit year, followed by a
#: separator or, in the compact spellings, by exactly 2, 4 or 10 more digits.
_YEAR_FIRST = r"^[0-9]{4}([^0-9]|[0-9]{2}$|[0-9]{4}$|[0-9]{10}$)"


def quote(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal for a constant (strings, numbers, booleans, lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return "'" + str(value).replace("'", "''") + "'"


def clean_sql(ref: str) -> str:
    """``ref`` stripped of Python whitespace, fullwidth ASCII folded, empty → NULL.

    Only cells the regex picks out take ``translate``/``trim`` (DuckDB's
    ``translate`` costs ~1.4 µs a cell; the regex a few ns).
    """
    return (
        f"CASE WHEN {ref} = '' THEN NULL "
        f"WHEN regexp_matches({ref}, {literal(NEEDS_CLEANING)}) THEN "
        f"nullif(trim(translate({ref}, {literal(_FULLWIDTH_FROM)}, {literal(_FULLWIDTH_TO)}), "
        f"{literal(_WS_CHARS)}), '') "
        f"ELSE {ref} END"
    )


def _strptime(ref: str, formats: tuple[str, ...]) -> str:
    # the guard pins DuckDB's strptime to Python's on the year (module doc); DuckDB
    # reads ASCII digits only by itself
    return (
        f"CASE WHEN regexp_matches({ref}, {literal(_YEAR_FIRST)}) AND NOT starts_with({ref}, '0000') "
        f"THEN try_strptime({ref}, {literal(list(formats))}) END"
    )


def typed_sql(col: Column, ref: str) -> str:
    """The typed value of a cleaned cell ``ref`` of a plain column (NULL when it does not parse).

    DuckDB types: datetime → TIMESTAMP, date → DATE, month → VARCHAR ``YYYY-MM``,
    int → BIGINT, float → DOUBLE, str → VARCHAR (the cleaned text).
    """
    if col.type == "str":
        return ref
    if col.type == "datetime":
        # a bare date is a valid (coarse) timestamp in several exports
        return f"coalesce({_strptime(ref, DATETIME_FORMATS)}, {_strptime(ref, DATE_FORMATS)})"
    if col.type == "date":
        # a timestamp where a date is expected: keep the date part
        return (
            f"CAST(coalesce({_strptime(ref, DATE_FORMATS)}, "
            f"{_strptime(ref, DATETIME_FORMATS)}) AS DATE)"
        )
    if col.type == "month":
        return f"strftime({_strptime(ref, MONTH_FORMATS)}, '%Y-%m')"
    number = (
        f"CASE WHEN regexp_matches({ref}, {literal(NUMBER)}) THEN TRY_CAST({ref} AS DOUBLE) END"
    )
    if col.type == "float":
        return f"(CASE WHEN isfinite({number}) THEN {number} END)"
    if col.type == "int":
        whole = f"CASE WHEN regexp_matches({ref}, {literal(_INTEGER)}) THEN TRY_CAST({ref} AS BIGINT) END"
        integral = (
            f"CASE WHEN isfinite({number}) AND {number} = floor({number}) "
            f"THEN TRY_CAST({number} AS BIGINT) END"
        )
        return f"coalesce({whole}, {integral})"
    raise ValueError(f"unknown column type {col.type!r}")  # pragma: no cover


def bad_sql(col: Column, ref: str, typed: str) -> str:
    """True where the cleaned cell ``ref`` holds text that does not parse as ``col``'s type."""
    if col.type == "str":
        return "false"
    return f"({ref} IS NOT NULL AND {typed} IS NULL)"


# ------------------------------------------------------------ per-value reference

_PY_INTEGER = re.compile(_INTEGER)
_PY_NUMBER = re.compile(NUMBER)
_PY_YEAR_FIRST = re.compile(r"[0-9]{4}([^0-9].*|[0-9]{2}|[0-9]{4}|[0-9]{10})", re.DOTALL)


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
    if not _PY_YEAR_FIRST.fullmatch(text) or text.startswith("0000"):
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
    """What :func:`typed_sql` computes for one cleaned cell, in Python (the reference)."""
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
    number = float(text) if _PY_NUMBER.match(text) else None
    if col.type == "float":
        return number if number is not None and math.isfinite(number) else None
    if _PY_INTEGER.match(text):
        value = int(text)
        return value if -(2**63) <= value < 2**63 else None
    if number is None or not math.isfinite(number) or number != math.floor(number):
        return None
    return int(number) if -(2**63) <= number < 2**63 else None

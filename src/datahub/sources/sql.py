"""Cleaning and typing of feed cells as DuckDB SQL: the set-based twin of :mod:`.parse`.

The prepare engine (:mod:`datahub.prepare`) runs these expressions over a
reader chunk registered in an in-memory DuckDB, so that every cell is cleaned
and typed by DuckDB's vectorised, multi-threaded operators instead of pandas.
Each expression is equal, value for value, to its pandas/Python reference:

* :func:`clean_sql` to :func:`datahub.sources.parse._clean_one` (strip Python
  whitespace, fold fullwidth ASCII, empty → NULL);
* :func:`typed_sql` to :func:`datahub.sources.parse.parse_one`, the per-value
  statement of what the contract's types accept (``tests/unit/test_prepare_sql.py``
  checks both on every sample cell and on generated, adversarial values).

Dates and times are parsed with DuckDB's ``strptime`` over the contract's format
lists; :data:`~datahub.sources.parse.YEAR_FIRST` pins it to ``parse_one`` where
DuckDB is more lenient (it would read ``26-06-01`` as the year 26).
"""

from __future__ import annotations

from datahub.sources.contracts import DATE_FORMATS, DATETIME_FORMATS, MONTH_FORMATS, Column
from datahub.sources.parse import (
    FULLWIDTH_RANGES,
    INTEGER,
    NUMBER,
    PY_WHITESPACE_RANGES,
    YEAR_FIRST,
    re2_class,
)

_WS_CLASS = re2_class(PY_WHITESPACE_RANGES)
#: A non-empty cell that cleaning would change: whitespace at either end or a fullwidth
#: character (empty cells are tested apart: they are the common case in sparse columns).
NEEDS_CLEANING = f"^{_WS_CLASS}|{_WS_CLASS}$|{re2_class(FULLWIDTH_RANGES)}"
_WS_CHARS = "".join(chr(c) for lo, hi in PY_WHITESPACE_RANGES for c in range(lo, hi + 1))
_FULLWIDTH_FROM = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_FULLWIDTH_TO = "".join(chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)) + " "

_NUMBER = f"^({NUMBER})$"
_INTEGER = f"^({INTEGER})$"
_YEAR_FIRST = f"^({YEAR_FIRST})$"


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
        f"CASE WHEN regexp_matches({ref}, {literal(_NUMBER)}) THEN TRY_CAST({ref} AS DOUBLE) END"
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

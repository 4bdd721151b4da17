"""Normalise and type the string cells of a feed chunk (pure pandas, no I/O).

Every cell is stripped; an empty cell is missing (``None``). Non-identifier
columns are parsed per the contract — every spelling in ``DATETIME_FORMATS``,
``DATE_FORMATS`` and ``MONTH_FORMATS`` is accepted — and a cell that holds
text but does not parse is recorded in a ``bad`` mask (row reason
``bad_value``). Identifier columns stay strings: the privacy step normalises
and tokenises them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from datahub.sources.contracts import (
    DATE_FORMATS,
    DATETIME_FORMATS,
    MONTH_FORMATS,
    Column,
    Feed,
)

#: Fullwidth digits/letters/punctuation (U+FF01..U+FF5E) map to ASCII by a fixed offset.
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


@dataclass
class Typed:
    """A chunk after typing: the typed frame and per-column parse-failure masks."""

    frame: pd.DataFrame
    bad: dict[str, pd.Series]  # column -> True where text did not parse


def _clean_one(v: object) -> str | None:
    t = str(v).translate(_FULLWIDTH).strip()
    return t or None


def clean_strings(s: pd.Series) -> pd.Series:
    """Strip, fold fullwidth ASCII, and turn empty cells into ``None`` (object dtype)."""
    # clean each distinct value once (codes, categories, dates repeat a lot) and map back;
    # a plain loop over the uniques beats pandas' per-op overhead of .str chains
    codes, uniques = pd.factorize(s.to_numpy(dtype=object), use_na_sentinel=True)
    cleaned = np.array([_clean_one(v) for v in uniques] + [None], dtype=object)
    return pd.Series(cleaned[codes], index=s.index, dtype=object)


def _parse_with_formats(s: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    result = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
    todo = s.notna()
    for fmt in formats:
        if not todo.any():
            break
        parsed = pd.to_datetime(s[todo], format=fmt, errors="coerce")
        ok = parsed.notna()
        if ok.any():
            result.loc[parsed.index[ok]] = parsed[ok].astype("datetime64[us]")
            todo.loc[parsed.index[ok]] = False
    return result


def parse_column(col: Column, s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse one cleaned string column. Returns (typed series, bad mask)."""
    present = s.notna()
    typed: pd.Series
    if col.type == "str":
        return s.astype("string"), pd.Series(False, index=s.index)
    if col.type == "datetime":
        typed = _parse_with_formats(s, DATETIME_FORMATS)
        # a bare date is a valid (coarse) timestamp in several exports
        missing = present & typed.isna()
        if missing.any():
            typed.loc[missing] = _parse_with_formats(s[missing], DATE_FORMATS)
    elif col.type == "date":
        typed = _parse_with_formats(s, DATE_FORMATS).dt.normalize()
        missing = present & typed.isna()
        if missing.any():  # a timestamp where a date is expected: keep the date part
            typed.loc[missing] = _parse_with_formats(s[missing], DATETIME_FORMATS).dt.normalize()
    elif col.type == "month":
        dt = _parse_with_formats(s, MONTH_FORMATS)
        typed = dt.dt.strftime("%Y-%m").astype("string")
        typed = typed.where(dt.notna(), pd.NA)
    elif col.type == "int":
        num = pd.to_numeric(s, errors="coerce")
        integral = num.notna() & np.isfinite(num.astype(float)) & (num.astype(float) % 1 == 0)
        typed = num.where(integral).astype("Int64")
    elif col.type == "float":
        num = pd.to_numeric(s, errors="coerce").astype(float)
        typed = pd.Series(num, index=s.index).where(np.isfinite(num)).astype("Float64")
    else:  # pragma: no cover - contracts only declare the types above
        raise ValueError(f"unknown column type {col.type!r}")
    bad = present & typed.isna()
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

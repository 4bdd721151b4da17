"""Row checks: the boolean columns GX validates and the row reasons derived from them.

Quarantine reasons come from the *same* expectations GX runs: for every
row-level expectation of a suite, :func:`failure_mask` computes which rows
GX counts as unexpected, and :func:`row_reasons` names them with the
expectation's ``meta.reason``. :mod:`datahub.quality.gx_runner` then checks
that GX's ``unexpected_count`` equals the mask's count for every expectation,
so the quarantine and the validation report cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datahub.quality.suites import REASONS
from datahub.sources.contracts import Feed
from datahub.sources.parse import Typed


@dataclass(frozen=True)
class References:
    """Code sets from the government snapshot (None = not available, check skipped)."""

    division: frozenset[str] | None = None
    address: frozenset[str] | None = None
    grid: frozenset[str] | None = None
    source: str = ""

    def codes(self, kind: str) -> frozenset[str] | None:
        value: frozenset[str] | None = getattr(self, kind)
        return value


@dataclass
class FileState:
    """Cross-chunk state of one file: hashes of rows seen (for exact duplicates)."""

    seen_rows: set[int] = field(default_factory=set)


_MISSING_CELL = "\x00<missing>"


def _row_hashes(raw: pd.DataFrame, cols: Iterable[str]) -> np.ndarray:
    # hashes stay in memory only (per file); a missing field and an empty one differ.
    # The reader's cells are str or None: hash the object arrays as they are (a cast
    # to pandas "string" first cost a third of this function).
    frame = pd.DataFrame(
        {c: raw[c].to_numpy(dtype=object) for c in cols}, index=raw.index, copy=False
    ).fillna(_MISSING_CELL)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


@lru_cache(maxsize=16)
def _code_array(codes: frozenset[str]) -> pa.Array:
    # a frozenset caches its hash, so the lookup is cheap; pandas' isin would turn the
    # set into a list and hash it again for every chunk
    return pa.array(sorted(codes), type=pa.string())


def unknown_codes(s: pd.Series, codes: frozenset[str]) -> pd.Series:
    """True where ``s`` holds a value that is not one of ``codes`` (missing is not unknown)."""
    arr = pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    known = pc.is_in(arr, value_set=_code_array(codes)).to_numpy(zero_copy_only=False)
    return pd.Series(s.notna().to_numpy(dtype=bool) & ~known, index=s.index)


def duplicate_rows(feed: Feed, raw: pd.DataFrame, state: FileState) -> pd.Series:
    """True for a row that exactly repeats an earlier row of the same file."""
    hashes = _row_hashes(raw, feed.column_names)
    dup_in_chunk = pd.Series(hashes).duplicated(keep="first").to_numpy()
    seen_before = np.fromiter((h in state.seen_rows for h in hashes.tolist()), bool, len(hashes))
    state.seen_rows.update(hashes.tolist())
    return pd.Series(dup_in_chunk | seen_before, index=raw.index)


def future_limit(stamp: str, now: dt.datetime) -> pd.Timestamp:
    """Latest plausible timestamp in a file: ``now``, and at most 180 days after its stamp period.

    Events of a day can be closed the next days and snapshots carry dates up to
    their date; nothing legitimately lies half a year past the file's stamp.
    """
    if len(stamp) == 6:
        start = dt.datetime.strptime(stamp + "01", "%Y%m%d")
        end = (pd.Timestamp(start) + pd.offsets.MonthEnd(1)).to_pydatetime()
    else:
        end = dt.datetime.strptime(stamp, "%Y%m%d")
    end = end + dt.timedelta(days=1)
    return pd.Timestamp(min(now.replace(tzinfo=None), end + dt.timedelta(days=180)))


def add_check_columns(
    feed: Feed,
    frame: pd.DataFrame,
    typed: Typed,
    raw: pd.DataFrame,
    *,
    refs: References,
    limit: pd.Timestamp,
    state: FileState,
) -> pd.DataFrame:
    """The validation frame: ``frame`` (pseudonymised, typed) plus the boolean check columns."""
    out = frame.drop(columns=["_truncated", "_overflow"])
    idx = out.index
    bad = pd.Series(frame["_overflow"].to_numpy(dtype=bool), index=idx)
    unknown = pd.Series(False, index=idx)
    future = pd.Series(False, index=idx)
    for c in feed.columns:
        if c.role is not None:
            continue
        s = typed.frame[c.name]
        if c.type != "str":
            bad = bad | typed.bad[c.name].fillna(False).astype(bool)
        if c.references is not None:
            codes = refs.codes(c.references)
            if codes is not None:
                unknown = unknown | unknown_codes(s, codes)
        if c.type in ("date", "datetime"):
            future = future | (s > limit).fillna(False).astype(bool)
        elif c.type == "month":
            future = future | (s > limit.strftime("%Y-%m")).fillna(False).astype(bool)
    out["_truncated"] = frame["_truncated"].to_numpy(dtype=bool)
    out["_bad_value"] = bad.to_numpy(dtype=bool)
    out["_unknown_code"] = unknown.to_numpy(dtype=bool)
    out["_future_date"] = future.to_numpy(dtype=bool)
    out["_duplicate_row"] = duplicate_rows(feed, raw, state).to_numpy(dtype=bool)
    return out


def failure_mask(exp: dict[str, Any], frame: pd.DataFrame) -> pd.Series | None:
    """Rows GX counts as unexpected for a column-map expectation (None for other kinds)."""
    kw = exp["kwargs"]
    t = exp["type"]
    if t == "expect_column_values_to_be_in_set":
        s = frame[kw["column"]]
        return s.notna() & ~s.isin(kw["value_set"])
    if t == "expect_column_values_to_not_be_in_set":
        s = frame[kw["column"]]
        return s.notna() & s.isin(kw["value_set"])
    if t == "expect_column_values_to_not_be_null":
        return frame[kw["column"]].isna()
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = frame[kw["column_A"]], frame[kw["column_B"]]
        both = a.notna() & b.notna()
        bad = (a < b) if kw.get("or_equal") else (a <= b)
        return (both & bad.fillna(False)).astype(bool)
    return None


def row_level(suite: dict[str, Any]) -> list[dict[str, Any]]:
    """The suite's expectations that quarantine rows."""
    return [e for e in suite["expectations"] if e["meta"].get("level") == "row"]


def expectation_key(exp: dict[str, Any]) -> str:
    """A stable identity of one expectation (type + kwargs) within a suite."""
    return json.dumps([exp["type"], exp["kwargs"]], sort_keys=True, ensure_ascii=False)


def reason_masks(
    suite: dict[str, Any], frame: pd.DataFrame, counts: dict[str, int] | None = None
) -> dict[str, pd.Series]:
    """Reason code → rows failing at least one expectation with that reason.

    ``counts``, when given, receives each row-level expectation's failing-row
    count under :func:`expectation_key` (the GX cross-check reuses them).
    """
    out: dict[str, pd.Series] = {}
    for exp in row_level(suite):
        mask = failure_mask(exp, frame)
        if mask is None:
            raise ValueError(f"row-level expectation {exp['type']} has no row mask")
        reason = exp["meta"]["reason"]
        mask = mask.fillna(False).astype(bool)
        if counts is not None:
            counts[expectation_key(exp)] = int(mask.sum())
        out[reason] = out[reason] | mask if reason in out else mask
    return out


def row_reasons(masks: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    """``;``-joined reason codes per row in priority order (empty string when the row is fine)."""
    text = np.full(len(index), "", dtype=object)
    for reason in REASONS:
        m = masks.get(reason)
        if m is None or not m.any():
            continue
        hit = m.to_numpy(dtype=bool)
        text[hit] = np.where(text[hit] == "", reason, text[hit] + ";" + reason)
    return pd.Series(text, index=index, dtype="string")

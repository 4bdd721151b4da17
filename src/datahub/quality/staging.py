"""Staged batch files: Parquet schemas, the batch result record and the feed state.

A prepared batch is a folder ``DATAHUB_HOME/staging/<batch_id>/`` with
``accepted.parquet``, ``quarantine.parquet``, ``vault.parquet``,
``validation.json`` and ``result.json`` (written last: its presence means the
folder is complete). The loader reads nothing else.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datahub.sources.contracts import Column, Feed

ACCEPTED = "accepted.parquet"
QUARANTINE = "quarantine.parquet"
VAULT = "vault.parquet"
VALIDATION = "validation.json"
RESULT = "result.json"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "month": pa.string(),
}


def _identifier_fields(feed: Feed) -> list[pa.Field]:
    from datahub.privacy.pseudonymise import output_columns

    plain = set(feed.column_names)
    out = []
    for name in output_columns(feed):
        if name in plain:
            continue
        out.append(pa.field(name, pa.int64() if name.endswith("_birth_year") else pa.string()))
    return out


def _ordered(feed: Feed, plain_type: Any) -> list[pa.Field]:
    from datahub.privacy.pseudonymise import output_columns

    ident = {f.name: f for f in _identifier_fields(feed)}
    cols = {c.name: c for c in feed.columns}
    fields = []
    for name in output_columns(feed):
        if name in cols:
            fields.append(pa.field(name, plain_type(cols[name])))
        else:
            fields.append(ident[name])
    return fields


def accepted_schema(feed: Feed) -> pa.Schema:
    """Raw-layer columns of a feed (typed per contract, identifiers pseudonymised) + ``_row_number``."""
    return pa.schema(
        [*_ordered(feed, lambda c: _ARROW_TYPES[c.type]), pa.field("_row_number", pa.int64())]
    )


def quarantine_schema(feed: Feed) -> pa.Schema:
    """Quarantine columns: plain columns as their cleaned text, identifiers pseudonymised, reasons."""

    def text(_: Column) -> pa.DataType:
        return pa.string()

    return pa.schema(
        [
            *_ordered(feed, text),
            pa.field("_row_number", pa.int64()),
            pa.field("_reason", pa.string()),
            pa.field("_reasons", pa.string()),
        ]
    )


VAULT_SCHEMA = pa.schema(
    [("domain", pa.string()), ("token", pa.string()), ("ciphertext", pa.binary())]
)


def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Convert a frame to ``schema`` (column by column, so all-null chunks keep their types)."""
    arrays = []
    for f in schema:
        s = frame[f.name]
        if pa.types.is_date32(f.type):
            # timestamp → date in Arrow (truncates a time of day, as .dt.date did)
            stamps = pa.array(pd.to_datetime(s), from_pandas=True)
            arrays.append(pc.cast(stamps, pa.date32(), safe=False))
            continue
        elif pa.types.is_string(f.type):
            if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
                # already Arrow strings: hand the buffers over instead of boxing every cell
                arr = pa.array(s.array, from_pandas=True)
                arrays.append(arr if arr.type == f.type else arr.cast(f.type))
                continue
            s = s.astype(object).where(s.notna(), None)
        elif pa.types.is_integer(f.type):
            s = s.astype("Int64")
        arrays.append(pa.array(s, type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


@dataclass
class BatchResult:
    """``result.json``: what prepare decided about one file (the loader's ledger input)."""

    batch_id: str
    department: str
    feed: str  # feed name, e.g. incidents
    table: str  # <department>__<feed>
    source_file: str  # file name
    source_path: str
    content_hash: str
    stamp: str
    status: str  # prepared | rejected
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_rejected: int = 0
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    failed_expectations: list[str] = field(default_factory=list)
    encoding: str = ""
    started_at: str = ""
    finished_at: str = ""

    def write(self, folder: Path) -> None:
        atomic_write_text(folder / RESULT, json.dumps(asdict(self), ensure_ascii=False, indent=2))

    @classmethod
    def read(cls, folder: Path) -> BatchResult:
        p = folder / RESULT
        if not p.exists():
            raise FileNotFoundError(f"{folder} is not a prepared batch (no {RESULT})")
        return cls(**json.loads(p.read_text(encoding="utf-8")))


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file via a temporary name and rename, so readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ----------------------------------------------------------- row-count state


def state_file(home: Path, feed: Feed) -> Path:
    return home / "state" / "feeds" / f"{feed.table}.json"


def previous_rows(home: Path, feed: Feed) -> int | None:
    """Rows read in the last loaded batch of ``feed`` (written by the loader after commit)."""
    p = state_file(home, feed)
    if not p.exists():
        return None
    try:
        return int(json.loads(p.read_text(encoding="utf-8"))["rows_read"])
    except (ValueError, KeyError):
        return None


def record_loaded(home: Path, feed: Feed, batch_id: str, rows_read: int) -> None:
    atomic_write_text(
        state_file(home, feed), json.dumps({"batch_id": batch_id, "rows_read": rows_read})
    )


def row_count_bounds(feed: Feed, previous: int | None) -> tuple[int, int]:
    """Plausible row count of a new batch given the previous batch of the same feed.

    Snapshots are full extracts: within 0.5×–2× of the previous one (±20 rows of
    slack for small tables). Event files vary by day and season: up to 20× the
    previous (+200) and, once a feed is large, at least a twentieth of it.
    Without a previous batch anything goes.
    """
    big = 10**12
    if previous is None:
        return 0, big
    if feed.kind == "snapshot":
        return max(0, previous // 2 - 20), previous * 2 + 20
    return (previous // 20 if previous >= 1000 else 0), previous * 20 + 200

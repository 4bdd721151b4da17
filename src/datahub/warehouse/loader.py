"""The loader: the only writer of the working warehouse.

Each prepared batch is loaded in ONE DuckDB transaction — raw rows,
quarantined rows, validation results and the ledger row commit together or
not at all (a SIGKILL mid-load leaves the warehouse as it was; DuckDB drops
the uncommitted transaction on reopen). The key canary is checked inside the
same transaction before anything is written.

Idempotency (``audit.batch_ledger``):

* a file whose content hash was already loaded → ledger row
  ``skipped_duplicate_file`` (rows_read 0: nothing is read again);
* a re-delivered file (same department/feed/file name, new content) deletes
  the earlier batch's rows and inserts the new ones in the same transaction;
  the earlier ledger row becomes ``superseded``;
* loading the same batch folder twice returns the first outcome.

Vault entries are appended (idempotently, by token) before the warehouse
commit, so a committed token always has its vault entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow.parquet as pq

from datahub.config import Paths
from datahub.quality import staging as st
from datahub.sources.contracts import FEEDS_BY_KEY
from datahub.warehouse.db import connect

if TYPE_CHECKING:  # pragma: no cover
    from datahub.privacy.keys import Keyring

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS audit.batch_ledger (
    batch_id VARCHAR PRIMARY KEY,
    department VARCHAR NOT NULL,
    feed VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,
    stamp VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    message VARCHAR,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    CHECK (rows_read = rows_loaded + rows_quarantined + rows_rejected),
    CHECK (status IN ('loaded', 'rejected', 'skipped_duplicate_file', 'superseded', 'failed'))
)
"""
VALIDATION_DDL = """
CREATE TABLE IF NOT EXISTS audit.validation_results (
    batch_id VARCHAR NOT NULL,
    feed VARCHAR NOT NULL,
    suite VARCHAR NOT NULL,
    expectation_type VARCHAR NOT NULL,
    "column" VARCHAR,
    level VARCHAR,
    reason VARCHAR,
    success BOOLEAN NOT NULL,
    unexpected_count BIGINT,
    element_count BIGINT,
    observed_value VARCHAR,
    validated_at TIMESTAMPTZ
)
"""
COMMENTS = {
    "audit.batch_ledger": "One row per feed file offered to the loader; rows_read = loaded + quarantined + rejected.",
    "audit.validation_results": "Every GX expectation result per batch (counts only, never values).",
}

RAW_META = ("_batch_id", "_source_file", "_content_hash", "_loaded_at")


@dataclass
class LoadOutcome:
    """What the loader did with one batch (mirrors its ledger row)."""

    batch_id: str
    department: str
    feed: str
    source_file: str
    status: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_rejected: int
    message: str = ""


class BatchRejected(Exception):
    """A batch-level expectation failed; the ledger records the rejection, nothing else loads."""

    def __init__(self, outcome: LoadOutcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


def _schema_ready(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the schemas, audit tables and their current comments are all in place.

    Catalog reads only: every DDL or COMMENT statement is a transaction of its own, and
    re-running them before every batch cost ~65 ms a batch (a WAL commit each).
    """
    schemas = {
        str(r[0])
        for r in con.execute(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database()"
        ).fetchall()
    }
    comments = {
        str(name): str(comment)
        for name, comment in con.execute(
            "SELECT schema_name || '.' || table_name, coalesce(comment, '') FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = 'audit'"
        ).fetchall()
    }
    return (
        {"raw", "quarantine", "audit"} <= schemas
        and {"audit.batch_ledger", "audit.validation_results", "audit.key_canary"}
        <= comments.keys()
        and all(comments[table] == text for table, text in COMMENTS.items())
    )


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schemas raw/quarantine/audit and the audit tables if missing."""
    if _schema_ready(con):
        return
    for schema in ("raw", "quarantine", "audit"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(LEDGER_DDL)
    con.execute(VALIDATION_DDL)
    # same DDL as datahub.warehouse.retokenise (which writes it): a missing table
    # would abort the load transaction when the canary is read inside it
    con.execute(
        "CREATE TABLE IF NOT EXISTS audit.key_canary "
        "(version INTEGER NOT NULL, canary VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL, "
        "written_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    for table, text in COMMENTS.items():
        con.execute(f"COMMENT ON TABLE {table} IS '{text}'")


#: The loader's DuckDB buffer pool (DuckDB's default is 80 % of RAM): inserts stream through
#: it, so a cap keeps the loader's share of memory from growing with the warehouse (see
#: ``vault.VAULT_MEMORY_LIMIT`` for the measured effect).
LOADER_MEMORY_LIMIT = "128MB"


@contextmanager
def open_warehouse(paths: Paths) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse for writing (schemas ensured); closed on exit."""
    con = connect(paths.warehouse, memory_limit=LOADER_MEMORY_LIMIT)
    try:
        ensure_schema(con)
        yield con
    finally:
        con.close()


#: Ledger states after which a staged batch folder is no longer needed: its rows are in raw /
#: quarantine and its vault entries in the vault, or it was refused for good. A ``failed``
#: batch is kept: loading the same folder again is how it is retried.
SETTLED_STATUSES: tuple[str, ...] = ("loaded", "rejected", "skipped_duplicate_file", "superseded")


def settled_batches(paths: Paths) -> set[str]:
    """Batch ids the ledger records in a settled state (empty without a warehouse)."""
    if not paths.warehouse.exists():
        return set()
    con = connect(paths.warehouse, read_only=True)
    try:
        if not _table_exists(con, "audit", "batch_ledger"):
            return set()
        marks = ", ".join("?" for _ in SETTLED_STATUSES)
        rows = con.execute(
            f"SELECT batch_id FROM audit.batch_ledger WHERE status IN ({marks})",
            list(SETTLED_STATUSES),
        ).fetchall()
    finally:
        con.close()
    return {str(r[0]) for r in rows}


def _ledger_row(con: duckdb.DuckDBPyConnection, batch_id: str) -> LoadOutcome | None:
    row = con.execute(
        "SELECT batch_id, department, feed, source_file, status, rows_read, rows_loaded, "
        "rows_quarantined, rows_rejected, coalesce(message, '') FROM audit.batch_ledger WHERE batch_id = ?",
        [batch_id],
    ).fetchone()
    return None if row is None else LoadOutcome(*row)


def _already_settled(outcome: LoadOutcome) -> LoadOutcome:
    """A batch the ledger already records: its outcome again (a rejection raises again)."""
    if outcome.status == "rejected":
        raise BatchRejected(outcome)
    return outcome


def _insert_ledger(
    con: duckdb.DuckDBPyConnection, r: st.BatchResult, out: LoadOutcome, finished: dt.datetime
) -> None:
    con.execute(
        "INSERT INTO audit.batch_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            r.batch_id,
            r.department,
            r.feed,
            r.source_file,
            r.content_hash,
            r.stamp,
            out.status,
            out.rows_read,
            out.rows_loaded,
            out.rows_quarantined,
            out.rows_rejected,
            out.message,
            r.started_at or None,
            finished,
        ],
    )


def _insert_validation(
    con: duckdb.DuckDBPyConnection, folder: Path, r: st.BatchResult, at: dt.datetime
) -> None:
    p = folder / st.VALIDATION
    if not p.exists():
        return
    d = json.loads(p.read_text(encoding="utf-8"))
    rows = []
    for res in d["results"]:
        cfg = res["expectation_config"]
        kw = cfg["kwargs"]
        column = kw.get("column") or (
            ",".join(kw["column_list"])
            if "column_list" in kw
            else f"{kw['column_A']},{kw['column_B']}"
            if "column_A" in kw
            else None
        )
        result = res.get("result") or {}
        observed = result.get("observed_value")
        rows.append(
            (
                r.batch_id,
                f"{r.department}.{r.feed}",
                d["suite_name"],
                cfg["type"],
                column,
                cfg["meta"].get("level"),
                cfg["meta"].get("reason"),
                bool(res["success"]),
                result.get("unexpected_count"),
                result.get("element_count"),
                None if observed is None else str(observed),
                at,
            )
        )
    if rows:
        con.executemany(
            "INSERT INTO audit.validation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _insert_rows(
    con: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    parquet: Path,
    r: st.BatchResult,
    at: dt.datetime,
) -> int:
    if not parquet.exists():
        return 0
    target = f"{schema}.{_q(table)}"
    select = (
        "SELECT *, ? AS _batch_id, ? AS _source_file, ? AS _content_hash, ?::TIMESTAMPTZ AS _loaded_at "
        "FROM read_parquet(?)"
    )
    params = [r.batch_id, r.source_file, r.content_hash, at, str(parquet)]
    con.execute(f"CREATE TABLE IF NOT EXISTS {target} AS {select} LIMIT 0", params)
    before = con.execute(f"SELECT count(*) FROM {target}").fetchone()
    con.execute(f"INSERT INTO {target} BY NAME {select}", params)
    after = con.execute(f"SELECT count(*) FROM {target}").fetchone()
    assert before is not None and after is not None
    return int(after[0]) - int(before[0])


def _append_vault(folder: Path, paths: Paths, keyring: Keyring, vault: Any) -> None:
    p = folder / st.VAULT
    if not p.exists():
        return
    entries = pq.read_table(p)
    if entries.num_rows == 0:
        return
    if vault is not None:
        vault.append(entries)
    else:
        from datahub.privacy.vault import append_entries

        append_entries(paths, keyring, entries)


def load_batch(
    folder: Path,
    *,
    paths: Paths,
    keyring: Keyring,
    con: duckdb.DuckDBPyConnection | None = None,
    vault: Any = None,
    before_commit: Callable[[], None] | None = None,
) -> LoadOutcome:
    """Load one prepared batch folder in one transaction; see the module doc.

    ``before_commit`` runs with every row written but not committed (the
    crash-safety test kills the process there).

    Raises :class:`BatchRejected` (after recording it) for a rejected batch and
    ``KeyProblem`` when the key file is not the warehouse's.
    """
    if con is None:
        with open_warehouse(paths) as own:
            return load_batch(
                folder,
                paths=paths,
                keyring=keyring,
                con=own,
                vault=vault,
                before_commit=before_commit,
            )
    from datahub.warehouse.retokenise import ensure_warehouse_key

    ensure_schema(con)
    if not (folder / st.RESULT).exists():
        # pruned after its load (datahub prune-staging, the DAGs' prune_staging task): a
        # re-run of the load task finds the ledger's answer instead of the folder
        settled = _ledger_row(con, folder.name)
        if settled is None:
            raise FileNotFoundError(
                f"{folder} is not a prepared batch (no {st.RESULT}) and the ledger has no batch "
                f"{folder.name}: prepare the file again"
            )
        return _already_settled(settled)
    r = st.BatchResult.read(folder)
    feed = FEEDS_BY_KEY[f"{r.department}.{r.feed}"]
    now = dt.datetime.now(dt.UTC)
    con.execute("BEGIN TRANSACTION")
    try:
        ensure_warehouse_key(con, keyring)
        existing = _ledger_row(con, r.batch_id)
        if existing is not None:
            con.execute("ROLLBACK")
            return _already_settled(existing)
        if r.status == "rejected":
            out = LoadOutcome(
                r.batch_id,
                r.department,
                r.feed,
                r.source_file,
                "rejected",
                r.rows_read,
                0,
                0,
                r.rows_read,
                r.message,
            )
            _insert_validation(con, folder, r, now)
            _insert_ledger(con, r, out, dt.datetime.now(dt.UTC))
            con.execute("COMMIT")
            _publish_validation(folder, paths, r)
            raise BatchRejected(out)
        dup = con.execute(
            "SELECT batch_id FROM audit.batch_ledger WHERE content_hash = ? AND status = 'loaded' LIMIT 1",
            [r.content_hash],
        ).fetchone()
        if dup is not None:
            out = LoadOutcome(
                r.batch_id,
                r.department,
                r.feed,
                r.source_file,
                "skipped_duplicate_file",
                0,
                0,
                0,
                0,
                f"{r.source_file}: identical to already loaded batch {dup[0]}; skipped",
            )
            _insert_ledger(con, r, out, dt.datetime.now(dt.UTC))
            con.execute("COMMIT")
            return out
        old = [
            str(b)
            for (b,) in con.execute(
                "SELECT batch_id FROM audit.batch_ledger WHERE department = ? AND feed = ? "
                "AND source_file = ? AND status = 'loaded'",
                [r.department, r.feed, r.source_file],
            ).fetchall()
        ]
        for b in old:
            for schema in ("raw", "quarantine"):
                if _table_exists(con, schema, feed.table):
                    con.execute(f"DELETE FROM {schema}.{_q(feed.table)} WHERE _batch_id = ?", [b])
            con.execute(
                "UPDATE audit.batch_ledger SET status = 'superseded', "
                "message = coalesce(message, '') || ? WHERE batch_id = ?",
                [f" [superseded by re-delivered batch {r.batch_id}]", b],
            )
        loaded = _insert_rows(con, "raw", feed.table, folder / st.ACCEPTED, r, now)
        quarantined = _insert_rows(con, "quarantine", feed.table, folder / st.QUARANTINE, r, now)
        if loaded != r.rows_accepted or quarantined != r.rows_quarantined:
            raise RuntimeError(
                f"{r.batch_id}: staged files hold {loaded}+{quarantined} rows but prepare counted "
                f"{r.rows_accepted}+{r.rows_quarantined}; prepare the file again"
            )
        message = r.message or ""
        if r.warnings:
            message = "; ".join(filter(None, [message, *r.warnings]))
        if old:
            message = "; ".join(filter(None, [message, f"replaces batch {', '.join(old)}"]))
        out = LoadOutcome(
            r.batch_id,
            r.department,
            r.feed,
            r.source_file,
            "loaded",
            r.rows_read,
            loaded,
            quarantined,
            0,
            message,
        )
        _insert_validation(con, folder, r, now)
        _insert_ledger(con, r, out, dt.datetime.now(dt.UTC))
        _append_vault(folder, paths, keyring, vault)
        if before_commit is not None:
            before_commit()
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # already rolled back / committed
            con.execute("ROLLBACK")
        raise
    st.record_loaded(paths.home, feed, r.batch_id, r.rows_read)
    _publish_validation(folder, paths, r)
    return out


def _publish_validation(folder: Path, paths: Paths, r: st.BatchResult) -> None:
    """Keep the batch's validation result for Data Docs (built once per run)."""
    src = folder / st.VALIDATION
    if src.exists():
        dest = paths.gx_results / "validations" / f"{r.batch_id}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def record_failure(paths: Paths, folder: Path, error: BaseException) -> None:
    """Record a load that crashed (status ``failed``, nothing loaded) in its own transaction."""
    r = st.BatchResult.read(folder)
    with open_warehouse(paths) as con:
        if _ledger_row(con, r.batch_id) is not None:
            return
        msg = f"{r.source_file}: load failed ({type(error).__name__}); nothing was written"
        out = LoadOutcome(
            r.batch_id, r.department, r.feed, r.source_file, "failed", 0, 0, 0, 0, msg
        )
        _insert_ledger(con, r, out, dt.datetime.now(dt.UTC))

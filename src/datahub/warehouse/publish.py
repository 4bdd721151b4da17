"""Publishing: an atomic read-only snapshot for analysts, and jurisdiction extracts.

The snapshot is a copy of the build file (``DATAHUB_HOME/build.duckdb``),
reshaped in a temporary file next to the target and moved over it with
``os.replace``: a reader that opened the old file keeps
reading the old one (same inode), a new reader sees the whole new one, and
nobody ever waits for the writer. The build file holds only the ``staging``,
``integrated`` and ``marts`` schemas — ``raw``, ``quarantine``, ``audit``, the
vault and keys live in other files. Marts become tables of the default schema (bare names, e.g.
``SELECT * FROM mart_dispatch``) with views ``marts.<name>`` for qualified use.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from datahub.warehouse.db import connect, sql_literal

COPIED_SCHEMAS: tuple[str, ...] = ("staging", "integrated")
MART_SCHEMA = "marts"
MANIFEST = "_publish_manifest"
#: Division columns from finest to coarsest: decide a row's place for extracts.
DIVISION_COLUMNS: tuple[str, ...] = ("grid_code", "village_code", "township_code")
#: Marts listing persons (by person_key), not aggregates: no small-count suppression.
PERSON_LEVEL_MARTS: frozenset[str] = frozenset({"mart_dispute_early_warning"})
#: Measures derived from counts: hidden with the row's counts when those are suppressed.
DERIVED_SUFFIXES: tuple[str, ...] = ("_rate", "_share", "_minutes", "_seconds")


@dataclass(frozen=True)
class PublishResult:
    """What was published: the file and row counts per table."""

    path: Path
    run_id: str
    tables: dict[str, int]


def _tables(con: duckdb.DuckDBPyConnection, schema: str, catalog: str | None = None) -> list[str]:
    sql = "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?"
    params: list[str] = [schema]
    if catalog:
        sql += " AND database_name = ?"
        params.append(catalog)
    return [r[0] for r in con.execute(sql + " ORDER BY table_name", params).fetchall()]


def _copy_comments(
    con: duckdb.DuckDBPyConnection, src: tuple[str, str], dst: str, catalog: str | None = None
) -> None:
    """Copy the table comment and column comments of ``src`` (schema, table) onto ``dst``."""
    schema, table = src
    cat_filter = " AND database_name = ?" if catalog else ""
    params = [schema, table] + ([catalog] if catalog else [])
    row = con.execute(
        f"SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?{cat_filter}",
        params,
    ).fetchone()
    if row and row[0]:
        con.execute(f"COMMENT ON TABLE {dst} IS {sql_literal(row[0])}")
    cols = con.execute(
        "SELECT column_name, comment FROM duckdb_columns() "
        f"WHERE schema_name = ? AND table_name = ?{cat_filter} AND comment IS NOT NULL",
        params,
    ).fetchall()
    for column, comment in cols:
        con.execute(f'COMMENT ON COLUMN {dst}."{column}" IS {sql_literal(comment)}')


def _write_manifest(
    con: duckdb.DuckDBPyConnection, schema: str, run_id: str, counts: dict[str, int]
) -> None:
    """Write ``<schema>._publish_manifest`` (``schema`` may be catalog-qualified)."""
    con.execute(
        f"CREATE TABLE {schema}.{MANIFEST} (run_id VARCHAR, published_at TIMESTAMP, "
        "table_name VARCHAR, row_count BIGINT)"
    )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for table, n in counts.items():
        con.execute(f"INSERT INTO {schema}.{MANIFEST} VALUES (?, ?, ?, ?)", [run_id, now, table, n])
    con.execute(
        f"COMMENT ON TABLE {schema}.{MANIFEST} IS '发布清单 / tables and row counts of this snapshot'"
    )


def _tmp_next_to(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")


def _finish(tmp: Path, target: Path) -> None:
    """Move the finished file into place atomically (same folder, same filesystem)."""
    wal = tmp.with_name(tmp.name + ".wal")
    if wal.exists():  # DETACH checkpoints; a leftover WAL would mean a half-written file
        raise RuntimeError(f"snapshot {tmp.name} was not checkpointed")
    os.replace(tmp, target)


def _checkpointed(path: Path) -> None:
    """Fold ``path``'s WAL into the file, so that a byte copy of it holds every commit."""
    con = connect(path)
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()
    if path.with_name(path.name + ".wal").exists():
        raise RuntimeError(f"{path} still has a WAL after CHECKPOINT: is another process using it?")


def _shape_snapshot(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    """Turn a copy of the build file into the snapshot layout; return its row counts.

    Anything outside the published schemas goes; marts move to ``main`` (bare
    names for analysts) and leave views ``marts.<name>`` behind.
    """
    keep = {*COPIED_SCHEMAS, MART_SCHEMA, "main"}
    for (schema,) in con.execute(
        "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database() "
        "AND NOT internal AND schema_name NOT IN ('information_schema', 'pg_catalog')"
    ).fetchall():
        if schema not in keep:
            con.execute(f'DROP SCHEMA "{schema}" CASCADE')
    for table in _tables(con, "main"):
        con.execute(f'DROP TABLE main."{table}"')
    counts: dict[str, int] = {}
    for schema in COPIED_SCHEMAS:
        for table in _tables(con, schema):
            counts[f"{schema}.{table}"] = _count(con, f"{schema}.{table}")
    for table in _tables(con, MART_SCHEMA):
        con.execute(f"CREATE TABLE main.{table} AS SELECT * FROM {MART_SCHEMA}.{table}")
        _copy_comments(con, (MART_SCHEMA, table), f"main.{table}")
        con.execute(f"DROP TABLE {MART_SCHEMA}.{table}")
        con.execute(f"CREATE VIEW {MART_SCHEMA}.{table} AS SELECT * FROM main.{table}")
        counts[table] = _count(con, f"main.{table}")
    _write_manifest(con, "main", run_id, counts)
    return counts


def publish_build(build: Path, target: Path, run_id: str | None = None) -> PublishResult:
    """Publish the build file (staging, integrated, marts) as ``target``, atomically.

    The build file is checkpointed and copied byte for byte next to the target;
    only the copy is reshaped (marts as bare tables, the manifest) and then
    renamed over the target. Writing every row a second time, as a
    ``CREATE TABLE … AS`` copy would, cost as much as the models themselves.
    The build file holds no raw, quarantine, audit or vault data, so neither do
    the copy's free blocks.
    """
    run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    _checkpointed(build)
    tmp = _tmp_next_to(target)
    try:
        shutil.copyfile(build, tmp)
        con = connect(tmp)
        try:
            con.execute("BEGIN TRANSACTION")
            counts = _shape_snapshot(con, run_id)
            con.execute("COMMIT")
        finally:
            con.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        raise
    _finish(tmp, target)
    return PublishResult(target, run_id, counts)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


# ----------------------------------------------------------------------------- extracts


def jurisdiction_codes(con: duckdb.DuckDBPyConnection, code: str) -> list[str]:
    """The division ``code`` and every division below it (from ``integrated.dim_division``)."""
    rows = con.execute(
        """
        WITH RECURSIVE tree(division_code) AS (
            SELECT division_code FROM integrated.dim_division WHERE division_code = ?
            UNION
            SELECT d.division_code FROM integrated.dim_division AS d
            JOIN tree ON d.parent_code = tree.division_code
        )
        SELECT division_code FROM tree ORDER BY division_code
        """,
        [code],
    ).fetchall()
    if not rows:
        raise ValueError(f"unknown jurisdiction {code!r}: not a division code of the snapshot")
    return [r[0] for r in rows]


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = ? AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
            [catalog, table],
        ).fetchall()
    ]


def _finest_division(columns: Iterable[str]) -> str | None:
    """SQL for a row's finest non-null division code, or None if the table has no division column."""
    names = set(columns)
    present = [c for c in DIVISION_COLUMNS if c in names]
    if not present:
        return None
    return f"coalesce({', '.join(present)})"


def _suppressed_select(columns: list[tuple[str, str]], threshold: int) -> str:
    """SELECT list hiding counts in (0, threshold) and the measures derived from them."""
    counts = [c for c, _t in columns if c.startswith("n_")]
    if not counts:
        return ", ".join(f'"{c}"' for c, _t in columns)
    small = " OR ".join(f'("{c}" > 0 AND "{c}" < {threshold})' for c in counts)
    parts = []
    for c, _t in columns:
        if c in counts or c.endswith(DERIVED_SUFFIXES):
            parts.append(f'CASE WHEN {small} THEN NULL ELSE "{c}" END AS "{c}"')
        else:
            parts.append(f'"{c}"')
    return ", ".join(parts)


def publish_extract(
    published: Path, jurisdiction: str, out: Path, threshold: int = 5
) -> PublishResult:
    """Write a DuckDB extract of the marts with only rows of ``jurisdiction`` and its children.

    A row belongs to the jurisdiction when its finest division code (grid, else
    community/village, else township) lies in the jurisdiction's subtree, so
    totals of a parent division never leak into a child's extract. In aggregate
    marts, rows with a count between 1 and ``threshold - 1`` have their counts
    and derived rates set to NULL. Marts without a division column are left out.
    """
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    con = duckdb.connect(":memory:")
    counts: dict[str, int] = {}
    tmp = _tmp_next_to(out)
    try:
        con.execute(f"ATTACH {sql_literal(published)} AS src (READ_ONLY)")
        con.execute("USE src")
        codes = jurisdiction_codes(con, jurisdiction)
        con.execute("USE memory")
        con.execute("CREATE TEMP TABLE _scope AS SELECT unnest(?::VARCHAR[]) AS code", [codes])
        con.execute(f"ATTACH {sql_literal(tmp)} AS ext")
        con.execute("CREATE SCHEMA IF NOT EXISTS ext.integrated")
        con.execute(
            "CREATE TABLE ext.integrated.dim_division AS SELECT * FROM src.integrated.dim_division "
            "WHERE division_code IN (SELECT code FROM _scope)"
        )
        counts["integrated.dim_division"] = _count(con, "ext.integrated.dim_division")
        for table in _tables(con, "main", catalog="src"):
            if table.startswith("_"):
                continue
            columns = _columns(con, "src", table)
            finest = _finest_division(c for c, _t in columns)
            if finest is None:
                continue
            select = (
                ", ".join(f'"{c}"' for c, _t in columns)
                if table in PERSON_LEVEL_MARTS
                else _suppressed_select(columns, threshold)
            )
            con.execute(
                f"CREATE TABLE ext.main.{table} AS SELECT {select} FROM src.main.{table} "
                f"WHERE {finest} IN (SELECT code FROM _scope)"
            )
            _copy_comments(con, ("main", table), f"ext.main.{table}", catalog="src")
            counts[table] = _count(con, f"ext.main.{table}")
        _write_manifest(con, "ext.main", run_id, counts)
        con.execute("DETACH ext")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    _finish(tmp, out)
    return PublishResult(out, run_id, counts)


def open_published(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the published snapshot read-only (analyst side)."""
    return connect(path, read_only=True)

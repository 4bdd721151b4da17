"""The build file beside the warehouse: fresh per build, warehouse read-only, publish = copy.

Real DuckDB files in a temporary DATAHUB_HOME; no pipeline run needed.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from datahub.config import Paths
from datahub.warehouse.build import build_connection, new_build_file, publish
from datahub.warehouse.db import connect


def _warehouse(paths: Paths) -> None:
    con = connect(paths.warehouse)
    try:
        con.execute("CREATE SCHEMA raw; CREATE SCHEMA audit")
        con.execute(
            "CREATE TABLE raw.things AS SELECT range AS n, 'k1_' || range AS x_token FROM range(5)"
        )
        con.execute("CREATE TABLE audit.batch_ledger AS SELECT 'b1' AS batch_id")
    finally:
        con.close()


def _tables(path: Path) -> set[str]:
    con = connect(path, read_only=True)
    try:
        rows = con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
            "UNION ALL SELECT schema_name || '.' || view_name || ' (view)' FROM duckdb_views() "
            "WHERE NOT internal"
        ).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def _build(paths: Paths, rows: int) -> None:
    new_build_file(paths)
    with build_connection(paths) as con:
        con.execute(
            "CREATE SCHEMA staging; CREATE SCHEMA marts; CREATE SCHEMA IF NOT EXISTS integrated"
        )
        con.execute(f"CREATE TABLE staging.stg_things AS SELECT * FROM raw.things WHERE n < {rows}")
        con.execute(
            "CREATE TABLE marts.mart_things AS SELECT count(*) AS n_things FROM staging.stg_things"
        )
        con.execute("COMMENT ON TABLE marts.mart_things IS 'things'")
        con.execute("COMMENT ON COLUMN marts.mart_things.n_things IS 'how many'")
        con.execute(
            "CREATE TABLE IF NOT EXISTS integrated.person_key_registry (person_key VARCHAR PRIMARY KEY, first_run VARCHAR)"
        )
        con.execute("INSERT INTO integrated.person_key_registry SELECT 'p' || ?, 'r'", [rows])
        # what the linkage writes: a finished build has a cross-reference
        con.execute("CREATE TABLE integrated.person_xref AS SELECT ? AS n_records", [rows])


def test_models_read_the_warehouse_but_cannot_write_it(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    _warehouse(paths)
    _build(paths, 3)
    with build_connection(paths) as con:
        assert con.execute("SELECT count(*) FROM staging.stg_things").fetchone() == (3,)
        assert con.execute("SELECT count(*) FROM audit.batch_ledger").fetchone() == (1,)
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("INSERT INTO raw.things VALUES (9, 'k1_9')")
    assert _tables(paths.warehouse) == {"raw.things", "audit.batch_ledger"}
    assert _tables(paths.build) == {
        "staging.stg_things",
        "marts.mart_things",
        "integrated.person_key_registry",
        "integrated.person_xref",
    }


def test_a_new_build_file_keeps_only_the_registry_and_sets_the_old_one_aside(
    tmp_path: Path,
) -> None:
    paths = Paths(tmp_path)
    _warehouse(paths)
    _build(paths, 3)
    new_build_file(paths)
    assert _tables(paths.build) == {"integrated.person_key_registry"}
    assert "staging.stg_things" in _tables(paths.build_previous)
    con = connect(paths.build, read_only=True)
    try:
        registry = con.execute("SELECT * FROM integrated.person_key_registry").fetchall()
    finally:
        con.close()
    assert registry == [("p3", "r")]
    with build_connection(paths) as con:  # the previous build is there to read, not to write
        n = con.execute("SELECT count(*) FROM previous_build.staging.stg_things").fetchone()
        assert n == (3,)
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DROP TABLE previous_build.staging.stg_things")


def test_a_build_that_failed_before_its_linkage_never_becomes_the_previous_one(
    tmp_path: Path,
) -> None:
    paths = Paths(tmp_path)
    _warehouse(paths)
    _build(paths, 3)
    _build(paths, 4)  # previous: the 3-row build
    new_build_file(paths)  # this build fails in its models: no cross-reference
    with build_connection(paths) as con:
        con.execute("CREATE SCHEMA staging; CREATE TABLE staging.half AS SELECT 1 AS x")
    new_build_file(paths)  # the retry
    assert "staging.half" not in _tables(paths.build_previous)
    con = connect(paths.build_previous, read_only=True)
    try:
        assert con.execute("SELECT n_records FROM integrated.person_xref").fetchall() == [(4,)]
    finally:
        con.close()
    assert not list(tmp_path.glob(".build*"))  # no temporary or failed file left behind


def test_publish_copies_the_build_into_the_snapshot_layout(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    _warehouse(paths)
    _build(paths, 4)
    result = publish(paths, run_id="r1")
    assert result.tables == {
        "staging.stg_things": 4,
        "integrated.person_key_registry": 1,
        "integrated.person_xref": 1,
        "mart_things": 1,
    }
    assert _tables(paths.published) == {
        "staging.stg_things",
        "integrated.person_key_registry",
        "integrated.person_xref",
        "main.mart_things",
        "marts.mart_things (view)",
        "main._publish_manifest",
    }
    con = connect(paths.published, read_only=True)
    try:
        assert con.execute("SELECT n_things FROM marts.mart_things").fetchone() == (4,)
        comments = con.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'mart_things' "
            "AND schema_name = 'main'"
        ).fetchall()
        manifest = con.execute("SELECT DISTINCT run_id FROM _publish_manifest").fetchall()
    finally:
        con.close()
    assert comments == [("how many",)] and manifest == [("r1",)]
    # the build file itself is left as the models wrote it
    assert "marts.mart_things" in _tables(paths.build)
    assert not list(paths.published.parent.glob(".*.tmp*"))

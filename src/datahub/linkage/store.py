"""The one class of the linkage that talks to the warehouse."""

from __future__ import annotations

import duckdb
import pandas as pd

from datahub.linkage.records import RECORD_COLUMNS

RECORDS_TABLE = "integrated.person_records"
XREF_TABLE = "integrated.person_xref"
INDEX_TABLE = "integrated.person_index"
REGISTRY_TABLE = "integrated.person_key_registry"

XREF_SCHEMA = (
    "unique_id VARCHAR, feed VARCHAR, record_key VARCHAR, role VARCHAR, person_key VARCHAR, "
    "match_probability DOUBLE, link_rule VARCHAR, source_file VARCHAR, source_row BIGINT, "
    "linked_run VARCHAR"
)
INDEX_SCHEMA = (
    "person_key VARCHAR, n_records BIGINT, n_feeds BIGINT, n_departments BIGINT, id_token VARCHAR, "
    "birth_year INTEGER, sex VARCHAR, in_police BOOLEAN, in_government BOOLEAN, "
    "in_social_security BOOLEAN, in_community BOOLEAN, linked_run VARCHAR"
)


class PersonIndexStore:
    """Reads person records and earlier keys; writes the person index and cross-reference."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def _exists(self, table: str) -> bool:
        schema, name = table.split(".")
        row = self._con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [schema, name],
        ).fetchone()
        return bool(row and row[0])

    def records(self) -> pd.DataFrame:
        """All person records (tokens only), ordered by unique_id."""
        cols = ", ".join(RECORD_COLUMNS)
        return self._con.execute(f"SELECT {cols} FROM {RECORDS_TABLE} ORDER BY unique_id").df()

    def previous_keys(self) -> dict[str, str]:
        """unique_id → person_key of the last linkage run (empty on the first run)."""
        if not self._exists(XREF_TABLE):
            return {}
        rows = self._con.execute(f"SELECT unique_id, person_key FROM {XREF_TABLE}").fetchall()
        return {str(u): str(k) for u, k in rows}

    def issued_keys(self) -> set[str]:
        """Every person_key ever issued (keys are never re-used for another person)."""
        if not self._exists(REGISTRY_TABLE):
            return set()
        return {
            str(r[0])
            for r in self._con.execute(f"SELECT person_key FROM {REGISTRY_TABLE}").fetchall()
        }

    def write(self, xref: pd.DataFrame, index: pd.DataFrame, run_id: str) -> None:
        """Replace the person index and cross-reference, and extend the key registry, atomically."""
        con = self._con
        con.execute("CREATE SCHEMA IF NOT EXISTS integrated")
        con.register("_xref_frame", xref)
        con.register("_index_frame", index)
        con.execute("BEGIN TRANSACTION")
        try:
            for table, schema, frame in (
                (XREF_TABLE, XREF_SCHEMA, "_xref_frame"),
                (INDEX_TABLE, INDEX_SCHEMA, "_index_frame"),
            ):
                con.execute(f"CREATE OR REPLACE TABLE {table} ({schema})")
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {frame}")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {REGISTRY_TABLE} "
                "(person_key VARCHAR PRIMARY KEY, first_run VARCHAR)"
            )
            con.execute(
                f"INSERT INTO {REGISTRY_TABLE} SELECT person_key, ? FROM {INDEX_TABLE} "
                f"WHERE person_key NOT IN (SELECT person_key FROM {REGISTRY_TABLE})",
                [run_id],
            )
            con.execute(
                f"COMMENT ON TABLE {XREF_TABLE} IS '人员关联 / every person-bearing source record "
                "→ person_key, with match probability and linking rule'"
            )
            con.execute(
                f"COMMENT ON TABLE {INDEX_TABLE} IS '人员索引 / one row per person found across "
                "departments (stable person_key)'"
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_xref_frame")
            con.unregister("_index_frame")
        con.execute("COMMIT")

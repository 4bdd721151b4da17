"""The one class of the linkage that talks to the warehouse.

Working tables live in an in-memory database attached to the warehouse
connection (``linkage_scratch``): they never reach the warehouse file, are
read by the final ``INSERT … SELECT`` without a copy through Python, and vanish
when it is detached.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from datahub.linkage.records import RECORD_COLUMNS, TOKEN_COLUMNS, USABLE_SQL
from datahub.linkage.sql import one_row
from datahub.warehouse.db import WAREHOUSE_CATALOG, sql_literal

RECORDS_TABLE = "integrated.person_records"
XREF_TABLE = "integrated.person_xref"
INDEX_TABLE = "integrated.person_index"
REGISTRY_TABLE = "integrated.person_key_registry"
SCRATCH = "linkage_scratch"
#: Catalog name under which the build attaches the previous build file (read-only): its
#: cross-reference carries person keys forward into a fresh build file.
PREVIOUS_CATALOG = "previous_build"
DEPARTMENTS = ("police", "government", "social_security", "community")

XREF_SCHEMA = (
    "unique_id VARCHAR, feed VARCHAR, record_key VARCHAR, role VARCHAR, person_key VARCHAR, "
    "match_probability DOUBLE, link_rule VARCHAR, source_file VARCHAR, source_row BIGINT, "
    "linked_run VARCHAR"
)
REGISTRY_SCHEMA = "person_key VARCHAR PRIMARY KEY, first_run VARCHAR"
INDEX_SCHEMA = (
    "person_key VARCHAR, n_records BIGINT, n_feeds BIGINT, n_departments BIGINT, id_token VARCHAR, "
    "birth_year INTEGER, sex VARCHAR, in_police BOOLEAN, in_government BOOLEAN, "
    "in_social_security BOOLEAN, in_community BOOLEAN, linked_run VARCHAR"
)


def _index_sql(records: str, assigned: str) -> str:
    """One row per person_key: departments, counts, ID token, most frequent birth year and sex.

    Counts go through (person, feed) groups first: a person has many records
    but few feeds. Modes: most frequent non-null value, ties to the smallest.
    """
    flags = ",\n".join(f"bool_or(department = '{d}') as in_{d}" for d in DEPARTMENTS)

    def mode(col: str) -> str:
        return f"""{col}_counts as (
            select person_key, {col}, count(*) as n from source
            where {col} is not null group by person_key, {col}
        ),
        {col}_mode as (
            select person_key, first({col} order by n desc, {col}) as {col}
            from {col}_counts group by person_key
        )"""

    return f"""
        with source as (
            select a.person_key, r.feed, r.id_token, r.birth_year, r.sex
            from {assigned} as a join {records} as r using (rid)
        ),
        by_feed as (
            select person_key, feed, split_part(feed, '.', 1) as department,
                   count(*) as n, max(id_token) as id_token
            from source group by person_key, feed
        ),
        counts as (
            select person_key, sum(n)::bigint as n_records, count(*) as n_feeds,
                   count(distinct department) as n_departments, max(id_token) as id_token,
                   {flags}
            from by_feed group by person_key
        ),
        {mode("birth_year")},
        {mode("sex")},
        final as (
            select counts.*, birth_year_mode.birth_year, sex_mode.sex
            from counts
            left join birth_year_mode using (person_key)
            left join sex_mode using (person_key)
        )
        select * from final
    """


def _in_catalog(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> bool:
    schema, name = table.split(".")
    row = one_row(
        con,
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = ? AND schema_name = ? AND table_name = ?",
        [catalog, schema, name],
    )
    return bool(row[0])


class PersonIndexStore:
    """Reads person records and earlier keys; writes the person index and cross-reference."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def _exists(self, table: str, catalog: str | None = None) -> bool:
        if catalog is None:
            catalog = str(one_row(self._con, "SELECT current_database()")[0])
        return _in_catalog(self._con, catalog, table)

    def _previous_xref(self) -> str | None:
        """The cross-reference of the last linkage: this database's, else the previous build's.

        Else the warehouse's own: a warehouse of the older one-file layout (before
        builds had their own file) kept the linkage tables, and its keys must carry
        forward into the first build of the new layout.
        """
        for catalog in (None, PREVIOUS_CATALOG, WAREHOUSE_CATALOG):
            if self._exists(XREF_TABLE, catalog):
                return XREF_TABLE if catalog is None else f"{catalog}.{XREF_TABLE}"
        return None

    @staticmethod
    def carry_over_registry(con: duckdb.DuckDBPyConnection, old: os.PathLike[str] | str) -> bool:
        """Copy the key registry of the DuckDB file ``old`` into ``con``'s database.

        Returns False (copying nothing) when ``old`` has no registry.
        """
        schema = REGISTRY_TABLE.split(".")[0]
        con.execute(f"ATTACH {sql_literal(old)} AS _previous (READ_ONLY)")
        try:
            if not _in_catalog(con, "_previous", REGISTRY_TABLE):
                return False
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f"CREATE TABLE {REGISTRY_TABLE} ({REGISTRY_SCHEMA})")
            con.execute(
                f"INSERT INTO {REGISTRY_TABLE} SELECT person_key, first_run "
                f"FROM _previous.{REGISTRY_TABLE}"
            )
            return True
        finally:
            con.execute("DETACH _previous")

    @staticmethod
    def holds_cross_reference(con: duckdb.DuckDBPyConnection, path: os.PathLike[str] | str) -> bool:
        """Whether the DuckDB file ``path`` holds a person cross-reference (a finished linkage)."""
        con.execute(f"ATTACH {sql_literal(path)} AS _candidate (READ_ONLY)")
        try:
            return _in_catalog(con, "_candidate", XREF_TABLE)
        finally:
            con.execute("DETACH _candidate")

    @contextmanager
    def memory_limit(self, limit: str | None) -> Iterator[None]:
        """DuckDB's memory limit set to ``limit`` while linking, then reset to the default.

        The limit is the database instance's: beyond it DuckDB spills to its
        temp directory instead of growing with the number of records. A limit
        the caller configured (anything but DuckDB's default) is left alone.
        """
        current = one_row(self._con, "SELECT current_setting('memory_limit')")[0]
        fresh = duckdb.connect()
        try:
            default = one_row(fresh, "SELECT current_setting('memory_limit')")[0]
        finally:
            fresh.close()
        if limit is None or current != default:
            yield
            return
        self._con.execute("SET memory_limit = ?", [limit])
        try:
            yield
        finally:
            self._con.execute("RESET memory_limit")

    @contextmanager
    def scratch(self) -> Iterator[str]:
        """An in-memory database attached for the working tables; detached (freed) afterwards."""
        self._con.execute(f"ATTACH ':memory:' AS {SCRATCH}")
        try:
            yield SCRATCH
        finally:
            self._con.execute(f"DETACH {SCRATCH}")

    def load_records(self, scratch: str) -> int:
        """Expose the person records to the linkage as the view ``{scratch}.link_records``.

        A view, not a copy: the warehouse table is compressed and cheap to scan.
        ``rid`` is the table's rowid (stable while the linkage runs; Splink and
        the clustering join on a BIGINT rather than the long unique_id). The
        model stores the records in unique_id order, so that the same records get
        the same rids in every build: Splink's EM sample and the clustering's
        tie-breaks follow rids, and a build with other rids may link differently;
        ``usable`` flags records with an ID token, a mobile, or a name with a
        residence address. Raises ``ValueError`` when the table or a column is
        missing or a unique_id repeats.
        """
        if not self._exists(RECORDS_TABLE):
            raise ValueError(f"no table {RECORDS_TABLE}: run the base models first")
        cols = {
            str(r[0])
            for r in self._con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
                "AND schema_name = 'integrated' AND table_name = 'person_records'"
            ).fetchall()
        }
        missing = [c for c in RECORD_COLUMNS if c not in cols]
        if missing:
            raise ValueError(f"person records lack columns {missing}")
        catalog = one_row(self._con, "SELECT current_database()")[0]
        tokens = ", ".join(TOKEN_COLUMNS)
        self._con.execute(
            f"CREATE VIEW {scratch}.link_records AS "
            f"SELECT rowid AS rid, unique_id, feed, event_key, {USABLE_SQL} AS usable, {tokens} "
            f'FROM "{catalog}".{RECORDS_TABLE}'
        )
        row = one_row(
            self._con, f"SELECT count(*), count(DISTINCT unique_id) FROM {scratch}.link_records"
        )
        if row[0] != row[1]:
            raise ValueError("person records repeat a unique_id")
        return int(row[0])

    def overlaps(self, scratch: str, clusters: str) -> list[tuple[int, str, int]]:
        """(cluster_rid, earlier person_key, shared records) against the last run's xref."""
        previous = self._previous_xref()
        if previous is None:
            return []
        rows = self._con.execute(
            f"SELECT c.cluster_rid, x.person_key, count(*) FROM {clusters} AS c "
            f"JOIN {scratch}.link_records AS r USING (rid) "
            f"JOIN {previous} AS x ON x.unique_id = r.unique_id GROUP BY ALL"
        ).fetchall()
        return [(int(c), str(k), int(n)) for c, k, n in rows]

    def seeds(self, scratch: str, clusters: str) -> dict[int, str]:
        """cluster_rid → the cluster's smallest unique_id (what a fresh key is derived from)."""
        rows = self._con.execute(
            f"SELECT c.cluster_rid, min(r.unique_id) FROM {clusters} AS c "
            f"JOIN {scratch}.link_records AS r USING (rid) GROUP BY c.cluster_rid"
        ).fetchall()
        return {int(c): str(u) for c, u in rows}

    def taken_keys(self) -> set[str]:
        """Every person_key ever issued or in use (keys are never re-used for another person)."""
        queries = []
        if self._exists(REGISTRY_TABLE):
            queries.append(f"SELECT person_key FROM {REGISTRY_TABLE}")
        previous = self._previous_xref()
        if previous is not None:
            queries.append(f"SELECT person_key FROM {previous}")
        if not queries:
            return set()
        return {str(r[0]) for r in self._con.execute(" UNION ".join(queries)).fetchall()}

    def write(self, scratch: str, assigned: str, run_id: str) -> None:
        """Replace the person index and cross-reference, and extend the key registry, atomically.

        ``assigned`` (in scratch) has rid, person_key, match_probability, link_rule.
        """
        con = self._con
        con.execute("CREATE SCHEMA IF NOT EXISTS integrated")
        records = f"{scratch}.link_records"
        xref_sql = f"""
            SELECT p.unique_id, p.feed, p.record_key, p.role, a.person_key, a.match_probability,
                   a.link_rule, p.source_file, p.source_row, $run AS linked_run
            FROM {assigned} AS a
            JOIN {RECORDS_TABLE} AS p ON p.rowid = a.rid
            ORDER BY a.rid
        """
        index_sql = (
            f"SELECT *, $run AS linked_run FROM ({_index_sql(records, assigned)}) "
            "ORDER BY person_key"
        )
        con.execute("BEGIN TRANSACTION")
        try:
            for table, schema, sql in (
                (XREF_TABLE, XREF_SCHEMA, xref_sql),
                (INDEX_TABLE, INDEX_SCHEMA, index_sql),
            ):
                con.execute(f"CREATE OR REPLACE TABLE {table} ({schema})")
                con.execute(f"INSERT INTO {table} BY NAME {sql}", {"run": run_id})
            con.execute(f"CREATE TABLE IF NOT EXISTS {REGISTRY_TABLE} ({REGISTRY_SCHEMA})")
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
        con.execute("COMMIT")

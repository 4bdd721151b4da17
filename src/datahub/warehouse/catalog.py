"""Data catalog and read-only queries over the published snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from datahub.warehouse.db import connect


@dataclass(frozen=True)
class CatalogEntry:
    """A published table or view with its comment and columns (name, type, comment)."""

    schema: str
    table: str
    comment: str | None
    columns: tuple[tuple[str, str, str | None], ...]

    @property
    def name(self) -> str:
        """Name analysts type: bare for the default schema, qualified otherwise."""
        return self.table if self.schema == "main" else f"{self.schema}.{self.table}"


def read_catalog(published: Path, include_views: bool = False) -> list[CatalogEntry]:
    """Tables (marts first, then integrated, then staging) of the published snapshot."""
    con = connect(published, read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name, table_name, comment FROM duckdb_tables() "
            "WHERE database_name = current_database() AND NOT table_name LIKE '\\_%' ESCAPE '\\' "
            "ORDER BY CASE schema_name WHEN 'main' THEN 0 WHEN 'integrated' THEN 1 ELSE 2 END, "
            "schema_name, table_name"
        ).fetchall()
        if include_views:
            tables += con.execute(
                "SELECT schema_name, view_name, comment FROM duckdb_views() "
                "WHERE database_name = current_database() AND NOT internal ORDER BY 1, 2"
            ).fetchall()
        cols = con.execute(
            "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY schema_name, table_name, column_index"
        ).fetchall()
    finally:
        con.close()
    by_table: dict[tuple[str, str], list[tuple[str, str, str | None]]] = {}
    for schema, table, column, dtype, comment in cols:
        by_table.setdefault((schema, table), []).append((column, dtype, comment))
    return [
        CatalogEntry(schema, table, comment, tuple(by_table.get((schema, table), [])))
        for schema, table, comment in tables
    ]


def query(published: Path, sql: str) -> pd.DataFrame:
    """Run one SQL statement read-only on the published snapshot and return the result."""
    con = connect(published, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()

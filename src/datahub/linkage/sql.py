"""Small DuckDB helpers shared by the linkage modules."""

from __future__ import annotations

from typing import Any

import duckdb


def one_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...]:
    """The single row of an aggregate query, fully fetched.

    ``fetchone()`` leaves the result open, and DuckDB then refuses to register
    a frame on the connection; ``fetchall()`` completes it.
    """
    rows = con.execute(sql, params or []).fetchall()
    if len(rows) != 1:
        raise RuntimeError(f"expected one row, got {len(rows)}")
    return tuple(rows[0])

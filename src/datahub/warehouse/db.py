"""The one place that opens DuckDB files.

DuckDB allows one writing process per file, and while it writes no other
process can even read it. Analysts therefore read the published snapshot, and
the loader is the only writer of the working warehouse.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

#: Catalog name of the working warehouse inside a build connection (attached read-only).
WAREHOUSE_CATALOG = "wh"


def connect(
    path: Path | str,
    *,
    read_only: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database file (created, with its folder, unless read-only).

    ``memory_limit`` (e.g. ``"512MB"``) caps DuckDB's buffer pool; by default it
    may take 80 % of RAM and keeps the pages of everything written cached.
    """
    p = Path(path)
    if read_only:
        if not p.exists():
            raise FileNotFoundError(f"DuckDB file {p} does not exist")
    else:
        p.parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = {}
    if threads is not None:
        config["threads"] = threads
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    return duckdb.connect(str(p), read_only=read_only, config=config)


def sql_literal(text: str | os.PathLike[str]) -> str:
    """``text`` as a quoted SQL string literal (ATTACH paths and COMMENT texts take no parameters)."""
    return "'" + str(text).replace("'", "''") + "'"


def memory(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection (for vectorised work that persists nothing)."""
    config: dict[str, str | bool | int | float | list[str]] = {}
    if threads is not None:
        config["threads"] = threads
    return duckdb.connect(":memory:", config=config)

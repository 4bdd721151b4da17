"""Warehouse side of key rotation, and the warehouse's key canary.

Rotation maps every old token to its new-version token (the mapping comes
from the vault, which holds every token's encrypted original). Here every
VARCHAR column ending in ``_token`` of every base table in every schema is
rewritten through that mapping in one transaction; if any token of another
version is left, the transaction is rolled back.

The canary table ``audit.key_canary`` holds the canary token of the key version
the warehouse's tokens were made with; the loader calls
:func:`ensure_warehouse_key` at the start of its transaction so that a wrong
key stops the run before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from datahub.privacy.keys import Keyring, check_canary
from datahub.warehouse.db import connect


def _first(rows: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """First row of a fully fetched result (DuckDB refuses new work while a result is open)."""
    return rows[0] if rows else None


CANARY_SCHEMA = "audit"
CANARY_TABLE = "audit.key_canary"
_SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def token_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every VARCHAR ``*_token`` column of every base table."""
    rows = con.execute(
        """
        SELECT c.table_schema, c.table_name, c.column_name
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema
         AND t.table_name = c.table_name
        WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database()
          AND c.column_name LIKE '%\\_token' ESCAPE '\\' AND c.data_type = 'VARCHAR'
          AND c.table_schema NOT IN ('information_schema', 'pg_catalog')
        ORDER BY 1, 2, 3
        """
    ).fetchall()
    return [(str(s), str(t), str(c)) for s, t, c in rows]


def read_warehouse_canary(con: duckdb.DuckDBPyConnection) -> str | None:
    """The stored canary token, or None for a warehouse that has none yet."""
    # look the table up instead of catching CatalogException: an error would abort the
    # caller's open transaction
    exists = _first(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_schema = ? AND table_name = ?",
            [CANARY_SCHEMA, CANARY_TABLE.split(".", 1)[1]],
        ).fetchall()
    )
    if not exists or not exists[0]:
        return None
    row = _first(
        con.execute(
            f"SELECT canary FROM {CANARY_TABLE} ORDER BY written_at DESC LIMIT 1"
        ).fetchall()
    )
    return None if row is None else str(row[0])


def write_warehouse_canary(con: duckdb.DuckDBPyConnection, keyring: Keyring, version: int) -> None:
    """Replace the stored canary by the one of ``version`` (caller owns the transaction)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {CANARY_SCHEMA}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {CANARY_TABLE} "
        "(version INTEGER NOT NULL, canary VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL, "
        "written_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
    )
    con.execute(f"DELETE FROM {CANARY_TABLE}")
    con.execute(
        f"INSERT INTO {CANARY_TABLE} (version, canary, fingerprint) VALUES (?, ?, ?)",
        [version, keyring.canary(version), keyring.fingerprint(version)],
    )


def ensure_warehouse_key(con: duckdb.DuckDBPyConnection, keyring: Keyring) -> None:
    """Check the key file against the warehouse canary (raise ``KeyProblem``), or write it if new.

    Call inside the loader's transaction, before anything else is written.
    """
    stored = read_warehouse_canary(con)
    if stored is None:
        write_warehouse_canary(con, keyring, keyring.current_version)
    else:
        check_canary(keyring, stored, where="the warehouse")


@dataclass
class RetokeniseReport:
    """What a warehouse re-tokenisation changed: rows updated per ``schema.table.column``."""

    updated: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.updated.values())


def retokenise_connection(
    con: duckdb.DuckDBPyConnection, mapping: pd.DataFrame, keyring: Keyring, new_version: int
) -> RetokeniseReport:
    """Rewrite every ``*_token`` column through ``mapping`` (old_token → new_token) in one transaction."""
    report = RetokeniseReport()
    prefix = f"k{new_version}_"
    con.register("rot_map", mapping[["old_token", "new_token"]])
    try:
        con.execute("BEGIN TRANSACTION")
        for schema, table, column in token_columns(con):
            target = f"{_q(schema)}.{_q(table)}"
            col = _q(column)
            before = _first(
                con.execute(
                    f"SELECT count(*) FROM {target} WHERE {col} IS NOT NULL AND NOT starts_with({col}, ?)",
                    [prefix],
                ).fetchall()
            )
            con.execute(
                f"UPDATE {target} SET {col} = m.new_token FROM rot_map m WHERE {target}.{col} = m.old_token"
            )
            left = _first(
                con.execute(
                    f"SELECT count(*) FROM {target} WHERE {col} IS NOT NULL AND NOT starts_with({col}, ?)",
                    [prefix],
                ).fetchall()
            )
            if left and left[0]:
                raise RuntimeError(
                    f"{schema}.{table}.{column}: {left[0]} tokens have no entry in the vault; "
                    "rotation rolled back (was the vault appended for every loaded batch?)"
                )
            report.updated[f"{schema}.{table}.{column}"] = int(before[0]) if before else 0
        write_warehouse_canary(con, keyring, new_version)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("rot_map")
    return report


def retokenise_warehouse(
    path: Path, mapping: pd.DataFrame, keyring: Keyring, new_version: int
) -> RetokeniseReport | None:
    """Re-tokenise the warehouse file at ``path`` (None when it does not exist yet).

    The key file is checked against the stored canary first: the stored canary
    must be of the old (current) version or already of ``new_version`` (resumed rotation).
    """
    if not path.exists():
        return None
    con = connect(path)
    try:
        stored = read_warehouse_canary(con)
        if stored is not None and not stored.startswith(f"k{new_version}_"):
            check_canary(keyring, stored, where=f"the warehouse {path}")
        return retokenise_connection(con, mapping, keyring, new_version)
    finally:
        con.close()

"""The loader's schema check: DDL runs once, and again only when something is missing or stale."""

from __future__ import annotations

from pathlib import Path

from datahub.warehouse.db import connect
from datahub.warehouse.loader import COMMENTS, _schema_ready, ensure_schema


def test_schema_is_created_once_and_repaired_when_stale(tmp_path: Path) -> None:
    con = connect(tmp_path / "w.duckdb")
    try:
        assert not _schema_ready(con)
        ensure_schema(con)
        assert _schema_ready(con)
        table = next(iter(COMMENTS))
        con.execute(f"COMMENT ON TABLE {table} IS 'an older text'")
        assert not _schema_ready(con)  # a changed comment text is applied again
        ensure_schema(con)
        assert _schema_ready(con)
        con.execute("DROP TABLE audit.key_canary")
        assert not _schema_ready(con)
        ensure_schema(con)
        assert _schema_ready(con)
    finally:
        con.close()

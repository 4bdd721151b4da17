"""The staging dedup rules, run from the real model file on a real DuckDB file.

Exact copies count once, the latest delivery of a key wins, and a key with two
different rows in that delivery is flagged ``is_near_duplicate`` (first row kept).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from datahub.warehouse.db import connect
from datahub.warehouse.models import MODELS_DIR, parse_model, run_model

A, B = "patrol_teams_20260601.csv", "patrol_teams_20260602.csv"
LOADED = {A: dt.datetime(2026, 6, 1, 8), B: dt.datetime(2026, 6, 2, 8)}

# (team_no, team_type, members, source file, row number)
ROWS = [
    ("T1", "x", 5, A, 1),  # the same content in two deliveries: one row, from B
    ("T1", "x", 5, B, 1),
    ("T2", "x", 5, A, 2),  # two different rows in one delivery: near-duplicate, first kept
    ("T2", "y", 6, A, 3),
    ("T3", "x", 5, A, 4),  # changed in the later delivery: B wins, not a near-duplicate
    ("T3", "y", 6, B, 2),
    ("T4", "x", 5, B, 3),  # an exact copy inside one delivery: one row, not a near-duplicate
    ("T4", "x", 5, B, 4),
    ("T5", "x", 5, A, 5),  # two contents in A, one of them again in B: B's row, not flagged
    ("T5", "y", 6, A, 6),
    ("T5", "x", 5, B, 5),
    ("T6", "x", 5, A, 7),  # only in the older snapshot
]


def test_staging_dedup_rules(tmp_path: Path) -> None:
    con = connect(tmp_path / "w.duckdb")
    try:
        con.execute("CREATE SCHEMA raw")
        con.execute(
            "CREATE TABLE raw.community__patrol_teams (team_no VARCHAR, team_type VARCHAR, "
            "grid_code VARCHAR, members INTEGER, leader_name_token VARCHAR, "
            "leader_name_pinyin_token VARCHAR, leader_name_status VARCHAR, "
            "leader_phone_token VARCHAR, leader_phone_kind VARCHAR, founded_on DATE, "
            "_batch_id VARCHAR, _source_file VARCHAR, _row_number INTEGER, _loaded_at TIMESTAMP)"
        )
        for team, kind, members, file, row in ROWS:
            con.execute(
                "INSERT INTO raw.community__patrol_teams VALUES "
                "(?, ?, 'g1', ?, 'n', 'p', 'ok', 't', 'mobile', DATE '2020-01-01', ?, ?, ?, ?)",
                [team, kind, members, f"batch-{file}", file, row, LOADED[file]],
            )
        model = parse_model(MODELS_DIR / "staging" / "stg_community__patrol_teams.sql", "staging")
        assert run_model(con, model) == 6
        got = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT team_no, source_file, source_row, team_type, is_near_duplicate, "
                "in_latest_snapshot FROM staging.stg_community__patrol_teams"
            ).fetchall()
        }
    finally:
        con.close()
    assert got == {
        "T1": (B, 1, "x", False, True),
        "T2": (A, 2, "x", True, False),
        "T3": (B, 2, "y", False, True),
        "T4": (B, 3, "x", False, True),
        "T5": (B, 5, "x", False, True),
        "T6": (A, 7, "x", False, False),
    }

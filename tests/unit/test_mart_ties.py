"""Marts give one answer whatever order their input rows arrive in.

A person's "latest dispute" is ambiguous when two disputes were found on the
same day; the mart must then pick by a rule (the higher dispute number), not by
whichever row the scan met first, or two builds of the same data (one plain,
one on Celery workers) publish different marts. Run from the real model file
on a real DuckDB file, with the rows inserted in both orders.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from datahub.warehouse.db import connect
from datahub.warehouse.models import MODELS_DIR, parse_model, run_model

# dispute_no, found_on, dispute_type, risk_level, status, grid_code
DISPUTES = [
    ("JF0001", "2026-06-01", "邻里纠纷", "低", "办结", "G1"),
    ("JF0002", "2026-06-03", "婚姻家庭", "高", "调解中", "G2"),
    (
        "JF0003",
        "2026-06-03",
        "土地纠纷",
        "中",
        "办结",
        "G3",
    ),  # same day as JF0002, registered later
]


def _build(tmp_path: Path, disputes: list[tuple[str, ...]]) -> tuple[object, ...]:
    con = connect(tmp_path / "w.duckdb")
    try:
        for schema in ("staging", "integrated"):
            con.execute(f"CREATE SCHEMA {schema}")
        con.execute(
            "CREATE TABLE staging.stg_community__disputes (dispute_no VARCHAR, found_on DATE, "
            "dispute_type VARCHAR, risk_level VARCHAR, status VARCHAR, grid_code VARCHAR)"
        )
        con.executemany(
            "INSERT INTO staging.stg_community__disputes VALUES (?, ?, ?, ?, ?, ?)", disputes
        )
        con.execute(
            "CREATE TABLE staging.stg_community__dispute_parties (record_key VARCHAR, dispute_no VARCHAR)"
        )
        con.executemany(
            "INSERT INTO staging.stg_community__dispute_parties VALUES (?, ?)",
            [(f"dp-{d[0]}", d[0]) for d in disputes],
        )
        con.execute(
            "CREATE TABLE staging.stg_police__incidents "
            "(record_key VARCHAR, incident_no VARCHAR, received_at TIMESTAMP)"
        )
        con.execute(
            "INSERT INTO staging.stg_police__incidents VALUES ('in-1', 'JJ1', '2026-06-05 10:00')"
        )
        con.execute(
            "CREATE TABLE staging.stg_police__incident_persons (record_key VARCHAR, incident_no VARCHAR)"
        )
        con.execute(
            "CREATE TABLE integrated.person_xref (feed VARCHAR, record_key VARCHAR, person_key VARCHAR)"
        )
        con.executemany(
            "INSERT INTO integrated.person_xref VALUES (?, ?, 'P1')",
            [("community.dispute_parties", f"dp-{d[0]}") for d in disputes]
            + [("police.incidents", "in-1")],
        )
        con.execute(
            "CREATE TABLE integrated.dim_division "
            "(division_code VARCHAR, township_code VARCHAR, village_code VARCHAR)"
        )
        con.executemany(
            "INSERT INTO integrated.dim_division VALUES (?, 'T', ?)",
            [(g, f"V{g}") for g in ("G1", "G2", "G3")],
        )
        model = parse_model(MODELS_DIR / "marts" / "mart_dispute_early_warning.sql", "marts")
        assert run_model(con, model) == 1
        row = con.execute(
            "SELECT grid_code, village_code, last_dispute_type, dispute_count, last_dispute_on::VARCHAR, "
            "police_incident_count, incident_after_dispute FROM marts.mart_dispute_early_warning"
        ).fetchone()
        assert row is not None
        return tuple(row)
    finally:
        con.close()


@pytest.mark.parametrize("order", ["as_registered", "reversed"])
def test_latest_dispute_tie_goes_to_the_later_registered_one(tmp_path: Path, order: str) -> None:
    rows = DISPUTES if order == "as_registered" else DISPUTES[::-1]
    assert _build(tmp_path, rows) == ("G3", "VG3", "土地纠纷", 3, "2026-06-03", 1, True)

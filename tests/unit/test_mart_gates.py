"""Mart gate suites on small real DuckDB tables: the township share is counted in incidents."""

from __future__ import annotations

import pytest

from datahub.warehouse.db import memory
from datahub.warehouse.mart_gates import load_suites, validate_frame


def _share_suite() -> dict:  # type: ignore[type-arg]
    return next(s for s in load_suites() if s["name"] == "mart_dispatch_township_share")


@pytest.mark.parametrize(
    ("groups", "passes"),
    [
        # many small null-township groups, few incidents in them: 0.5 % of incidents
        ([("A", None, 1)] * 10 + [("A", "511181001", 1990)], True),
        # one big group without a township: 20 % of incidents
        ([("A", None, 200), ("A", "511181001", 800)], False),
    ],
)
def test_township_share_is_counted_in_incidents(groups: list, passes: bool) -> None:  # type: ignore[type-arg]
    suite = _share_suite()
    con = memory()
    try:
        con.execute("CREATE SCHEMA marts")
        con.execute(
            "CREATE TABLE marts.mart_dispatch (station VARCHAR, township_code VARCHAR, n_incidents BIGINT)"
        )
        con.executemany("INSERT INTO marts.mart_dispatch VALUES (?, ?, ?)", groups)
        frame = con.execute(suite["frame_sql"]).df()
    finally:
        con.close()
    result = validate_frame(suite["name"], suite["expectations"], frame)
    assert result.success is passes, result.failed

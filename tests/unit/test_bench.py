"""The benchmark harness: its measuring helpers and a tiny smoke run (no full benchmark here)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from datahub.config import REPO_ROOT

BENCH = REPO_ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

from measure import StageClock, linear_fit_ok, memory_flat, run_child  # noqa: E402


def test_linear_fit_accepts_fixed_startup_and_rejects_quadratic() -> None:
    assert linear_fit_ok([1, 2, 5], [10.0, 18.0, 42.0])  # start-up cost amortised
    assert not linear_fit_ok([1, 2, 5], [10.0, 40.0, 250.0])  # quadratic


def test_memory_flat_within_factor() -> None:
    assert memory_flat([500.0, 600.0, 740.0])
    assert not memory_flat([500.0, 900.0])


def test_stage_clock_nesting_is_exclusive() -> None:
    clock = StageClock()
    with clock.stage("outer"):
        time.sleep(0.05)
        with clock.stage("inner"):
            time.sleep(0.1)
    stages = clock.close()["all"]
    assert stages["inner"]["seconds"] >= 0.1
    # the inner 0.1 s is not counted in the outer stage
    assert stages["outer"]["seconds"] < stages["inner"]["seconds"]
    assert stages["outer"]["peak_rss_mb"] > 0


def test_child_peak_rss_is_the_childs_own() -> None:
    """Peak RSS comes from the child's own rusage (a step with no file stays small)."""
    res = run_child("floor", {"sources": "/nonexistent", "feed": "police.incidents"})
    assert res.payload["rows"] == 0 and res.payload["files"] == 0
    assert res.peak_rss_mb < 1024


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    res = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--persons", "300", "--incidents-per-day", "20", "--scales", "1", "--days", "2",
         "--no-build", "--workers", "2", "--label", "smoke", "--results", str(out),
         "--alone", "police.incidents,community.visits"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    files = list(out.glob("*-smoke.json"))
    assert len(files) == 1 and files[0].with_suffix(".md").exists()
    return json.loads(files[0].read_text())


def test_smoke_run_reports_every_feed_against_the_floor(smoke: dict) -> None:
    run = smoke["runs"][0]
    feeds = run["ingest"]["feeds"]
    assert "police.incidents" in feeds
    for key in ("police.incidents", "community.visits"):  # timed alone (--alone)
        assert feeds[key]["ingest_vs_floor_ratio"] > 0, key
        assert feeds[key]["seconds"] > 0 and feeds[key]["busy_seconds_in_whole_run"] > 0, key
    assert feeds["police.key_persons"]["ingest_vs_floor_ratio"] is None  # not timed alone
    # the floor and the pipeline read the same files: same number of data rows
    assert feeds["police.incidents"]["rows"] == run["floor"]["police.incidents"]["rows"] > 0
    assert run["floor"]["community.visits"].get("floor_on", "").startswith("utf-8 transcoded")
    assert {"read", "normalise + pseudonymise (SQL)", "validate", "load"} <= set(
        run["ingest"]["stages"]
    )
    for key in ("python", "duckdb", "gx", "airflow", "splink"):
        assert smoke["versions"][key]
    assert smoke["scaling"]["scales"] == [1.0]


def test_smoke_run_times_start_up_and_a_parallel_ingest(smoke: dict) -> None:
    run = smoke["runs"][0]
    assert run["ingest"]["startup_seconds"] > 0
    par = run["ingest_parallel"]
    assert par["workers"] >= 2
    # the parallel run read exactly the rows the one-process run read
    assert par["rows"] == sum(f["counts"]["read"] for f in run["ingest"]["feeds"].values()) > 0
    assert par["ingest_vs_floor_ratio"] > 0 and par["peak_rss_tree_mb"] > 0

"""End to end: the four ingest DAGs (dag.test) over sample_sources into a temporary DATAHUB_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from datahub.config import SAMPLE_SOURCES, Paths
from datahub.warehouse.db import connect

DEPARTMENTS = ("government", "police", "social_security", "community")

pytestmark = pytest.mark.skipif(
    not (SAMPLE_SOURCES / "police").is_dir(), reason="sample_sources not generated"
)


def _counts(paths: Paths) -> dict[str, int]:
    con = connect(paths.warehouse, read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'quarantine') ORDER BY 1"
        ).fetchall()
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for (t,) in tables}  # type: ignore[index]
    finally:
        con.close()


def test_all_runs_succeed_and_the_ledger_balances(
    ingested: dict[str, str], datahub_home: Path
) -> None:
    assert set(ingested.values()) == {"success"}, ingested
    con = connect(Paths(datahub_home).warehouse, read_only=True)
    try:
        bad = con.execute(
            "SELECT count(*) FROM audit.batch_ledger "
            "WHERE rows_read <> rows_loaded + rows_quarantined + rows_rejected"
        ).fetchone()
        per_file = con.execute(
            "SELECT department, count(*), sum(rows_read), sum(rows_loaded), sum(rows_quarantined) "
            "FROM audit.batch_ledger WHERE status = 'loaded' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        raw = con.execute("SELECT count(*) FROM raw.police__incidents").fetchone()
        loaded = con.execute(
            "SELECT sum(rows_loaded) FROM audit.batch_ledger WHERE status = 'loaded' AND feed = 'incidents'"
        ).fetchone()
        results = con.execute(
            "SELECT count(*), count(DISTINCT batch_id) FROM audit.validation_results"
        ).fetchone()
    finally:
        con.close()
    assert bad == (0,)
    files = {d: sum(1 for _ in (SAMPLE_SOURCES / d).glob("*.csv")) for d in DEPARTMENTS}
    assert {row[0]: row[1] for row in per_file} == files
    assert raw == loaded and raw[0] > 0  # type: ignore[index]
    assert results[0] > 0 and results[1] == sum(files.values())  # type: ignore[index]


def test_staged_batches_are_pruned_once_loaded(
    ingested: dict[str, str], datahub_home: Path
) -> None:
    from datahub.pipeline import staged_batches

    paths = Paths(datahub_home)
    con = connect(paths.warehouse, read_only=True)
    try:
        n_batches = con.execute("SELECT count(*) FROM audit.batch_ledger").fetchone()
    finally:
        con.close()
    assert n_batches is not None and n_batches[0] > 0
    assert paths.staging.is_dir()  # prepare handed its Parquet over through it
    assert list(staged_batches(paths)) == []


def test_quarantine_holds_the_injected_defects(
    ingested: dict[str, str], datahub_home: Path
) -> None:
    from datahub.warehouse.quarantine_score import quarantine_score

    score = quarantine_score(Paths(datahub_home), SAMPLE_SOURCES)
    assert score.recall >= 0.95, score.render()
    assert score.reason_agree == score.true_positive, score.render()
    assert score.precision >= 0.95, score.render()


def test_data_docs_exist_and_nothing_leaks(ingested: dict[str, str], datahub_home: Path) -> None:
    from datahub.privacy.leaks import collect_source_values, scan_paths

    paths = Paths(datahub_home)
    index = paths.data_docs / "index.html"
    assert index.exists()
    assert any((paths.data_docs / "validations").rglob("*.html"))
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    report = scan_paths(
        [paths.warehouse, paths.data_docs, paths.gx_results, logs],
        collect_source_values(SAMPLE_SOURCES),
    )
    assert report.clean, "\n".join(str(f) for f in report.findings)
    assert str(paths.warehouse) in " ".join(report.scanned)


def test_rerunning_the_dags_changes_no_row_count(
    ingested: dict[str, str], dagbag, datahub_home: Path
) -> None:  # type: ignore[no-untyped-def]
    paths = Paths(datahub_home)
    before = _counts(paths)
    run = dagbag.dags["ingest_community"].test(run_conf={"scope": "all"})
    assert str(run.state) == "success"
    assert _counts(paths) == before
    con = connect(paths.warehouse, read_only=True)
    try:
        skipped = con.execute(
            "SELECT count(*) FROM audit.batch_ledger WHERE department = 'community' "
            "AND status = 'skipped_duplicate_file'"
        ).fetchone()
    finally:
        con.close()
    assert skipped == (sum(1 for _ in (SAMPLE_SOURCES / "community").glob("*.csv")),)

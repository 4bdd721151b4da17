"""build_warehouse DAG (dag.test) after the ingest DAGs, over the whole committed sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from datahub.config import SAMPLE_SOURCES, Paths

pytestmark = pytest.mark.skipif(
    not (SAMPLE_SOURCES / "police").is_dir(), reason="sample_sources not generated"
)


def test_dag_shape(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["build_warehouse"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "models", "linkage", "marts", "mart_gates", "publish",
    ]  # fmt: skip
    for t in dag.tasks:
        assert t.pool == "datahub_warehouse" and t.queue == "warehouse" and t.retries >= 2
    assert {"datahub", "warehouse"} <= set(dag.tags) and dag.doc_md


def test_build_after_ingest_publishes_a_clean_linked_snapshot(
    dagbag,
    ingested: dict[str, str],
    datahub_home: Path,  # type: ignore[no-untyped-def]
) -> None:
    from datahub.linkage.score import read_truth, score_linkage
    from datahub.privacy.leaks import collect_source_values, scan_paths
    from datahub.warehouse.db import connect

    assert set(ingested.values()) == {"success"}
    run = dagbag.dags["build_warehouse"].test()
    assert str(run.state) == "success"
    paths = Paths(datahub_home)
    con = connect(paths.published, read_only=True)
    try:
        xref = con.execute("SELECT * FROM integrated.person_xref").df()
        marts = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name LIKE 'mart_%'"
        ).fetchone()
    finally:
        con.close()
    assert marts == (7,)
    # linkage targets on the committed sample
    score = score_linkage(xref, read_truth(SAMPLE_SOURCES))
    assert score.precision >= 0.99, score
    assert score.recall >= 0.95, score
    report = scan_paths([paths.published], collect_source_values(SAMPLE_SOURCES))
    assert not report.findings, report

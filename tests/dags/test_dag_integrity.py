"""DAG integrity: the dags/ folder imports cleanly and every DAG follows the house rules."""

from __future__ import annotations

from datahub.airflow_support import POOL, WAREHOUSE_QUEUE, asset_uri

DEPARTMENTS = ("government", "police", "social_security", "community")


def test_dagbag_has_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert {f"ingest_{d}" for d in DEPARTMENTS} <= set(dagbag.dags)


def test_every_dag_has_tags_docs_retries_and_daily_schedule(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.retries >= 2, (dag_id, task.task_id)
            assert task.retry_delay.total_seconds() > 0, (dag_id, task.task_id)
    for d in DEPARTMENTS:
        dag = dagbag.dags[f"ingest_{d}"]
        assert dag.catchup is False
        assert dag.params["scope"] == "day"


def test_warehouse_writers_use_the_single_slot_pool_and_update_the_asset(dagbag) -> None:  # type: ignore[no-untyped-def]
    for d in DEPARTMENTS:
        dag = dagbag.dags[f"ingest_{d}"]
        load = dag.get_task("load_batches")
        assert load.pool == POOL
        assert load.queue == WAREHOUSE_QUEUE
        assert [a.uri for a in load.outlets] == [asset_uri(d)]
        # prepare tasks never write the warehouse: they must not hold the writer slot
        assert dag.get_task("prepare_file").pool != POOL
        # the prune reads the ledger (a DuckDB file has one process at a time) after the loads
        prune = dag.get_task("prune_staging")
        assert (prune.pool, prune.queue) == (POOL, WAREHOUSE_QUEUE)
        assert prune.upstream_task_ids == {"load_batches"}
        assert prune.trigger_rule == "all_success"


def test_a_run_for_a_day_picks_exactly_that_days_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from datahub.pipeline import files_for_day

    police = tmp_path / "police"
    police.mkdir()
    for name in (
        "incidents_20260601.csv",
        "incidents_20260602.csv",
        "incident_persons_20260602.csv",
        "sensors_20260531.csv",
        "sensors_20260701.csv",
        "notes.txt",
    ):
        (police / name).write_text("x")
    community = tmp_path / "community"
    community.mkdir()
    (community / "visits_202605.csv").write_text("x")
    (community / "visits_202606.csv").write_text("x")
    day = [p.name for p in files_for_day(tmp_path, "police", dt.date(2026, 6, 2))]
    assert day == [
        "sensors_20260531.csv",
        "incidents_20260602.csv",
        "incident_persons_20260602.csv",
    ]
    # monthly files arrive on the 1st for the month before; nothing on other days
    assert [p.name for p in files_for_day(tmp_path, "community", dt.date(2026, 6, 1))] == [
        "visits_202605.csv"
    ]
    assert files_for_day(tmp_path, "community", dt.date(2026, 6, 2)) == []

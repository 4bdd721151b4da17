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

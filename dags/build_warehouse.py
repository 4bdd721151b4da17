"""Build the warehouse after ingestion: models → linkage → marts → mart gates → publish.

Thin: every task calls one function of :mod:`datahub.warehouse.build`. Scheduled
on the four ingest Assets (any department's new raw data triggers a rebuild).
All tasks write the warehouse, so they share the pool ``datahub_warehouse``
(one slot: DuckDB allows one writer) and the ``warehouse`` queue.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Asset, dag, task

from datahub.airflow_support import POOL, WAREHOUSE_QUEUE, asset_uri
from datahub.sources.contracts import DEPARTMENTS

RAW_ASSETS = [Asset(asset_uri(d)) for d in DEPARTMENTS]
PUBLISHED = Asset("datahub://published/snapshot")

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "datahub-warehouse",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
    "pool": POOL,
    "queue": WAREHOUSE_QUEUE,
}


def _paths() -> Any:
    """DATAHUB_HOME as the ingest tasks see it (Variable ``datahub_home``, else the env)."""
    from datahub.airflow_support import settings

    return settings()[1]


@dag(
    dag_id="build_warehouse",
    schedule=RAW_ASSETS[0] | RAW_ASSETS[1] | RAW_ASSETS[2] | RAW_ASSETS[3],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["datahub", "warehouse", "publish"],
    doc_md=__doc__,
)
def build_warehouse() -> None:
    @task
    def models() -> dict[str, int]:
        """Staging models and the integrated tables the linkage needs."""
        from datahub.warehouse.build import run_base_models

        return run_base_models(_paths())

    @task
    def linkage() -> dict[str, int]:
        """Person linkage (ID rule + Splink EM model) → person_index / person_xref."""
        from datahub.warehouse.build import run_linkage

        return run_linkage(_paths())

    @task
    def marts() -> dict[str, int]:
        """Integrated tables needing person keys, then the marts."""
        from datahub.warehouse.build import run_mart_models

        return run_mart_models(_paths())

    @task
    def mart_gates() -> dict[str, Any]:
        """GX mart suites; a failure stops the run before publishing."""
        from datahub.warehouse.build import check_marts

        return check_marts(_paths()).as_dict()

    @task(outlets=[PUBLISHED])
    def publish() -> dict[str, Any]:
        """Atomic snapshot for analysts (DATAHUB_HOME/published/datahub.duckdb)."""
        from datahub.warehouse.build import publish as publish_snapshot

        result = publish_snapshot(_paths())
        return {"path": str(result.path), "run_id": result.run_id, "tables": len(result.tables)}

    models() >> linkage() >> marts() >> mart_gates() >> publish()


build_warehouse()

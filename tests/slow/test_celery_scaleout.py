"""Scale-out proof: the DAGs on Airflow's CeleryExecutor give the same warehouse as a plain run.

A real cluster (PostgreSQL metadata, Redis broker, api-server, scheduler,
dag-processor, one Celery worker for the default queue and one for the
``warehouse`` queue) runs the four ingest DAGs (scope ``all``) and then
``build_warehouse`` over ``sample_sources/``. The result is compared with
``datahub run`` + ``datahub build`` into another DATAHUB_HOME with the same key
file: same rows per raw/quarantine table, same ledger balances, same marts.
The load and build tasks must have run on the warehouse worker and nowhere else,
every prepare task on the default worker (the staged Parquet crosses over through
``DATAHUB_HOME/staging``), and each ingest DAG must have updated its Asset. The
scheduler creates no runs of its own (``use_job_schedule`` off): only the test's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from airflow_cluster import AirflowCeleryCluster, missing_binaries  # noqa: E402

from datahub.config import REPO_ROOT, SAMPLE_SOURCES  # noqa: E402

pytestmark = pytest.mark.slow

INGEST_DAGS = ("ingest_police", "ingest_government", "ingest_social_security", "ingest_community")
BUILD_DAG = "build_warehouse"
WAREHOUSE_QUEUE = "warehouse"
#: Imported once per Celery worker, inherited by every forked task process.
WORKER_PRELOAD = (
    "datahub.pipeline",
    "datahub.quality.gx_runner",
    "datahub.warehouse.loader",
    "datahub.warehouse.build",
    "datahub.privacy.vault",
    "great_expectations",
)
#: Hard limit for the whole cluster phase (start, four ingests, build), in seconds.
CLUSTER_TIMEOUT = 1500
#: Columns that legitimately differ between two runs of the same input.
VOLATILE = (
    "_loaded_at",
    "_batch_id",
    "loaded_at",
    "built_at",
    "published_at",
    "run_id",
    "linked_run",
)


def _datahub(args: list[str], env: dict[str, str]) -> None:
    exe = Path(sys.executable).parent / "datahub"
    res = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, (
        f"datahub {' '.join(args)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    )


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One key for both runs, so that tokens compare equal."""
    from datahub.config import Paths
    from datahub.privacy.keys import init_keys

    home = tmp_path_factory.mktemp("keys")
    path = home / "master.key"
    init_keys(Paths(home), path)
    return path


@pytest.fixture(scope="module")
def reference_home(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> Path:
    """The plain pipeline: ``datahub run`` then ``datahub build`` in this machine's processes."""
    home = tmp_path_factory.mktemp("plain")
    env = {**os.environ, "DATAHUB_HOME": str(home), "DATAHUB_KEY_FILE": str(key_file)}
    _datahub(["run", "--sources", str(SAMPLE_SOURCES)], env)
    _datahub(["build"], env)
    return home


@pytest.fixture(scope="module")
def celery_run(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> dict[str, Any]:
    """Run the DAGs on the Celery cluster; return its DATAHUB_HOME, task instances, asset events."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (.ci/run installs them with apt-get)")
    home = tmp_path_factory.mktemp("celery")
    cluster = AirflowCeleryCluster(
        dags_folder=REPO_ROOT / "dags",
        workdir=tmp_path_factory.mktemp("cluster"),
        extra_env={
            "DATAHUB_HOME": str(home),
            "DATAHUB_SOURCES": str(SAMPLE_SOURCES),
            "DATAHUB_KEY_FILE": str(key_file),
            # Only the runs this test triggers: no @daily run of today (it would load today's
            # snapshots first) and no Asset-triggered build_warehouse between the ingests.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        },
        pools={"datahub_warehouse": 1},
        worker_preload=WORKER_PRELOAD,
    )
    deadline = time.monotonic() + CLUSTER_TIMEOUT

    def left() -> float:
        return max(deadline - time.monotonic(), 1.0)

    tis: dict[str, list[dict[str, Any]]] = {}
    states: dict[str, str] = {}
    with cluster:
        cluster.wait_dag_parsed([*INGEST_DAGS, BUILD_DAG], timeout=min(300, left()))
        # All four departments at once: prepares spread over the default worker while the
        # single-slot pool serialises the loads on the warehouse worker.
        runs = {dag: cluster.trigger(dag, {"scope": "all"}) for dag in INGEST_DAGS}
        for dag, run_id in runs.items():
            states[dag] = cluster.wait_run(dag, run_id, timeout=left())
            tis[dag] = cluster.task_instances(dag, run_id)
        events = cluster.asset_events()
        if all(s == "success" for s in states.values()):
            run_id = cluster.trigger(BUILD_DAG, {})
            states[BUILD_DAG] = cluster.wait_run(BUILD_DAG, run_id, timeout=left())
            tis[BUILD_DAG] = cluster.task_instances(BUILD_DAG, run_id)
        failed = {d: s for d, s in states.items() if s != "success"}
        if failed:
            logs = "\n".join(
                f"--- {n}\n{cluster.log_tail(n, 30)}"
                for n in ("scheduler", "default-worker", "warehouse-worker")
            )
            pytest.fail(f"DAG runs not successful: {failed}\n{_ti_table(tis)}\n{logs}")
    return {"home": home, "tis": tis, "events": events}


def _ti_table(tis: dict[str, list[dict[str, Any]]]) -> str:
    return "\n".join(
        f"{dag}.{t['task_id']}[{t.get('map_index')}] {t['state']} queue={t.get('queue')} host={t.get('hostname')}"
        for dag, items in tis.items()
        for t in items
    )


def _attach(a: Path, b: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    return con


def _tables(con: duckdb.DuckDBPyConnection, catalog: str, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_schema = ? ORDER BY 1",
        [catalog, schema],
    ).fetchall()
    return [r[0] for r in rows]


def _stable_columns(
    con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str
) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? AND table_schema = ? "
        "AND table_name = ? ORDER BY ordinal_position",
        [catalog, schema, table],
    ).fetchall()
    return [r[0] for r in rows if r[0] not in VOLATILE and not r[0].endswith("_at_load")]


def test_load_tasks_ran_only_on_the_warehouse_worker(celery_run: dict[str, Any]) -> None:
    ingest = [t for dag in INGEST_DAGS for t in celery_run["tis"][dag]]
    on_warehouse = [t for t in ingest if t.get("queue") == WAREHOUSE_QUEUE]
    assert on_warehouse, (
        f"no ingest task is routed to the warehouse queue:\n{_ti_table(celery_run['tis'])}"
    )
    assert all(t.get("hostname") == "warehouse-worker" for t in on_warehouse), _ti_table(
        celery_run["tis"]
    )
    assert any("load" in t["task_id"] for t in on_warehouse)
    from datahub.pipeline import list_feed_files
    from datahub.sources.contracts import DEPARTMENTS

    prepares = [t for t in ingest if t["task_id"] == "prepare_file"]
    assert len(prepares) == len(list_feed_files(SAMPLE_SOURCES, DEPARTMENTS)), "one per file"
    others = [t for t in ingest if t.get("queue") != WAREHOUSE_QUEUE and t["state"] == "success"]
    assert others and all(t.get("hostname") == "default-worker" for t in others), _ti_table(
        celery_run["tis"]
    )
    build = celery_run["tis"][BUILD_DAG]
    assert build and all(
        t.get("queue") == WAREHOUSE_QUEUE and t.get("hostname") == "warehouse-worker" for t in build
    ), _ti_table(celery_run["tis"])


def test_ingest_dags_updated_their_assets(celery_run: dict[str, Any]) -> None:
    from datahub.airflow_support import asset_uri
    from datahub.sources.contracts import DEPARTMENTS

    by_uri = {e["uri"]: e for e in celery_run["events"]}
    for dept in DEPARTMENTS:
        event = by_uri.get(asset_uri(dept))
        assert event is not None, f"no asset event for {dept}: {sorted(by_uri)}"
        assert (event["source_dag_id"], event["source_task_id"]) == (
            f"ingest_{dept}",
            "load_batches",
        )


def test_same_raw_and_quarantine_rows(celery_run: dict[str, Any], reference_home: Path) -> None:
    con = _attach(reference_home / "warehouse.duckdb", celery_run["home"] / "warehouse.duckdb")
    for schema in ("raw", "quarantine"):
        tables = _tables(con, "a", schema)
        assert tables, f"the plain run has no {schema} tables"
        assert tables == _tables(con, "b", schema)
        for t in tables:
            cols = ", ".join(
                f'"{c}"' for c in _stable_columns(con, "a", schema, t) if c != "_loaded_at"
            )
            diff = con.execute(
                f'SELECT count(*) FROM ((SELECT {cols} FROM a.{schema}."{t}" EXCEPT ALL SELECT {cols} FROM b.{schema}."{t}") '
                f'UNION ALL (SELECT {cols} FROM b.{schema}."{t}" EXCEPT ALL SELECT {cols} FROM a.{schema}."{t}"))'
            ).fetchone()
            assert diff == (0,), f"{schema}.{t} differs between the plain and the Celery run"


def test_same_ledger_balances(celery_run: dict[str, Any], reference_home: Path) -> None:
    con = _attach(reference_home / "warehouse.duckdb", celery_run["home"] / "warehouse.duckdb")
    cols = [
        c
        for c in _stable_columns(con, "a", "audit", "batch_ledger")
        if c.startswith("rows_")
        or c in ("source_file", "status", "feed", "department", "content_hash")
    ]
    assert any(c.startswith("rows_") for c in cols), cols
    sel = ", ".join(f'"{c}"' for c in cols)
    a = con.execute(f"SELECT {sel} FROM a.audit.batch_ledger ORDER BY ALL").fetchall()
    b = con.execute(f"SELECT {sel} FROM b.audit.batch_ledger ORDER BY ALL").fetchall()
    assert a and a == b


def test_same_marts(celery_run: dict[str, Any], reference_home: Path) -> None:
    a_db, b_db = (
        reference_home / "published" / "datahub.duckdb",
        celery_run["home"] / "published" / "datahub.duckdb",
    )
    assert a_db.exists() and b_db.exists(), "both runs must publish a snapshot"
    con = _attach(a_db, b_db)
    marts = _tables(con, "a", "marts")
    assert marts and marts == _tables(con, "b", "marts")
    for t in marts:
        cols = ", ".join(f'"{c}"' for c in _stable_columns(con, "a", "marts", t))
        n_a = con.execute(f'SELECT count(*) FROM a.marts."{t}"').fetchone()
        diff = con.execute(
            f'SELECT count(*) FROM ((SELECT {cols} FROM a.marts."{t}" EXCEPT ALL SELECT {cols} FROM b.marts."{t}") '
            f'UNION ALL (SELECT {cols} FROM b.marts."{t}" EXCEPT ALL SELECT {cols} FROM a.marts."{t}"))'
        ).fetchone()
        assert diff == (0,), f"marts.{t} ({n_a} rows) differs between the plain and the Celery run"

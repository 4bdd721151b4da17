"""Airflow 3 wiring: the ingest DAG factory and helpers for `datahub airflow-standalone`.

Each department gets a thin DAG file in ``dags/`` calling :func:`make_ingest_dag`.
A run lists the landing files of its logical date (see
:func:`datahub.pipeline.files_for_day`; param ``scope="all"`` takes every file
of the department's folder), maps one ``prepare_file`` task per file (any
worker: prepare never opens the warehouse) and loads the prepared batches in
order in one ``load_batches`` task that runs in pool ``datahub_warehouse``
(1 slot: DuckDB allows one writer) on queue ``warehouse``, then updates the
department's raw-table Asset. XCom carries file paths, batch folders and
counts only.

Configuration is read when a task runs, never at parse time: Airflow Variables
``datahub_sources`` / ``datahub_home``, else env ``DATAHUB_SOURCES`` /
``DATAHUB_HOME``, else the repository's ``sample_sources`` and ``./.datahub``.
The key file comes from ``datahub.privacy.keys`` (``$DATAHUB_KEY_FILE``, the
Airflow connection ``datahub_keys``, or ``DATAHUB_HOME/keys/master.key``).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import Any

from datahub.config import REPO_ROOT, SAMPLE_SOURCES, Paths

POOL = "datahub_warehouse"
POOL_SLOTS = 1
WAREHOUSE_QUEUE = "warehouse"
START_DATE = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
DAGS_FOLDER = REPO_ROOT / "dags"
ENV_SOURCES = "DATAHUB_SOURCES"


def asset_uri(department: str) -> str:
    """URI of the Asset a department's DAG updates when its raw tables change."""
    return f"datahub://raw/{department}"


def _variable(key: str) -> str | None:
    try:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
    except Exception:  # outside a task (tests, CLI) there is no API to ask
        return None
    return str(value) if value else None


def settings() -> tuple[Path, Paths]:
    """(landing folder, DATAHUB_HOME paths) for the running task."""
    sources = _variable("datahub_sources") or os.environ.get(ENV_SOURCES) or str(SAMPLE_SOURCES)
    home = _variable("datahub_home") or os.environ.get("DATAHUB_HOME")
    return Path(sources), Paths.from_env(home)


def run_day(context: dict[str, Any]) -> dt.date:
    """The day a run ingests: its logical date, else (manual run without one) when it was queued."""
    for key in ("logical_date", "data_interval_start"):
        value = context.get(key)
        if value is not None:
            return dt.date(value.year, value.month, value.day)
    dag_run = context.get("dag_run")
    after = getattr(dag_run, "run_after", None) or dt.datetime.now(dt.UTC)
    return dt.date(after.year, after.month, after.day)


def list_files_for_run(department: str, scope: str, day: dt.date) -> list[str]:
    """Landing files of one run as strings (XCom-safe)."""
    from datahub import pipeline

    sources, _ = settings()
    if scope == "all":
        files = pipeline.list_feed_files(sources, (department,))
    else:
        files = pipeline.files_for_day(sources, department, day)
    return [str(p) for p in files]


def prepare_for_run(path: str) -> str:
    """Task body: prepare one file; returns its batch folder."""
    from datahub import pipeline
    from datahub.privacy.keys import load_keyring
    from datahub.quality.gx_runner import quiet_gx_logging

    quiet_gx_logging()
    sources, paths = settings()
    keyring = load_keyring(paths)
    batch = pipeline.prepare(Path(path), paths=paths, keyring=keyring, sources_root=sources)
    return str(batch)


def load_for_run(batch_dirs: list[str]) -> dict[str, int]:
    """Task body: load prepared batches in order, build Data Docs, fail naming rejected files."""
    from datahub import pipeline
    from datahub.privacy.keys import load_keyring
    from datahub.privacy.vault import open_vault
    from datahub.quality.gx_runner import quiet_gx_logging
    from datahub.warehouse.loader import BatchRejected, open_warehouse

    quiet_gx_logging()
    _, paths = settings()
    keyring = load_keyring(paths)
    counts = {"batches": 0, "loaded": 0, "quarantined": 0, "rejected": 0, "skipped": 0}
    rejected: list[str] = []
    with open_warehouse(paths) as con, open_vault(paths, keyring) as vault:
        for b in batch_dirs:
            try:
                out = pipeline.load(Path(b), paths=paths, keyring=keyring, con=con, vault=vault)
            except BatchRejected as exc:
                out = exc.outcome
                rejected.append(out.message)
            counts["batches"] += 1
            counts["loaded"] += out.rows_loaded
            counts["quarantined"] += out.rows_quarantined
            counts["rejected"] += out.rows_rejected
            counts["skipped"] += out.status == "skipped_duplicate_file"
            print(
                f"{out.source_file}: {out.status} (loaded {out.rows_loaded}, quarantined {out.rows_quarantined})"
            )
    pipeline.build_data_docs(paths)
    if rejected:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("rejected: " + " | ".join(rejected))
    return counts


def prune_for_run() -> dict[str, int]:
    """Task body: delete staged batches the ledger has settled (every department's).

    Staged Parquet is only the hand-over from prepare to load; without this the
    staging folder grows by every file ever ingested (~1 GB per base-scale ingest).
    Batches still waiting for their load, failed ones and half-written folders stay.
    """
    from datahub import pipeline

    _, paths = settings()
    report = pipeline.prune_staged(paths)
    print(report.summary())
    return {
        "removed": len(report.removed),
        "kept": len(report.kept),
        "bytes_freed": report.bytes_freed,
    }


DOC_MD = """\
### Ingest {department}

Loads the {department} department's feed files from the landing folder
(Variable `datahub_sources`) into the datahub warehouse (Variable `datahub_home`).

* `list_files` — files of the run's logical date (event files of that day; monthly
  files on the 1st for the previous month; the current snapshots). Param `scope=all`
  takes every file of the folder.
* `prepare_file` (mapped, one per file) — read against the contract, pseudonymise,
  validate with Great Expectations; writes a staged batch. Never opens the warehouse.
* `load_batches` — pool `datahub_warehouse` (1 slot), queue `warehouse`: one DuckDB
  transaction per batch, ledger in `audit.batch_ledger`; fails naming any rejected file.
* `prune_staging` — same pool and queue, after a successful load: deletes the staged
  batches the ledger has settled (any department's; `datahub prune-staging` by hand).

Re-running a day is harmless: identical files are skipped by content hash.
"""


def make_ingest_dag(department: str) -> Any:
    """Build the ``ingest_<department>`` DAG (called at parse time: reads no configuration)."""
    from airflow.sdk import Asset, Param, dag, get_current_context, task

    @dag(
        dag_id=f"ingest_{department}",
        schedule="@daily",
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["datahub", "ingest", department],
        doc_md=DOC_MD.format(department=department),
        params={
            "scope": Param(
                "day",
                enum=["day", "all"],
                description="day: the logical date's files; all: every file",
            )
        },
        default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=30), "owner": "datahub"},
    )
    def ingest() -> None:
        @task
        def list_files() -> list[str]:
            ctx = get_current_context()
            scope = str(ctx["params"].get("scope", "day"))
            files = list_files_for_run(department, scope, run_day(dict(ctx)))
            print(f"{len(files)} file(s) to ingest (scope {scope})")
            return files

        @task(map_index_template="{{ task.op_kwargs['path'].rsplit('/', 1)[-1] }}")
        def prepare_file(path: str) -> str:
            return prepare_for_run(path)

        @task(pool=POOL, queue=WAREHOUSE_QUEUE, outlets=[Asset(asset_uri(department))])
        def load_batches(batch_dirs: list[str]) -> dict[str, int]:
            return load_for_run(list(batch_dirs))

        # reads the ledger, so it waits for the writer slot like the loads
        @task(pool=POOL, queue=WAREHOUSE_QUEUE)
        def prune_staging() -> dict[str, int]:
            return prune_for_run()

        loaded = load_batches(prepare_file.expand(path=list_files()))  # type: ignore[arg-type]
        loaded >> prune_staging()

    return ingest()


# ------------------------------------------------------- standalone helpers


def airflow_env(paths: Paths, *, port: int = 8080) -> dict[str, str]:
    """Environment for an Airflow of this project: AIRFLOW_HOME under DATAHUB_HOME, our dags/."""
    env = dict(os.environ)
    home = paths.home / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "DATAHUB_HOME": str(paths.home),
        }
    )
    return env


def ensure_pool(env: dict[str, str]) -> None:
    """Create (or reset) the single-slot warehouse writer pool."""
    subprocess.run(
        [
            "airflow",
            "pools",
            "set",
            POOL,
            str(POOL_SLOTS),
            "datahub warehouse writer (DuckDB: one writer)",
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )

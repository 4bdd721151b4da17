"""Airflow fixtures: a throw-away AIRFLOW_HOME (sqlite) and DATAHUB_HOME per test session.

The environment is set at import time, before anything imports Airflow (its
configuration is read once per process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="datahub-airflow-"))
REPO = Path(__file__).resolve().parents[2]
os.environ["AIRFLOW_HOME"] = str(_ROOT / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_ROOT / "airflow" / "logs")
os.environ["DATAHUB_HOME"] = str(_ROOT / "home")
os.environ.pop("DATAHUB_KEY_FILE", None)

DEPARTMENTS = ("government", "police", "social_security", "community")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """`airflow db migrate` once per session; returns AIRFLOW_HOME."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    subprocess.run(
        [str(Path(bin_dir) / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True
    )
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(scope="session")
def dagbag(airflow_db: Path):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(REPO / "dags"))


@pytest.fixture(scope="session")
def datahub_home() -> Path:
    return Path(os.environ["DATAHUB_HOME"])


@pytest.fixture(scope="session")
def ingested(dagbag, datahub_home: Path) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """All four ingest DAGs run once over sample_sources (scope all); returns run states."""
    from datahub.config import Paths
    from datahub.privacy.keys import ensure_dev_keys

    ensure_dev_keys(Paths(datahub_home), announce=False)
    states = {}
    for dept in DEPARTMENTS:
        run = dagbag.dags[f"ingest_{dept}"].test(run_conf={"scope": "all"})
        states[dept] = str(run.state)
    yield states

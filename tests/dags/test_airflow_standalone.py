"""Slow: a real `airflow standalone` on a free loopback port runs ingest_police via the REST API."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from datahub.airflow_support import POOL, airflow_env
from datahub.config import SAMPLE_SOURCES, Paths
from datahub.pipeline import files_for_day
from datahub.privacy.keys import ensure_dev_keys
from datahub.warehouse.db import connect

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 7, 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(url: str, token: str | None = None, body: dict | None = None) -> dict:  # type: ignore[type-arg]
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")  # type: ignore[no-any-return]


def _wait(predicate, what: str, limit: float = 600) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while True:
        try:
            if predicate():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(2)


def test_standalone_runs_ingest_police_through_the_rest_api(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    ensure_dev_keys(paths, announce=False)
    port = _free_port()
    env = airflow_env(paths, port=port)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(Path(env["AIRFLOW_HOME"]) / "logs")
    bin_airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([bin_airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run(
        [bin_airflow, "pools", "set", POOL, "1", "writer"], env=env, check=True, capture_output=True
    )
    log = (tmp_path / "standalone.log").open("w")
    proc = subprocess.Popen(
        [bin_airflow, "standalone"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        pw_file = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
        _wait(lambda: pw_file.exists() and _call(f"{base}/api/v2/monitor/health"), "the API server")
        password = json.loads(pw_file.read_text())["admin"]
        token = _call(f"{base}/auth/token", body={"username": "admin", "password": password})[
            "access_token"
        ]
        dag_id = "ingest_police"
        _wait(
            lambda: _call(f"{base}/api/v2/dags/{dag_id}", token).get("dag_id") == dag_id,
            "the DAG to be parsed",
        )
        req = urllib.request.Request(
            f"{base}/api/v2/dags/{dag_id}",
            data=json.dumps({"is_paused": False}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="PATCH",
        )
        urllib.request.urlopen(req, timeout=30).close()
        run = _call(
            f"{base}/api/v2/dags/{dag_id}/dagRuns",
            token,
            # one day keeps the run short: a LocalExecutor task is a fresh process (~5 s of imports)
            {"logical_date": f"{DAY.isoformat()}T00:00:00Z", "conf": {"scope": "day"}},
        )
        run_id = run["dag_run_id"]

        def finished() -> bool:
            state = _call(f"{base}/api/v2/dags/{dag_id}/dagRuns/{run_id}", token)["state"]
            assert state != "failed", (tmp_path / "standalone.log").read_text()[-3000:]
            return state == "success"

        _wait(finished, "the run to succeed", limit=1200)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # standalone may exit before its children (scheduler, workers): end the whole group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    con = connect(paths.warehouse, read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM raw.police__incidents").fetchone()
        loaded = {
            str(f)
            for (f,) in con.execute(
                "SELECT source_file FROM audit.batch_ledger WHERE department = 'police' AND status = 'loaded'"
            ).fetchall()
        }
    finally:
        con.close()
    expected = files_for_day(SAMPLE_SOURCES, "police", DAY)
    assert n is not None and n[0] > 0
    # unpausing also starts today's scheduled run (current snapshots): ours added the day's files
    assert {p.name for p in expected} <= loaded and len(expected) >= 2

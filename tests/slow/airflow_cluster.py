"""A throw-away Airflow 3 cluster with the CeleryExecutor, on loopback, for slow tests.

PostgreSQL (metadata) and Redis (broker) come from Debian's packages and run in a
temporary folder on free ports. Airflow runs as separate processes exactly as on
several hosts: api-server (which also serves the execution API the workers talk
to), scheduler, dag-processor and one Celery worker per queue. Each worker gets
its own ``hostname_callable`` so the metadata DB records which worker ran a task.

Every process is started in its own session and killed (whole process group)
by :meth:`AirflowCeleryCluster.stop`, which is safe to call after any failure.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
TERMINAL_DAG_RUN_STATES = {"success", "failed"}


def postgres_bin_dir() -> Path | None:
    """Newest Debian PostgreSQL bin folder with initdb, or None."""
    candidates = sorted(
        (Path(p) for p in glob.glob(POSTGRES_BIN_GLOB) if (Path(p) / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def missing_binaries() -> list[str]:
    """Names of the server binaries this harness needs that are not installed."""
    missing = []
    if postgres_bin_dir() is None:
        missing.append("postgresql (initdb/postgres under /usr/lib/postgresql/*/bin)")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    return missing


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Any, what: str, timeout: float, proc_check: Any = None, interval: float = 0.5
) -> None:
    """Poll ``predicate`` every ``interval`` s until true; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc_check is not None:
            proc_check()
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class AirflowCeleryCluster:
    """PostgreSQL + Redis + Airflow (api-server, scheduler, dag-processor, Celery workers).

    ``worker_queues`` maps a worker name to the comma-separated queues it serves.
    ``extra_env`` is passed to every Airflow process (e.g. DATAHUB_HOME).
    ``worker_preload`` names modules each Celery worker imports once at start-up (through
    ``[celery] celery_config_options``): the prefork pool and every task process forked
    from it inherit them instead of paying the imports (GX, pandas: ~10-20 s) per task.
    """

    dags_folder: Path
    workdir: Path
    worker_queues: Mapping[str, str] = field(
        default_factory=lambda: {"default-worker": "default", "warehouse-worker": "warehouse"}
    )
    extra_env: Mapping[str, str] = field(default_factory=dict)
    pools: Mapping[str, int] = field(default_factory=dict)
    worker_preload: Sequence[str] = ()
    procs: list[Proc] = field(default_factory=list)
    pg_dir: Path | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.airflow_home = self.workdir / "airflow"
        self.logs = self.workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self._token: str | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start every service and wait until each is ready (raises on failure)."""
        self._start_postgres()
        self._start_redis()
        self._write_hostname_module()
        self.airflow("db", "migrate", timeout=600)
        for pool, slots in self.pools.items():
            self.airflow("pools", "set", pool, str(slots), f"{pool} (test)")
        self._spawn("api-server", ["airflow", "api-server", "--port", str(self.api_port)])
        wait_for(
            lambda: self._get("/api/v2/monitor/health", auth=False) is not None,
            "api-server health",
            180,
            self.check_alive,
        )
        self._spawn("scheduler", ["airflow", "scheduler"])
        self._spawn("dag-processor", ["airflow", "dag-processor"])
        for worker, queues in self.worker_queues.items():
            env = {"AIRFLOW__CORE__HOSTNAME_CALLABLE": f"scaleout_hostnames.{_py_name(worker)}"}
            if self.worker_preload:
                env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] = "scaleout_celery_config.CONFIG"
            self._spawn(
                worker,
                [
                    "airflow", "celery", "worker",
                    "--queues", queues,
                    "--celery-hostname", f"{worker}@%h",
                    "--concurrency", "2" if queues != "warehouse" else "1",
                    "--skip-serve-logs",
                    "--without-gossip", "--without-mingle",
                ],
                env,
            )  # fmt: skip

    def stop(self) -> None:
        """Terminate every process group started here (reverse order), then remove data."""
        for proc in reversed(self.procs):
            _kill_group(proc.popen)
        self.procs.clear()
        if self.pg_dir is not None:
            shutil.rmtree(self.pg_dir, ignore_errors=True)
            self.pg_dir = None

    def __enter__(self) -> AirflowCeleryCluster:
        # SIGTERM (CI timeout, `timeout`) would end pytest without running __exit__ and leave
        # the servers behind in their own sessions: turn it into SystemExit while we run.
        self._prev_sigterm = signal.signal(signal.SIGTERM, _raise_system_exit)
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            signal.signal(signal.SIGTERM, self._prev_sigterm)

    def check_alive(self) -> None:
        """Raise (with the log tail) if any long-running process has exited."""
        for proc in self.procs:
            rc = proc.popen.poll()
            if rc is not None:
                raise RuntimeError(f"{proc.name} exited with {rc}:\n{self.log_tail(proc.name)}")

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ----------------------------------------------------------------- environment
    @property
    def env(self) -> dict[str, str]:
        """Environment of every Airflow process (shared config = one cluster)."""
        venv_bin = str(Path(sys.executable).parent)
        conn = f"postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/airflow"
        env = {
            **os.environ,
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(
                [str(self.workdir / "pymod"), os.environ.get("PYTHONPATH", "")]
            ).rstrip(os.pathsep),
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/airflow",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",  # all task instances of a big run
            "AIRFLOW__API__BASE_URL": self.api,
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
            "AIRFLOW__API__SECRET_KEY": self._secret("api"),
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
            **self.extra_env,
        }
        env.pop("AIRFLOW__CORE__HOSTNAME_CALLABLE", None)
        return env

    def _secret(self, name: str) -> str:
        attr = f"_secret_{name}"
        if not hasattr(self, attr):
            setattr(self, attr, secrets.token_urlsafe(32))
        return str(getattr(self, attr))

    def _write_hostname_module(self) -> None:
        """Per-worker hostname callables: task_instance.hostname then names the worker."""
        pymod = self.workdir / "pymod"
        pymod.mkdir(exist_ok=True)
        body = ['"""Generated by tests/slow/airflow_cluster.py."""', ""]
        for worker in self.worker_queues:
            body += [f"def {_py_name(worker)}() -> str:", f"    return {worker!r}", "", ""]
        (pymod / "scaleout_hostnames.py").write_text("\n".join(body))
        # Celery config of the workers: the default one, after importing the preload modules.
        config = [
            '"""Generated by tests/slow/airflow_cluster.py."""',
            "import importlib",
            "",
            "from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG",
            "",
            f"for _name in {list(self.worker_preload)!r}:",
            "    importlib.import_module(_name)",
            "CONFIG = DEFAULT_CELERY_CONFIG",
            "",
        ]
        (pymod / "scaleout_celery_config.py").write_text("\n".join(config))

    # ----------------------------------------------------------------- services
    def _start_postgres(self) -> None:
        bin_dir = postgres_bin_dir()
        assert bin_dir is not None, "postgresql is not installed"
        # PostgreSQL refuses to run as root: run it as the 'postgres' system user,
        # in a folder of its own (pytest's tmp folders are not traversable by others).
        as_root = os.geteuid() == 0
        self.pg_dir = Path(tempfile.mkdtemp(prefix="datahub-pg-"))
        data = self.pg_dir / "data"
        prefix: list[str] = []
        if as_root:
            shutil.chown(self.pg_dir, "postgres", "postgres")
            prefix = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "airflow",
             "--auth=trust", "--encoding=UTF8", "--no-instructions"],
            check=True, capture_output=True,
        )  # fmt: skip
        self._spawn(
            "postgres",
            [*prefix, str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.pg_port),
             "-h", "127.0.0.1", "-k", str(self.pg_dir), "-c", "max_connections=200",
             "-c", "fsync=off"],
            plain=True,
        )  # fmt: skip
        wait_for(lambda: port_open(self.pg_port), "postgres", 60, self.check_alive)
        wait_for(
            lambda: subprocess.run(
                [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U",
                 "airflow", "-d", "postgres", "-c", "CREATE DATABASE airflow"],
                capture_output=True,
            ).returncode == 0,
            "CREATE DATABASE airflow", 60, self.check_alive,
        )  # fmt: skip

    def _start_redis(self) -> None:
        redis_dir = self.workdir / "redis"
        redis_dir.mkdir(exist_ok=True)
        self._spawn(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(redis_dir)],
            plain=True,
        )  # fmt: skip
        wait_for(lambda: port_open(self.redis_port), "redis", 30, self.check_alive)

    def _spawn(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        plain: bool = False,
    ) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        popen = subprocess.Popen(
            list(argv),
            env=None if plain else {**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: stop() kills children too
            cwd=self.workdir,
        )
        self.procs.append(Proc(name, popen, self.logs / f"{name}.log"))

    def airflow(self, *args: str, timeout: float = 300) -> str:
        """Run one ``airflow`` CLI command against this cluster; return its stdout."""
        res = subprocess.run(
            ["airflow", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if res.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            )
        return res.stdout

    # ----------------------------------------------------------------- REST API
    def _token_value(self) -> str:
        if self._token is None:
            pw_file = self.airflow_home / "simple_auth_manager_passwords.json.generated"
            password = json.loads(pw_file.read_text())["admin"]
            body = self._request(
                "POST", "/auth/token", {"username": "admin", "password": password}, auth=False
            )
            self._token = str(body["access_token"])
        return self._token

    def _request(self, method: str, path: str, payload: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._token_value()}"
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.api + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def _get(self, path: str, *, auth: bool = True) -> Any:
        return self._request("GET", path, auth=auth)

    def wait_dag_parsed(self, dag_ids: Sequence[str], timeout: float = 300) -> None:
        """Wait until the dag-processor has serialised every DAG in ``dag_ids``."""

        def parsed() -> bool:
            for dag_id in dag_ids:
                try:
                    self._get(f"/api/v2/dags/{dag_id}")
                except urllib.error.HTTPError:
                    return False
            return True

        wait_for(parsed, f"DAGs {list(dag_ids)} parsed", timeout, self.check_alive, interval=2)
        for dag_id in dag_ids:  # a DAG created paused would never run
            self.set_paused(dag_id, False)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a run through the REST API; return its dag_run_id."""
        body = self._request(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            {"logical_date": None, "conf": dict(conf or {})},
        )
        return str(body["dag_run_id"])

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 1800) -> str:
        """Wait for a DAG run to finish; return its state."""
        state = {"value": ""}

        def finished() -> bool:
            run = self._get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}")
            state["value"] = str(run["state"])
            return state["value"] in TERMINAL_DAG_RUN_STATES

        wait_for(finished, f"{dag_id} run {run_id}", timeout, self.check_alive, interval=3)
        return state["value"]

    def asset_events(self) -> list[dict[str, Any]]:
        """Asset events so far (uri, source_dag_id, source_task_id, ...)."""
        return list(self._get("/api/v2/assets/events?limit=1000")["asset_events"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Task instances of a run (task_id, state, queue, hostname, map_index, ...)."""
        body = self._get(
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances?limit=1000"
        )
        return list(body["task_instances"])


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _py_name(worker: str) -> str:
    return worker.replace("-", "_")


def _kill_group(popen: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace`` seconds."""
    if popen.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
            os.killpg(popen.pid, signal.SIGKILL)  # orphans of a dead leader
        return
    with contextlib.suppress(ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
        os.killpg(popen.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
        os.killpg(popen.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
        popen.wait(5)

"""The person-linkage step alone: time, peak RSS and precision/recall at scale.

    .venv/bin/python benchmarks/bench_linkage.py --home HOME --sources SOURCES [--label L]

``HOME`` is an ingested DATAHUB_HOME (its ``warehouse.duckdb`` and, when
present, ``build.duckdb`` are copied to a scratch folder first, never touched in place); ``SOURCES`` is the folder it was
ingested from (only ``_truth/records.csv`` is read, to score the result). On
the copy, the base models (staging, ``integrated.person_records``) are built
when missing, then :func:`datahub.linkage.link_persons` runs ``--runs`` times
(the second run carries keys forward from the first), each in a fresh child
process so that its peak RSS (``ru_maxrss`` from ``wait4``) is its own. The
child also reports its RSS just before linking (interpreter + imports) and the
peak RSS sampled while linking.

Writes ``benchmarks/results/<date>-linkage-<label>.json`` (``--profile`` adds a
pyinstrument text profile of the first run next to it). Wall time on a shared
machine swings with its load: ``link_cpu_seconds`` and the load average at
start are recorded beside it.

~1 M person records (the committed result), as ``benchmarks/run.py`` sizes a scale::

    datahub generate --out /tmp/p70000-i73760.8-d7-s20260601 --persons 70000 \
        --seed 20260601 --incidents-per-day 73760.8 --start 2026-06-01 --end 2026-06-07
    DATAHUB_HOME=/tmp/home-p70000 datahub run --sources /tmp/p70000-... --no-docs
    python benchmarks/bench_linkage.py --home /tmp/home-p70000 \
        --sources /tmp/p70000-i73760.8-d7-s20260601 --label p70000 --runs 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
MB = 1024 * 1024


# ====================================================================== child steps


def _quiet() -> None:
    import logging

    for name in ("great_expectations", "airflow", "splink", "py4j"):
        logging.getLogger(name).setLevel(logging.ERROR)


def child_base(args: dict[str, Any]) -> dict[str, Any]:
    """Build staging and the integrated tables the linkage reads (not timed as linkage)."""
    from datahub.config import Paths
    from datahub.warehouse.build import run_base_models

    start = time.perf_counter()
    rows = run_base_models(Paths(Path(args["home"])))
    return {
        "seconds": time.perf_counter() - start,
        "person_records": rows.get("integrated.person_records"),
    }


class _PeakSampler:
    """Sample this process's RSS every 20 ms on a thread; keep the maximum."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / MB


def child_link(args: dict[str, Any]) -> dict[str, Any]:
    """One ``link_persons`` run on the scratch warehouse, timed, RSS sampled."""
    _quiet()
    import pandas  # noqa: F401  (imported before the clock starts, as in a warm worker)
    import psutil
    import splink  # noqa: F401

    from datahub.config import Paths
    from datahub.linkage import link_persons
    from datahub.linkage.settings import LinkageSettings
    from datahub.warehouse.db import connect

    paths = Paths(Path(args["home"]))
    con = connect(paths.build)
    before = psutil.Process().memory_info().rss / MB
    sampler = _PeakSampler()
    profiler = None
    if args.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    start = time.perf_counter()
    cpu_start = time.process_time()
    try:
        settings = LinkageSettings.load(Path(args["settings"])) if args.get("settings") else None
        stats = link_persons(con, model_dir=paths.home / "linkage", settings=settings).stats
    finally:
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
        if profiler is not None:
            profiler.stop()
            Path(args["profile"]).write_text(
                profiler.output_text(unicode=True, color=False, show_all=False)
            )
        con.close()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rss_before_link_mb": round(before, 1),
        "sampled_peak_rss_mb": round(sampler.stop(), 1),
        "stats": stats,
    }


def child_score(args: dict[str, Any]) -> dict[str, Any]:
    """Precision/recall of the person cross-reference against ``_truth`` (as benchmarks/run.py)."""
    from datahub.config import Paths
    from datahub.linkage.score import read_truth, score_linkage
    from datahub.warehouse.db import connect

    con = connect(Paths(Path(args["home"])).build, read_only=True)
    try:
        xref = con.execute(
            "SELECT source_file, source_row, role, person_key, link_rule FROM integrated.person_xref"
        ).df()
    finally:
        con.close()
    score = score_linkage(xref, read_truth(Path(args["sources"])))
    return {k: v for k, v in score.as_dict().items()}


CHILD_STEPS = {"base": child_base, "link": child_link, "score": child_score}


# ====================================================================== orchestration


def run_child(step: str, args: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    """Run one step in a fresh interpreter: (wall seconds, peak RSS MB, JSON payload).

    The payload gains ``child_cpu_seconds`` (user + system, from ``wait4``).
    """
    argv = [sys.executable, __file__, "--child", step, json.dumps(args)]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"step {step} failed:\n{stderr[-4000:]}")
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    payload = json.loads(lines[-1])
    payload["child_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    return wall, usage.ru_maxrss / 1024, payload


def _has_person_records(build: Path) -> bool:
    import duckdb

    if not build.exists():
        return False
    con = duckdb.connect(str(build), read_only=True)
    try:
        row = con.execute(
            "SELECT count(*) FROM duckdb_tables() "
            "WHERE schema_name = 'integrated' AND table_name = 'person_records'"
        ).fetchone()
        return bool(row and row[0])
    finally:
        con.close()


def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        **{d: version(d) for d in ("duckdb", "splink", "pandas")},
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=BENCH_DIR,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(CHILD_STEPS[argv[1]](json.loads(argv[2])), default=str))
        return 0
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--home", type=Path, required=True, help="an ingested DATAHUB_HOME (read only)")
    ap.add_argument("--sources", type=Path, required=True, help="its sources folder (with _truth/)")
    ap.add_argument("--label", default=None, help="result name suffix (default: the home's name)")
    ap.add_argument("--runs", type=int, default=1, help="linkage runs (2nd+ carry keys forward)")
    ap.add_argument("--profile", action="store_true", help="pyinstrument text profile of run 1")
    ap.add_argument(
        "--settings", type=Path, default=None, help="linkage settings JSON (default: committed)"
    )
    ap.add_argument(
        "--scratch", type=Path, default=None, help="scratch folder (default: a temp dir)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR)
    opts = ap.parse_args(argv)

    label = opts.label or opts.home.name
    stamp = dt.date.today().isoformat()
    opts.results.mkdir(parents=True, exist_ok=True)
    scratch = opts.scratch or Path(tempfile.mkdtemp(prefix="bench-linkage-"))
    work = scratch / "home"
    work.mkdir(parents=True, exist_ok=True)
    for name in ("warehouse.duckdb", "build.duckdb", "build.previous.duckdb"):
        if (opts.home / name).exists():
            shutil.copy2(opts.home / name, work / name)
    try:
        result: dict[str, Any] = {
            "date": dt.datetime.now().isoformat(timespec="seconds"),
            "label": label,
            "commit": git_commit(),
            "home": str(opts.home),
            "sources": str(opts.sources),
            "settings": str(opts.settings) if opts.settings else "committed defaults",
            "machine": machine(),
            "versions": versions(),
        }
        if not _has_person_records(work / "build.duckdb"):
            wall, _peak, base = run_child("base", {"home": str(work)})
            log(f"base models: {wall:.1f} s")
            result["base_models_seconds"] = round(wall, 1)
        runs = []
        for i in range(opts.runs):
            args: dict[str, Any] = {"home": str(work)}
            if opts.settings:
                args["settings"] = str(opts.settings.resolve())
            if opts.profile and i == 0:
                args["profile"] = str(opts.results / f"{stamp}-linkage-{label}-profile.txt")
            wall, peak, link = run_child("link", args)
            _w, _p, score = run_child("score", {"home": str(work), "sources": str(opts.sources)})
            score.pop("child_cpu_seconds", None)
            records = int(link["stats"]["records"])
            run = {
                "run": i + 1,
                "records": records,
                "link_seconds": round(link["seconds"], 2),
                "records_per_s": round(records / link["seconds"]),
                "child_wall_seconds": round(wall, 2),
                "child_cpu_seconds": link["child_cpu_seconds"],
                "link_cpu_seconds": round(link["cpu_seconds"], 2),
                "peak_rss_mb": round(peak, 1),
                "rss_before_link_mb": link["rss_before_link_mb"],
                "sampled_peak_rss_mb": link["sampled_peak_rss_mb"],
                "stats": link["stats"],
                "quality": score,
            }
            log(
                f"run {i + 1}: {records} records in {link['seconds']:.1f} s "
                f"({run['records_per_s']}/s, CPU {link['cpu_seconds']:.1f} s), peak RSS {peak:.0f} MB, "
                f"P={score['precision']:.4f} R={score['recall']:.4f}"
            )
            runs.append(run)
        result["runs"] = runs
    finally:
        if not opts.keep and opts.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    out = opts.results / f"{stamp}-linkage-{label}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

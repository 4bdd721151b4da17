"""``make bench``: the pipeline at scale against the DuckDB floor, in one run.

For each scale (``--scales 1,2,5`` × ``--persons``):

1. generate the feeds with ``datahub generate`` into ``benchmarks/data/`` (cached);
2. the DuckDB floor per feed (``CREATE TABLE … AS SELECT * FROM read_csv(…)``);
3. the whole ingest (``datahub.pipeline.run_sources``) in a fresh process, its
   time split into stages (read, normalise, pseudonymise, validate, write
   staging, load) by wrapping the pipeline's own functions, per feed;
4. ``datahub build`` (models, linkage, marts, publish) in a fresh process,
   with linkage precision/recall against the generator's ground truth.

Every step runs in a child process so its peak RSS is its own. Results go to
``benchmarks/results/<date>-<label>.json`` and ``.md``. ``--profile`` also
writes a pyinstrument profile of the base-scale ingest and build.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(BENCH_DIR))

from measure import (  # noqa: E402
    ChildResult,
    StageClock,
    StepFailed,
    emit,
    linear_fit_ok,
    memory_flat,
    rows_per_s,
    run_child,
)

#: Default population: with the default incident rate the police incidents feed totals ~2 M rows.
BASE_PERSONS = 200_000
#: Police incident rows at scale 1 with BASE_PERSONS (the issue's reference feed size).
BASE_INCIDENT_ROWS = 2_000_000
INGEST_STAGES = (
    "read",
    "normalise + pseudonymise (SQL)",
    "normalise (new identifiers, Python)",
    "pseudonymise: vault seal",
    "validate",
    "write staging",
    "load",
    "other",
)
#: Government code tables prepare reads for the code checks of every feed.
REFERENCE_FEEDS = ("government.divisions", "government.addresses")
BUILD_STAGES = ("build models", "link", "publish", "other")
SEED = 20260601


# ====================================================================== child steps


def child_floor(args: dict[str, Any]) -> dict[str, Any]:
    from floor import floor_feed

    from datahub.sources.contracts import FEEDS_BY_KEY

    return floor_feed(Path(args["sources"]), FEEDS_BY_KEY[args["feed"]])


def _quiet() -> None:
    import logging

    for name in ("great_expectations", "airflow", "splink", "py4j"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _profiled(args: dict[str, Any], fn: Any) -> Any:
    """Run ``fn`` under pyinstrument when args["profile"] names an output file."""
    if not args.get("profile"):
        return fn()
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.005)
    profiler.start()
    try:
        return fn()
    finally:
        profiler.stop()
        out = Path(args["profile"])
        out.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
        out.with_suffix(".html").write_text(profiler.output_html())


def child_ingest(args: dict[str, Any]) -> dict[str, Any]:
    """Whole ingest of a sources folder into a fresh DATAHUB_HOME, timed per feed and stage."""
    _quiet()
    from instrument import install, label_per_feed

    import datahub.pipeline as pipeline
    from datahub.config import Paths
    from datahub.privacy.keys import ensure_dev_keys

    paths = Paths(Path(args["home"]))
    keyring = ensure_dev_keys(paths, announce=False)
    clock = StageClock()
    hooks = install(clock)
    label_per_feed(clock)
    startup = _startup()
    start = time.perf_counter()
    outcomes = _profiled(
        args,
        lambda: pipeline.run_sources(
            Path(args["sources"]), paths=paths, keyring=keyring, build_docs=False
        ),
    )
    wall = time.perf_counter() - start  # the run itself: start-up is timed apart
    summary = pipeline.summarise(outcomes)
    return {
        "seconds": wall,
        "startup_seconds": startup,
        "hooks": hooks,
        "stages": clock.close(),
        "feeds": {
            str(r.feed): {
                k: int(getattr(r, k))
                for k in ("files", "read", "loaded", "quarantined", "rejected")
            }
            for r in summary.itertuples()
        },
    }


def _startup() -> float:
    """One-off per-process cost, timed apart from the feeds: GX import and context, pypinyin's
    dictionaries, DuckDB. Paid once per worker process, not per file; the floor has no such cost."""
    start = time.perf_counter()
    from datahub.privacy.normalise import name_pinyin
    from datahub.quality.gx_runner import _gx_context
    from datahub.warehouse.db import memory

    _gx_context()
    name_pinyin("张伟")
    memory().close()
    return time.perf_counter() - start


def child_ingest_feed(args: dict[str, Any]) -> dict[str, Any]:
    """One feed alone, as `datahub run --feed F` ingests it: wall seconds of its files.

    The government code tables are loaded first (untimed) unless the feed is one
    of them; the feed's files then run through the same pipelined ``run_sources``
    (prepare on every core, GX and the loader in helper threads) from a cold start
    of the process's identifier caches.
    """
    _quiet()
    import datahub.pipeline as pipeline
    from datahub.config import Paths
    from datahub.privacy.keys import ensure_dev_keys

    paths = Paths(Path(args["home"]))
    keyring = ensure_dev_keys(paths, announce=False)
    sources, feed = Path(args["sources"]), str(args["feed"])
    _startup()
    if feed not in REFERENCE_FEEDS:
        pipeline.run_sources(
            sources, paths=paths, keyring=keyring, build_docs=False, feeds=REFERENCE_FEEDS
        )
    start = time.perf_counter()
    outcomes = pipeline.run_sources(
        sources, paths=paths, keyring=keyring, build_docs=False, feeds=(feed,)
    )
    wall = time.perf_counter() - start
    return {"seconds": wall, "rows": sum(o.rows_read for o in outcomes), "files": len(outcomes)}


def child_ingest_parallel(args: dict[str, Any]) -> dict[str, Any]:
    """Whole ingest with ``workers`` prepare processes; wall time and the process tree's peak RSS."""
    import threading

    import psutil

    _quiet()
    import datahub.pipeline as pipeline
    from datahub.config import Paths
    from datahub.privacy.keys import ensure_dev_keys

    paths = Paths(Path(args["home"]))
    keyring = ensure_dev_keys(paths, announce=False)
    me = psutil.Process()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker may exit mid-sample
                    total += p.memory_info().rss
            peak[0] = max(peak[0], total)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    outcomes = pipeline.run_sources(
        Path(args["sources"]),
        paths=paths,
        keyring=keyring,
        build_docs=False,
        workers=int(args["workers"]),
    )
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    summary = pipeline.summarise(outcomes)
    return {
        "seconds": wall,
        "workers": int(args["workers"]),
        "peak_rss_tree_mb": peak[0] / 1024**2,
        "rows": int(summary["read"].sum()),
    }


def child_build(args: dict[str, Any]) -> dict[str, Any]:
    """``datahub build`` in this process (stages by hooks), then linkage quality vs truth."""
    _quiet()
    os.environ["DATAHUB_HOME"] = args["home"]
    from instrument import install

    from datahub.cli import app

    clock = StageClock()
    hooks = install(clock)
    start = time.perf_counter()

    def build() -> None:
        with clock.stage("other"):
            app(["build", "--home", args["home"]], standalone_mode=False)

    _profiled(args, build)
    wall = time.perf_counter() - start
    return {
        "seconds": wall,
        "hooks": hooks,
        "stages": clock.close(),
        "linkage": _linkage_quality(args),
    }


def _linkage_quality(args: dict[str, Any]) -> dict[str, Any]:
    """Precision/recall of the published person cross-reference against ``_truth``."""
    from datahub.config import Paths
    from datahub.linkage.score import read_truth, score_linkage
    from datahub.warehouse.db import connect

    paths = Paths(Path(args["home"]))
    con = connect(paths.build, read_only=True)
    try:
        xref = con.execute("SELECT * FROM integrated.person_xref").df()
    finally:
        con.close()
    score = score_linkage(xref, read_truth(Path(args["sources"])))
    out = {k: v for k, v in vars(score).items() if isinstance(v, int | float | str)}
    out["records"] = len(xref)
    return out


CHILD_STEPS = {
    "floor": child_floor,
    "ingest": child_ingest,
    "ingest_feed": child_ingest_feed,
    "ingest_parallel": child_ingest_parallel,
    "build": child_build,
}


# ====================================================================== orchestration


#: The generator's default event window (61 days); ``--days`` shortens it from the start.
WINDOW_START = dt.date(2026, 6, 1)
WINDOW_DAYS = 61


def incidents_per_day_for(persons: int, days: int) -> float:
    """The generator's --incidents-per-day that gives BASE_INCIDENT_ROWS × persons/BASE_PERSONS
    incident rows over the first ``days`` of the window (its seasonal and weekend weights)."""
    from datahub.generate.config import SEASON_WEIGHT

    window = [WINDOW_START + dt.timedelta(days=i) for i in range(days)]
    weight = sum(SEASON_WEIGHT[d.month] * (1.1 if d.weekday() >= 5 else 1.0) for d in window)
    return round(BASE_INCIDENT_ROWS * persons / BASE_PERSONS / weight, 1)


def sources_for(persons: int, incidents_per_day: float, seed: int, days: int) -> Path:
    return DATA_DIR / f"p{persons}-i{incidents_per_day:g}-d{days}-s{seed}"


def generate(
    persons: int, incidents_per_day: float, seed: int, days: int
) -> tuple[Path, float | None]:
    """Generate (or reuse) the feeds for one scale; return the folder and generation seconds."""
    out = sources_for(persons, incidents_per_day, seed, days)
    end = WINDOW_START + dt.timedelta(days=days - 1)
    marker = out / ".complete"
    if marker.exists():
        return out, None
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "datahub"), "generate", "--out", str(out),
            "--persons", str(persons), "--seed", str(seed),
            "--incidents-per-day", f"{incidents_per_day:g}",
            "--start", WINDOW_START.isoformat(), "--end", end.isoformat(), "--quiet",
        ],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    marker.write_text(json.dumps({"seconds": seconds}))
    return out, seconds


def measure_scale(
    scale: float,
    persons: int,
    ipd: float,
    seed: int,
    days: int,
    *,
    build: bool,
    profile_dir: Path | None,
    workers: int = 1,
    feeds_alone: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Generate, floor, ingest (one process, then ``workers`` processes) and build at one scale.

    Each feed is also ingested alone (``feeds_alone``, default every feed with rows) for its
    own ratio to the floor."""
    from datahub.sources.contracts import FEEDS

    log(f"scale {scale:g}: {persons} persons, {ipd:g} incidents/day")
    sources, gen_s = generate(persons, ipd, seed, days)
    floors = {}
    for feed in FEEDS:
        r = run_child("floor", {"sources": str(sources), "feed": feed.key})
        floors[feed.key] = {**r.payload, "peak_rss_mb": round(r.peak_rss_mb, 1)}
    floor_total = sum(f["seconds"] for f in floors.values())
    log(f"  floor: {floor_total:.1f} s over {sum(f['rows'] for f in floors.values())} rows")

    alone = {}
    for feed in FEEDS:
        if not floors[feed.key].get("rows") or (feeds_alone and feed.key not in feeds_alone):
            continue
        fhome = DATA_DIR / f"home-{sources.name}-{feed.key}"
        shutil.rmtree(fhome, ignore_errors=True)
        r = run_child(
            "ingest_feed", {"sources": str(sources), "home": str(fhome), "feed": feed.key}
        )
        shutil.rmtree(fhome, ignore_errors=True)
        alone[feed.key] = {**r.payload, "peak_rss_mb": round(r.peak_rss_mb, 1)}
    log(f"  feeds alone: {sum(a['seconds'] for a in alone.values()):.1f} s")
    home = DATA_DIR / f"home-{sources.name}"
    shutil.rmtree(home, ignore_errors=True)
    prof = {"profile": str(profile_dir / "ingest.txt")} if profile_dir else {}
    ing = run_child("ingest", {"sources": str(sources), "home": str(home), **prof})
    log(f"  ingest: {ing.wall_s:.1f} s, peak {ing.peak_rss_mb:.0f} MB")
    parallel = None
    if workers > 1:
        phome = DATA_DIR / f"home-{sources.name}-w{workers}"
        shutil.rmtree(phome, ignore_errors=True)
        par = run_child(
            "ingest_parallel", {"sources": str(sources), "home": str(phome), "workers": workers}
        )
        shutil.rmtree(phome, ignore_errors=True)
        parallel = {
            "workers": workers,
            "seconds": round(par.payload["seconds"], 2),
            "peak_rss_tree_mb": round(par.payload["peak_rss_tree_mb"], 1),
            "rows": par.payload["rows"],
            "ingest_vs_floor_ratio": round(par.payload["seconds"] / floor_total, 2)
            if floor_total
            else None,
        }
        log(f"  ingest, {workers} workers: {par.payload['seconds']:.1f} s")
    result: dict[str, Any] = {
        "scale": scale,
        "persons": persons,
        "incidents_per_day": ipd,
        "days": days,
        "sources": str(sources.relative_to(REPO)),
        "generate_seconds": gen_s,
        "floor": floors,
        "floor_seconds": floor_total,
        "ingest": _ingest_summary(ing, floors, alone),
        "ingest_parallel": parallel,
    }
    if build:
        prof = {"profile": str(profile_dir / "build.txt")} if profile_dir else {}
        try:
            b = run_child("build", {"sources": str(sources), "home": str(home), **prof})
        except StepFailed as exc:  # record it: the ingest figures are still worth keeping
            log(f"  build failed: {str(exc)[-500:]}")
            result["build_error"] = str(exc)[-1500:]
        else:
            log(f"  build: {b.wall_s:.1f} s, peak {b.peak_rss_mb:.0f} MB")
            result["build"] = _build_summary(b, floor_total)
    return result


def _stage_rows(
    stages: dict[str, dict[str, float]], rows: int, names: tuple[str, ...]
) -> dict[str, Any]:
    return {
        name: {
            "seconds": round(stages.get(name, {}).get("seconds", 0.0), 3),
            "rows_per_s": rows_per_s(rows, stages.get(name, {}).get("seconds", 0.0)),
            "peak_rss_mb": round(stages.get(name, {}).get("peak_rss_mb", 0.0), 1),
        }
        for name in names
        if name in stages
    }


def _ingest_summary(
    ing: ChildResult, floors: dict[str, dict[str, Any]], alone: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Whole run (wall, busy seconds per stage) and each feed ingested alone against its floor."""
    p = ing.payload
    per_feed: dict[str, Any] = {}
    totals: dict[str, dict[str, float]] = {}
    for feed, stages in p["stages"].items():
        if feed == "all":
            continue
        rows = p["feeds"].get(feed, {}).get("read", 0)
        fl = floors.get(feed, {})
        solo = alone.get(feed, {})
        seconds = solo.get("seconds")
        ratio = seconds / fl["seconds"] if seconds and fl.get("seconds") else None
        per_feed[feed] = {
            "rows": rows,
            "seconds": round(seconds, 3) if seconds else None,
            "rows_per_s": rows_per_s(rows, seconds or 0.0),
            "floor_seconds": round(fl.get("seconds", 0.0), 3),
            "ingest_vs_floor_ratio": round(ratio, 2) if ratio else None,
            "alone_peak_rss_mb": solo.get("peak_rss_mb"),
            "busy_seconds_in_whole_run": round(sum(s["seconds"] for s in stages.values()), 3),
            "floor_note": fl.get("floor_on"),
            "stages": _stage_rows(stages, rows, INGEST_STAGES),
            "counts": p["feeds"].get(feed, {}),
        }
        for name, s in stages.items():
            t = totals.setdefault(name, {"seconds": 0.0, "peak_rss_mb": 0.0})
            t["seconds"] += s["seconds"]
            t["peak_rss_mb"] = max(t["peak_rss_mb"], s["peak_rss_mb"])
    rows_total = sum(f["rows"] for f in per_feed.values())
    floor_total = sum(f.get("seconds", 0.0) for f in floors.values())
    return {
        "seconds": round(ing.wall_s, 2),
        "run_seconds": round(p.get("seconds", 0.0), 2),
        "startup_seconds": round(p.get("startup_seconds", 0.0), 2),
        "peak_rss_mb": round(ing.peak_rss_mb, 1),
        "rows": rows_total,
        "rows_per_s": rows_per_s(rows_total, ing.wall_s),
        "ingest_vs_floor_ratio": round(ing.wall_s / floor_total, 2) if floor_total else None,
        "run_vs_floor_ratio": round(p.get("seconds", 0.0) / floor_total, 2)
        if floor_total
        else None,
        "stages": _stage_rows(totals, rows_total, INGEST_STAGES),
        "feeds": per_feed,
        "hooks": p["hooks"],
    }


def _build_summary(b: ChildResult, floor_total: float) -> dict[str, Any]:
    p = b.payload
    stages = p["stages"].get("all", {})
    link = p.get("linkage", {})
    link_s = stages.get("link", {}).get("seconds", 0.0)
    # the build itself (``datahub build`` in the child), not the child's imports or the
    # precision/recall scoring that follows it
    seconds = float(p.get("seconds") or b.wall_s)
    return {
        "seconds": round(seconds, 2),
        "process_seconds": round(b.wall_s, 2),
        "peak_rss_mb": round(b.peak_rss_mb, 1),
        "build_vs_floor_ratio": round(seconds / floor_total, 2) if floor_total else None,
        "stages": _stage_rows(stages, link.get("records", 0), BUILD_STAGES),
        "linkage": {**link, "records_per_s": rows_per_s(link.get("records", 0), link_s)},
        "hooks": p["hooks"],
    }


def git_commit() -> str:
    """The code measured: HEAD, with ``+dirty`` when src/ or benchmarks/ have local changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--", "src", "benchmarks/*.py") else "")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name, dist in (
        ("duckdb", "duckdb"),
        ("gx", "great-expectations"),
        ("airflow", "apache-airflow"),
        ("splink", "splink"),
        ("pandas", "pandas"),
        ("pyarrow", "pyarrow"),
    ):
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "platform": platform.platform(),
    }


def scaling_verdict(scales: list[dict[str, Any]]) -> dict[str, Any]:
    """Is ingest time linear, memory flat (within 1.5×) and under 2 GB at the top scale?"""
    ks = [s["scale"] for s in scales]
    secs = [s["ingest"]["seconds"] for s in scales]
    peaks = [s["ingest"]["peak_rss_mb"] for s in scales]
    return {
        "scales": ks,
        "ingest_seconds": secs,
        "ingest_peak_rss_mb": peaks,
        "time_linear": linear_fit_ok(ks, secs),
        "memory_flat_within_1_5x": memory_flat(peaks),
        "peak_under_2gb_at_top": bool(peaks) and max(peaks) < 2048,
    }


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        emit(CHILD_STEPS[argv[1]](json.loads(argv[2])))
        return 0
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--persons", type=int, default=BASE_PERSONS, help="population at scale 1")
    ap.add_argument(
        "--incidents-per-day",
        type=float,
        default=None,
        help="at scale 1 (default: sized from --persons)",
    )
    ap.add_argument("--scales", default="1,2,5", help="comma-separated multiples of the base scale")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument(
        "--days",
        type=int,
        default=WINDOW_DAYS,
        help="event window in days from 2026-06-01 (fewer, larger daily files; the incident "
        "rate is raised so the incidents feed keeps its size)",
    )
    ap.add_argument("--no-build", action="store_true", help="ingest only (skip datahub build)")
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="also time the whole ingest with this many prepare processes (1: skip)",
    )
    ap.add_argument("--build-scales", default="1", help="scales at which to run datahub build too")
    ap.add_argument(
        "--profile", action="store_true", help="pyinstrument profiles of the base-scale run"
    )
    ap.add_argument(
        "--alone",
        default="",
        help="comma-separated feeds to time alone against their floor (default: every feed)",
    )
    ap.add_argument("--label", default=None, help="result file name suffix (default: persons)")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR)
    opts = ap.parse_args(argv)

    from report import write_results

    scales = [float(s) for s in opts.scales.split(",") if s.strip()]
    build_scales = {float(s) for s in opts.build_scales.split(",") if s.strip()}
    ipd = opts.incidents_per_day or incidents_per_day_for(opts.persons, opts.days)
    label = opts.label or f"p{opts.persons}"
    stamp = dt.date.today().isoformat()
    profile_dir = opts.results / f"{stamp}-{label}-profile" if opts.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    DATA_DIR.mkdir(exist_ok=True)
    runs = []
    for i, k in enumerate(scales):
        runs.append(
            measure_scale(
                k,
                int(round(opts.persons * k)),
                round(ipd * k, 1),
                opts.seed,
                opts.days,
                build=not opts.no_build and k in build_scales,
                profile_dir=profile_dir if i == 0 else None,
                workers=opts.workers,
                feeds_alone=tuple(f for f in opts.alone.split(",") if f.strip()),
            )
        )
    results = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "label": label,
        "args": {
            "persons": opts.persons,
            "incidents_per_day": ipd,
            "scales": scales,
            "seed": opts.seed,
        },
        "commit": git_commit(),
        "versions": versions(),
        "machine": machine(),
        "reference_points": {
            "floor_2m_rows_8_cols_s": 1.9,
            "naive_pandas_pseudonymise_load_x_floor": 6,
            "hmac_in_duckdb_sql_x_floor": 2,
            "gx_8_expectations_2m_rows_s": 2.6,
        },
        "targets": {
            "ingest_vs_floor": 3,
            "stretch": 2,
            "build_vs_floor": 10,
            "peak_rss_mb_at_5x": 2048,
        },
        "runs": runs,
        "scaling": scaling_verdict(runs),
    }
    json_path, md_path = write_results(results, opts.results, f"{stamp}-{label}", profile_dir)
    print(md_path.read_text())
    log(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark results: the JSON record and its short Markdown table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(results: dict[str, Any], profile_dir: Path | None = None) -> str:
    """Render the results as Markdown tables (stages, feeds vs floor, scaling, linkage)."""
    v, m = results["versions"], results["machine"]
    lines = [
        f"# Benchmark {results['label']} — {results['date']}",
        "",
        f"Code: commit {results.get('commit', 'not recorded')}. "
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB. "
        + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        f"Base scale: {results['args']['persons']:,} persons, "
        f"{results['args']['incidents_per_day']:g} incidents/day; scales {results['args']['scales']}.",
        "",
    ]
    base = results["runs"][0]
    ing = base["ingest"]
    lines += [
        f"## Stages at scale {base['scale']:g} ({ing['rows']:,} rows in all feeds)",
        "",
        "| stage | seconds | rows/s | peak RSS MB |",
        "|---|---:|---:|---:|",
    ]
    for name, s in ing["stages"].items():
        lines.append(
            f"| {name} | {_f(s['seconds'], 2)} | {_f(s['rows_per_s'], 0)} | {_f(s['peak_rss_mb'])} |"
        )
    if ing.get("startup_seconds"):
        lines.append(
            f"| start-up (GX import + context, pypinyin, DuckDB; once per process) | "
            f"{_f(ing['startup_seconds'], 2)} | – | – |"
        )
    lines.append(
        f"| **ingest total** | {_f(ing['seconds'], 2)} | {_f(ing['rows_per_s'], 0)} | {_f(ing['peak_rss_mb'])} |"
    )
    if "build" in base:
        b = base["build"]
        for name, s in b["stages"].items():
            lines.append(f"| build: {name} | {_f(s['seconds'], 2)} | – | {_f(s['peak_rss_mb'])} |")
        lines.append(f"| **build total** | {_f(b['seconds'], 2)} | – | {_f(b['peak_rss_mb'])} |")
    lines += [
        "",
        "Stage seconds are *busy* seconds summed over the threads that ran them (GX and the",
        "Parquet writers run one chunk behind the engine, the loader one file behind the",
        "prepare), so they add up to more than the wall time. Per-stage peak RSS is the",
        "process's sampled RSS while that stage ran; totals are `ru_maxrss` of the child.",
        "",
        "## Ingest vs the DuckDB floor, per feed",
        "",
        "| feed | rows | alone s | floor s | ratio | rows/s | busy s in the whole run | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for feed, f in sorted(ing["feeds"].items(), key=lambda kv: -kv[1]["rows"]):
        lines.append(
            f"| {feed} | {_f(f['rows'])} | {_f(f['seconds'], 2)} | {_f(f['floor_seconds'], 2)} | "
            f"{_f(f['ingest_vs_floor_ratio'], 1)} | {_f(f['rows_per_s'], 0)} | "
            f"{_f(f.get('busy_seconds_in_whole_run'), 2)} | {f.get('floor_note') or ''} |"
        )
    lines.append(
        f"| **all, one process** | {_f(ing['rows'])} | {_f(ing.get('run_seconds'), 2)} | "
        f"{_f(base['floor_seconds'], 2)} | {_f(ing.get('run_vs_floor_ratio'), 1)} | "
        f"{_f(ing['rows'] / ing['run_seconds'] if ing.get('run_seconds') else None, 0)} | – | "
        f"whole run, start-up ({_f(ing.get('startup_seconds'), 1)} s) apart |"
    )
    par = base.get("ingest_parallel")
    if par:
        lines.append(
            f"| **all, {par['workers']} prepare workers** | {_f(par['rows'])} | {_f(par['seconds'], 2)} | "
            f"{_f(base['floor_seconds'], 2)} | {_f(par['ingest_vs_floor_ratio'], 1)} | "
            f"{_f(par['rows'] / par['seconds'] if par['seconds'] else None, 0)} | – | "
            f"whole run incl. start-up; peak RSS of the process tree {_f(par['peak_rss_tree_mb'], 0)} MB |"
        )
    lines += [
        "",
        "*alone*: the feed's files by `run_sources(feeds=(feed,))` in a fresh process after the",
        "government code tables (not timed), from the start of its first prepare to the end of",
        "its last load — read, normalise, pseudonymise, validate, staged Parquet, load and ledger.",
        "The floor is DuckDB's multi-threaded `read_csv` of the same files into a table.",
    ]
    sc = results["scaling"]
    lines += [
        "",
        "## Scaling (whole ingest)",
        "",
        "| scale | rows | ingest s | s per scale unit | peak RSS MB | floor s | ratio | "
        "parallel s | parallel ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        i = r["ingest"]
        p = r.get("ingest_parallel") or {}
        lines.append(
            f"| {r['scale']:g} | {_f(i['rows'])} | {_f(i['seconds'], 1)} | {_f(i['seconds'] / r['scale'], 1)} | "
            f"{_f(i['peak_rss_mb'])} | {_f(r['floor_seconds'], 2)} | {_f(i['ingest_vs_floor_ratio'], 1)} | "
            f"{_f(p.get('seconds'), 1)} | {_f(p.get('ingest_vs_floor_ratio'), 1)} |"
        )
    lines += [
        "",
        f"Time linear: **{sc['time_linear']}**; memory flat within 1.5×: "
        f"**{sc['memory_flat_within_1_5x']}**; peak under 2 GB at the top scale: "
        f"**{sc['peak_under_2gb_at_top']}**.",
    ]
    linked = [r for r in results["runs"] if "build" in r]
    if linked:
        lines += [
            "",
            "## Linkage",
            "",
            "| scale | records | link s | records/s | precision | recall | build s | build ÷ floor |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in linked:
            b, lk = r["build"], r["build"]["linkage"]
            link_s = b["stages"].get("link", {}).get("seconds")
            lines.append(
                f"| {r['scale']:g} | {_f(lk.get('records'))} | {_f(link_s, 2)} | {_f(lk.get('records_per_s'), 0)} | "
                f"{_f(lk.get('precision'), 4)} | {_f(lk.get('recall'), 4)} | {_f(b['seconds'], 1)} | "
                f"{_f(b['build_vs_floor_ratio'], 1)} |"
            )
    if profile_dir is not None:
        lines += ["", f"Profiles: `{profile_dir.name}/` (pyinstrument text and HTML)."]
    notes = results.get("notes")
    if notes:
        lines += ["", "## Where the time goes", "", notes]
    return "\n".join(lines) + "\n"


def write_results(
    results: dict[str, Any], out_dir: Path, name: str, profile_dir: Path | None = None
) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` under ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{name}.json"
    md_path = out_dir / f"{name}.md"
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    md_path.write_text(markdown(results, profile_dir))
    return json_path, md_path

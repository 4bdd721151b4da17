"""``sample_sources/README.md`` rendered from the contracts, the defect catalogue and a manifest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from datahub.generate.config import DefectRates
from datahub.generate.defects import DEFECTS
from datahub.generate.inject import DEPARTMENT_FORMATS, OLD_ID_FEEDS
from datahub.sources.contracts import DEPARTMENT_ENCODING, DEPARTMENTS, FEEDS

_ENC_LABEL = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "gbk": "GBK"}
_KIND = {
    "event_day": "`<feed>_YYYYMMDD.csv`, one file per day of events",
    "event_month": "`<feed>_YYYYMM.csv`, one file per month",
    "snapshot": "`<feed>_YYYYMMDD.csv`, full extract as of the window's end",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_readme(manifest: Mapping[str, object] | None = None) -> str:
    """The README text; ``manifest`` (from ``_truth/manifest.json``) adds this set's figures."""
    lines: list[str] = [
        "# Sample department feeds (synthetic)",
        "",
        "Synthetic feeds of the four departments of 峨眉山市, written by `datahub generate` from one",
        "hidden population. Every name, ID number, phone and address here is invented; ID numbers and",
        "credit codes have valid check characters unless a defect says otherwise.",
        "**Generated file — do not edit**: `make sample` rewrites it (rendered by",
        "`datahub.generate.readme.render_readme` from `datahub/sources/contracts.py`).",
        "",
        "## Layout, encodings and file naming",
        "",
        "`<department>/<feed>_<stamp>.csv`, one header row, comma-separated, minimal quoting.",
        "",
        "| department | encoding | line ending | usual datetime / date / month spelling |",
        "|---|---|---|---|",
    ]
    for dept in DEPARTMENTS:
        enc, le = DEPARTMENT_ENCODING[dept]
        f_dt, f_d, f_m = DEPARTMENT_FORMATS[dept]
        lines.append(
            f"| {dept} | {_ENC_LABEL.get(enc, enc)} | {'CRLF' if le == chr(13) + chr(10) else 'LF'} "
            f"| `{f_dt}` / `{f_d}` / `{f_m}` |"
        )
    lines += [
        "",
        "Event feeds have a file for every day (`event_day`) or month (`event_month`) of the window,",
        "empty days included (header only). Snapshots are written once, stamped with the window's end.",
        "",
        "## Feeds and columns",
        "",
    ]
    for feed in FEEDS:
        lines += [
            f"### `{feed.department}/{feed.name}` — {feed.label}",
            "",
            f"{feed.meaning}. Files: {_KIND[feed.kind]}. Business key: "
            + ", ".join(f"`{k}`" for k in feed.business_key)
            + ".",
        ]
        if feed.persons:
            refs = "; ".join(
                f"`{r.role}` ({', '.join(c for c in (r.name, r.id_number, r.phone) if c)})"
                for r in feed.persons
            )
            lines.append(f"Person mentioned: {refs}.")
        if feed.time_order:
            lines.append(
                "Time order: " + ", ".join(f"`{a}` ≤ `{b}`" for a, b in feed.time_order) + "."
            )
        lines += [
            "",
            "| column | 中文 | meaning | type | required | identifier | allowed / reference |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in feed.columns:
            allowed = (
                ", ".join(c.allowed) if c.allowed else (f"→ {c.references}" if c.references else "")
            )
            lines.append(
                f"| `{c.name}` | {c.label} | {_cell(c.meaning)} | {c.type} | {'yes' if c.required else ''} "
                f"| {c.role or ''} | {_cell(allowed)} |"
            )
        lines.append("")
    rates = DefectRates()
    lines += [
        "## Injected defects",
        "",
        "Rates are per eligible cell or row (e.g. `id_lowercase_x` only for IDs ending in X,",
        "`id_15digit` only for people born 19xx in "
        + ", ".join(f"`{k}`" for k in sorted(OLD_ID_FEEDS))
        + ").",
        "Row-level quarantine defects are mutually exclusive, so each such row has one expected reason.",
        "`--defect-scale` multiplies all rates; 0 gives clean feeds.",
        "",
        "| label | level | expected quarantine reason | default rate | what |",
        "|---|---|---|---|---|",
    ]
    for d in DEFECTS.values():
        lines.append(
            f"| `{d.label}` | {d.level} | {f'`{d.reason}`' if d.reason else '— (must load)'} "
            f"| {getattr(rates, d.label):g} | {_cell(d.description)} |"
        )
    lines += [
        "",
        "Not defects but real-life gaps: community records often lack the ID number, callers may",
        "give no name, some people have no mobile (their household landline is used), optional dates",
        "are blank when the step did not happen (no dispatch, not yet resolved).",
        "",
        "## Ground truth (`_truth/`, never read by the pipeline)",
        "",
        "- `persons.csv` — the hidden population: `person_id` and true name, sex, birth date, 18-digit ID",
        "  (and its 15-digit form for people born 19xx), mobile, household landline, population type,",
        "  home address and grid, household, key-person category, `conflict_prone` (repeated disputes and",
        "  police calls: the 民转刑 warning sign), `hardship`, `lives_alone`.",
        "- `records.csv` — one row per data row of every file: `file` (relative path), `row_number`",
        "  (1-based data row), `role` (the feed's `PersonRef.role`, empty for feeds without persons),",
        "  `person_id` (empty only for feeds without persons), `defects` (';'-joined labels above).",
        "- `addresses.csv` — address kind (residential / unit / public / retired), area class, grid, station.",
        "- `manifest.json` — seed, persons, window, defect rates and eligible/applied counts, rows per",
        "  feed, and per file its sha256, byte size, encoding, line ending and row count.",
        "",
    ]
    if manifest:
        window = manifest.get("window", {})
        assert isinstance(window, dict)
        rows = manifest.get("rows_by_feed", {})
        assert isinstance(rows, dict)
        files = manifest.get("files", [])
        assert isinstance(files, list)
        lines += [
            "## This set",
            "",
            f"`datahub generate --persons {manifest.get('persons')} --seed {manifest.get('seed')} "
            f"--start {window.get('start')} --end {window.get('end')} "
            f"--defect-scale {manifest.get('defect_scale')}`: {len(files)} files, "
            f"{sum(int(v) for v in rows.values()):,} rows.",
            "",
            "| feed | rows |",
            "|---|---|",
        ]
        lines += [f"| `{f.key}` | {int(rows[f.key]):,} |" for f in FEEDS if f.key in rows]
        lines.append("")
    return "\n".join(lines)


def write_readme(path: Path, manifest: Mapping[str, object] | None = None) -> None:
    """Write the rendered README (UTF-8, LF)."""
    path.write_text(render_readme(manifest), encoding="utf-8")

"""Build steps: models → linkage → marts → mart gates → publish.

The build writes its own DuckDB file (``DATAHUB_HOME/build.duckdb``: staging,
integrated, marts), made afresh by the first step, with the working warehouse
(raw, quarantine, audit) attached read-only as ``wh`` and on the search path,
so the models' ``raw.x`` resolve there. Publishing is then a copy of this file
(see :mod:`datahub.warehouse.publish`) instead of a second write of every row.

Each step opens the files itself (so Airflow can run them as separate tasks in
the ``datahub_warehouse`` pool) and is also chained by :func:`build`.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from datahub.config import Paths
from datahub.warehouse.db import WAREHOUSE_CATALOG, connect, sql_literal
from datahub.warehouse.mart_gates import GateReport, MartGateFailed, preload_gx, run_mart_gates
from datahub.warehouse.models import LAYERS, Model, load_models, run_models, split_around
from datahub.warehouse.publish import PublishResult, publish_build

#: Tables the Python linkage step writes (models depending on them run after it).
LINKAGE_TABLES: frozenset[str] = frozenset({"integrated.person_index", "integrated.person_xref"})


@dataclass
class BuildResult:
    """Row counts per model, linkage statistics, gate report and published snapshot."""

    model_rows: dict[str, int] = field(default_factory=dict)
    linkage: dict[str, int] = field(default_factory=dict)
    gates: GateReport | None = None
    published: PublishResult | None = None


def attach_warehouse(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Attach the working warehouse read-only and put its schemas on the search path.

    The build never writes the warehouse; ``READ_ONLY`` makes DuckDB enforce it.
    Layer schemas a warehouse of an older layout may still hold are left off the
    path, so ``staging.x`` always means the build file's table.
    """
    con.execute(f"ATTACH {sql_literal(path)} AS {WAREHOUSE_CATALOG} (READ_ONLY)")
    schemas = [
        r[0]
        for r in con.execute(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = ? "
            "AND schema_name NOT IN ('main', 'information_schema', 'pg_catalog') ORDER BY 1",
            [WAREHOUSE_CATALOG],
        ).fetchall()
        if r[0] not in LAYERS
    ]
    path_entries = ["main"] + [f"{WAREHOUSE_CATALOG}.{s}" for s in schemas]
    con.execute(f"SET search_path = '{','.join(path_entries)}'")


@contextmanager
def build_connection(paths: Paths) -> Iterator[duckdb.DuckDBPyConnection]:
    """The build file opened for writing, the warehouse attached read-only; closed afterwards."""
    if not paths.warehouse.exists():
        raise FileNotFoundError(
            f"no warehouse at {paths.warehouse}: ingest feeds first (datahub run / datahub demo)"
        )
    if not paths.build.exists():
        raise FileNotFoundError(
            f"no build file at {paths.build}: run the models first (datahub build)"
        )
    from datahub.linkage.store import PREVIOUS_CATALOG  # lazily: the package imports Splink

    con = connect(paths.build)
    try:
        # tables whose row order matters say ORDER BY (person_records, every mart), which
        # DuckDB keeps regardless; the others may then be written in parallel, unordered
        # (base scale: staging + integrated models 28.4 → 25.6 s)
        con.execute("SET preserve_insertion_order = false")
        attach_warehouse(con, paths.warehouse)
        if paths.build_previous.exists():
            con.execute(
                f"ATTACH {sql_literal(paths.build_previous)} AS {PREVIOUS_CATALOG} (READ_ONLY)"
            )
        yield con
    finally:
        con.close()


def new_build_file(paths: Paths) -> None:
    """Start a fresh build file holding only the person-key registry; keep the old one aside.

    A fresh file holds nothing of earlier builds (not even in free blocks), and
    its copy is the published snapshot. The registry — every person_key ever
    issued — is the one table copied over (from the warehouse for a warehouse of
    the older one-file layout). The old file becomes ``build.previous.duckdb``,
    attached read-only by :func:`build_connection`, so that the linkage carries
    person keys forward from the last cross-reference without copying it — unless
    it failed before its linkage: then it is dropped and the previous file stays.
    """
    from datahub.linkage.store import PersonIndexStore

    if not paths.warehouse.exists():
        raise FileNotFoundError(
            f"no warehouse at {paths.warehouse}: ingest feeds first (datahub run / datahub demo)"
        )
    tmp = paths.build.with_name(f".{paths.build.name}.{uuid.uuid4().hex}.tmp")
    con = connect(tmp)
    try:
        for old in (paths.build, paths.warehouse):
            if old.exists() and PersonIndexStore.carry_over_registry(con, old):
                break
        linked = paths.build.exists() and PersonIndexStore.holds_cross_reference(con, paths.build)
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    if linked:
        _move_with_wal(paths.build, paths.build_previous)
    else:  # none yet, or a build that failed before its linkage: the previous one stays
        _remove_with_wal(paths.build)
    os.replace(tmp, paths.build)


def _remove_with_wal(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)


def _move_with_wal(src: Path, dst: Path) -> None:
    """Rename a DuckDB file and its WAL (if any); a stale WAL at ``dst`` must not survive."""
    src_wal, dst_wal = (p.with_name(p.name + ".wal") for p in (src, dst))
    if src_wal.exists():
        os.replace(src_wal, dst_wal)
    else:
        dst_wal.unlink(missing_ok=True)
    os.replace(src, dst)


def _phases() -> tuple[list[Model], list[Model]]:
    """Models before the linkage (staging, integrated without persons) and after it (the rest)."""
    models = load_models()
    before, after = split_around(models, LINKAGE_TABLES)
    marts_first = [m for m in before if m.layer == "marts"]
    before = [m for m in before if m.layer != "marts"]
    return before, marts_first + after


def run_base_models(paths: Paths) -> dict[str, int]:
    """Staging and the integrated tables the linkage needs."""
    before, _after = _phases()
    new_build_file(paths)
    with build_connection(paths) as con:
        return run_models(con, before)


def run_linkage(paths: Paths) -> dict[str, int]:
    """Link persons; the trained model goes to DATAHUB_HOME/linkage/."""
    from datahub.linkage import link_persons

    with build_connection(paths) as con:
        return link_persons(con, model_dir=paths.home / "linkage").stats


def run_mart_models(paths: Paths) -> dict[str, int]:
    """Integrated tables needing person keys, then every mart."""
    before, after = _phases()
    provided = [m.table for m in before] + sorted(LINKAGE_TABLES)
    with build_connection(paths) as con:
        return run_models(con, after, provided=provided)


def check_marts(paths: Paths) -> GateReport:
    """Run the mart suites; raise :class:`MartGateFailed` when one fails."""
    with build_connection(paths) as con:
        report = run_mart_gates(con, results_dir=paths.gx_results / "marts")
    if not report.success:
        raise MartGateFailed(report)
    return report


def publish(paths: Paths, run_id: str | None = None) -> PublishResult:
    """Write the analysts' snapshot (DATAHUB_HOME/published/datahub.duckdb) atomically."""
    if not paths.build.exists():
        raise FileNotFoundError(f"no build file at {paths.build}: build before publishing")
    return publish_build(paths.build, paths.published, run_id=run_id)


def build(paths: Paths, *, do_publish: bool = True) -> BuildResult:
    """Models, linkage, marts, gates and (when every gate passes) publish."""
    import splink  # noqa: F401  (before the GX thread, so the two never import side by side)

    preload_gx()  # overlaps the GX import with the SQL models
    result = BuildResult()
    result.model_rows.update(run_base_models(paths))
    result.linkage = run_linkage(paths)
    result.model_rows.update(run_mart_models(paths))
    result.gates = check_marts(paths)
    if do_publish:
        result.published = publish(paths, run_id=dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S"))
    return result


def summary(result: BuildResult) -> dict[str, Any]:
    """A JSON-friendly summary (counts only) for the CLI and Airflow XCom."""
    return {
        "models": result.model_rows,
        "linkage": result.linkage,
        "gates": result.gates.as_dict() if result.gates else None,
        "published": str(result.published.path) if result.published else None,
    }

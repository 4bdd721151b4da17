"""Build steps over the working warehouse: models → linkage → marts → mart gates → publish.

Each step opens the warehouse itself (so Airflow can run them as separate
tasks in the ``datahub_warehouse`` pool) and is also chained by :func:`build`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb

from datahub.config import Paths
from datahub.warehouse.db import connect
from datahub.warehouse.mart_gates import GateReport, MartGateFailed, preload_gx, run_mart_gates
from datahub.warehouse.models import Model, load_models, run_models, split_around
from datahub.warehouse.publish import PublishResult, publish_snapshot

#: Tables the Python linkage step writes (models depending on them run after it).
LINKAGE_TABLES: frozenset[str] = frozenset({"integrated.person_index", "integrated.person_xref"})


@dataclass
class BuildResult:
    """Row counts per model, linkage statistics, gate report and published snapshot."""

    model_rows: dict[str, int] = field(default_factory=dict)
    linkage: dict[str, int] = field(default_factory=dict)
    gates: GateReport | None = None
    published: PublishResult | None = None


@contextmanager
def warehouse(paths: Paths) -> Iterator[duckdb.DuckDBPyConnection]:
    """The working warehouse, opened for writing and closed afterwards."""
    if not paths.warehouse.exists():
        raise FileNotFoundError(
            f"no warehouse at {paths.warehouse}: ingest feeds first (datahub run / datahub demo)"
        )
    con = connect(paths.warehouse)
    try:
        yield con
    finally:
        con.close()


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
    with warehouse(paths) as con:
        return run_models(con, before)


def run_linkage(paths: Paths) -> dict[str, int]:
    """Link persons; the trained model goes to DATAHUB_HOME/linkage/."""
    from datahub.linkage import link_persons

    with warehouse(paths) as con:
        return link_persons(con, model_dir=paths.home / "linkage").stats


def run_mart_models(paths: Paths) -> dict[str, int]:
    """Integrated tables needing person keys, then every mart."""
    before, after = _phases()
    provided = [m.table for m in before] + sorted(LINKAGE_TABLES)
    with warehouse(paths) as con:
        return run_models(con, after, provided=provided)


def check_marts(paths: Paths) -> GateReport:
    """Run the mart suites; raise :class:`MartGateFailed` when one fails."""
    with warehouse(paths) as con:
        report = run_mart_gates(con, results_dir=paths.gx_results / "marts")
    if not report.success:
        raise MartGateFailed(report)
    return report


def publish(paths: Paths, run_id: str | None = None) -> PublishResult:
    """Write the analysts' snapshot (DATAHUB_HOME/published/datahub.duckdb) atomically."""
    with warehouse(paths) as con:
        return publish_snapshot(con, paths.published, run_id=run_id)


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

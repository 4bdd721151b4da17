"""Mart gates: GX suites (``expectations/marts/*.json``) over pandas frames of the marts.

A suite file names the frame it validates with ``frame_sql`` (default
``SELECT * FROM marts.<name>``), so relational rules — every grid rolls up to
exactly one township, rollup totals add up — are checked on small derived
frames. Marts hold no identifiers; results keep no values anyway
(``partial_unexpected_count`` 0). Publishing is refused when a gate fails.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from datahub.config import EXPECTATIONS_DIR

MART_SUITES_DIR = EXPECTATIONS_DIR / "marts"
RESULT_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": 0}
_context: Any = None  # one ephemeral GX context per process (creating one costs seconds)


class MartGateFailed(RuntimeError):
    """At least one mart expectation failed: the snapshot must not be published."""

    def __init__(self, report: GateReport) -> None:
        failed = "; ".join(
            f"{s.suite}: {', '.join(s.failed)}" for s in report.suites if not s.success
        )
        super().__init__(f"mart gates failed — {failed}")
        self.report = report


@dataclass(frozen=True)
class SuiteResult:
    """Outcome of one mart suite."""

    suite: str
    rows: int
    evaluated: int
    failed: tuple[str, ...]

    @property
    def success(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class GateReport:
    """Outcome of all mart suites."""

    suites: tuple[SuiteResult, ...] = field(default_factory=tuple)

    @property
    def success(self) -> bool:
        return all(s.success for s in self.suites)

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "suites": [
                {
                    "suite": s.suite,
                    "rows": s.rows,
                    "evaluated": s.evaluated,
                    "failed": list(s.failed),
                }
                for s in self.suites
            ],
        }


def load_suites(folder: Path = MART_SUITES_DIR) -> list[dict[str, Any]]:
    """Mart suite definitions, sorted by name."""
    suites = []
    for path in sorted(folder.glob("*.json")):
        suite = json.loads(path.read_text(encoding="utf-8"))
        suite.setdefault("name", path.stem)
        suite.setdefault("frame_sql", f"SELECT * FROM marts.{suite.get('mart', path.stem)}")
        suites.append(suite)
    return suites


def _label(exp: dict[str, Any]) -> str:
    kw = exp.get("kwargs", {})
    target = (
        kw.get("column")
        or "/".join(str(kw[k]) for k in ("column_A", "column_B") if k in kw)
        or ",".join(kw.get("column_list", []))
    )
    return f"{exp['type']}({target})" if target else exp["type"]


def preload_gx() -> threading.Thread:
    """Import Great Expectations in a background thread; return the thread.

    The import costs seconds of pure Python; a build starts it first so that it
    overlaps the SQL models and the linkage (DuckDB releases the GIL while it
    works) instead of delaying the mart gates. Joining is optional: an import
    still in flight simply blocks the gates' own ``import`` until it is done.
    """
    thread = threading.Thread(
        target=importlib.import_module, args=("great_expectations",), name="preload-gx", daemon=True
    )
    thread.start()
    return thread


def validate_frame(
    name: str, expectations: list[dict[str, Any]], frame: pd.DataFrame
) -> SuiteResult:
    """Validate one frame with GX (ephemeral context, pandas datasource)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    from datahub.quality.gx_runner import quiet_gx_logging, skip_batch_fingerprint

    global _context
    if _context is None:
        quiet_gx_logging()
        skip_batch_fingerprint()  # a mart frame can be large: no md5 of it per batch
        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        _context = gx.get_context(mode="ephemeral")
        _context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
    ctx = _context
    ds_name = f"marts_{name}"
    if ds_name in [d.name for d in ctx.data_sources.all().values()]:
        ctx.data_sources.delete(ds_name)
    asset = ctx.data_sources.add_pandas(ds_name).add_dataframe_asset(name)
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame}
    )
    suite = gx.ExpectationSuite(
        name=name,
        expectations=[
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj()
            for e in expectations
        ],
    )
    result = batch.validate(suite, result_format=RESULT_FORMAT)
    failed = tuple(
        _label({"type": r.expectation_config.type, "kwargs": dict(r.expectation_config.kwargs)})
        for r in result.results
        if not r.success
    )
    return SuiteResult(name, len(frame), len(result.results), failed)


def run_mart_gates(
    con: duckdb.DuckDBPyConnection, folder: Path = MART_SUITES_DIR, results_dir: Path | None = None
) -> GateReport:
    """Run every mart suite against the warehouse ``con``; write a JSON report when asked."""
    results = []
    for suite in load_suites(folder):
        frame = con.execute(suite["frame_sql"]).df()
        results.append(validate_frame(suite["name"], suite["expectations"], frame))
    report = GateReport(tuple(results))
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / "mart_gates.json").write_text(
            json.dumps(report.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8"
        )
    return report

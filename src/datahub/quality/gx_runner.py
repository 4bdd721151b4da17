"""Run feed suites with Great Expectations 1.x and build Data Docs.

One ephemeral GX context per process (creating a context and importing GX
cost seconds; a validation of a small frame costs ~30 ms). For each feed the
context holds a pandas datasource asset, a whole-dataframe batch definition,
the suite, a ValidationDefinition and a Checkpoint. A large file is validated
chunk by chunk; :class:`FileValidation` sums the per-chunk counts and
re-decides ``success`` over the whole file (``mostly`` included).

Results use ``result_format`` BASIC (the counts we keep; SUMMARY adds value counts
we never store, ~25 % of a large validation) with ``partial_unexpected_count`` 0, so
no cell value reaches validation JSON or Data Docs; suites only ever run on
pseudonymised frames and flag columns anyway.

Data Docs are built once per run (not per file) from the stored result JSON
files by :func:`build_data_docs`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from datahub.quality.checks import expectation_key, failure_mask

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.data_context import AbstractDataContext

RESULT_FORMAT: dict[str, Any] = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
DATASOURCE = "datahub"

_lock = threading.Lock()
_context: AbstractDataContext | None = None
_checkpoints: dict[str, Any] = {}


class QualityMismatch(RuntimeError):
    """GX and the row-reason masks disagree: the quarantine cannot be trusted."""


def quiet_gx_logging() -> None:
    """Silence GX's chatty loggers (Airflow's structlog would print every line)."""
    for name in ("great_expectations", "great_expectations.expectations.registry"):
        logging.getLogger(name).setLevel(logging.ERROR)


def skip_batch_fingerprint() -> None:
    """Stop GX from fingerprinting every validated DataFrame.

    GX's pandas engine md5s ``pd.util.hash_pandas_object(df)`` of every batch
    under ``HASH_THRESHOLD`` (1 GB) only to label it in batch markers — twice
    per ``Batch.validate`` (batch and validator). Measured on a 300 k-row
    frame: 1.6 s of a 2.4 s validation. Our batches are identified by the
    file's sha256 already, so the threshold is set to 0 (GX itself skips the
    fingerprint above the threshold). Raises if a GX upgrade removes the knob,
    so the speed-up cannot silently vanish.
    """
    from great_expectations.execution_engine import pandas_execution_engine as engine

    if not hasattr(engine, "HASH_THRESHOLD"):
        raise RuntimeError("great_expectations no longer has HASH_THRESHOLD; revisit gx_runner")
    engine.HASH_THRESHOLD = 0  # type: ignore[attr-defined]


def _gx_context() -> AbstractDataContext:
    global _context
    if _context is None:
        quiet_gx_logging()
        import great_expectations as gx

        skip_batch_fingerprint()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        ctx.data_sources.add_pandas(DATASOURCE)
        _context = ctx
    return _context


def _expectation_objects(expectations: list[dict[str, Any]]) -> list[Any]:
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    return [
        ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e["meta"]).to_domain_obj()
        for e in expectations
    ]


def _checkpoint(name: str, expectations: list[dict[str, Any]]) -> Any:
    """The cached checkpoint validating ``expectations`` under suite ``name``."""
    with _lock:
        cp = _checkpoints.get(name)
        if cp is not None:
            return cp
        import great_expectations as gx

        ctx = _gx_context()
        ds = ctx.data_sources.get(DATASOURCE)
        asset = ds.add_dataframe_asset(name)  # type: ignore[attr-defined,union-attr]
        bd = asset.add_batch_definition_whole_dataframe("whole_file")
        suite = ctx.suites.add(
            gx.ExpectationSuite(name=name, expectations=_expectation_objects(expectations))
        )
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=bd, suite=suite)
        )
        cp = ctx.checkpoints.add(
            gx.Checkpoint(name=name, validation_definitions=[vd], result_format=RESULT_FORMAT)
        )
        ids = {str(e.id): i for i, e in enumerate(suite.expectations)}
        _checkpoints[name] = (cp, ids)
        return cp, ids


#: Expectations on the frame's shape: their chunk verdicts are AND-ed, not counted.
_TABLE_SHAPE = frozenset({"expect_column_to_exist", "expect_table_columns_to_match_set"})


def _is_table_level(exp: dict[str, Any]) -> bool:
    return exp["type"] == "expect_table_row_count_to_be_between"


def _run(
    name: str, expectations: list[dict[str, Any]], frame: pd.DataFrame, params: dict[str, Any]
) -> list[tuple[int, dict[str, Any]]]:
    """Validate ``frame``; returns (index into ``expectations``, result dict) pairs."""
    cp, ids = _checkpoint(name, expectations)
    (vd,) = cp.validation_definitions
    frame = _categorical_set_columns(frame, expectations)
    # Batch.validate runs the same suite through the same Validator as Checkpoint.run,
    # without the checkpoint's per-run result bookkeeping (~25 % of a small file's call)
    batch = vd.data.get_batch(batch_parameters={"dataframe": frame})
    vr = batch.validate(vd.suite, result_format=RESULT_FORMAT, expectation_parameters=params)
    # plain dicts of the few fields used (to_json_dict() costs ~0.1 s per run)
    return [
        (
            ids[str(r.expectation_config.id)],
            {"success": r.success, "result": r.result, "exception_info": r.exception_info},
        )
        for r in vr.results
    ]


_SET_TYPES = frozenset(
    {"expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"}
)


def _categorical_set_columns(
    frame: pd.DataFrame, expectations: list[dict[str, Any]]
) -> pd.DataFrame:
    """The frame with the text columns of set expectations as pandas categoricals.

    Those columns hold a handful of codes (channels, categories, statuses);
    GX's metrics over a categorical run on its integer codes, which halves a
    large file's validation time (measured: 0.79 → 0.34 CPU-s on 105 k
    incidents). Counts are unchanged: the same values, the same missing cells.
    """
    cols = {
        e["kwargs"]["column"]
        for e in expectations
        if e["type"] in _SET_TYPES and e["kwargs"].get("column") in frame.columns
    }
    text = [
        c for c in cols if pd.api.types.is_string_dtype(frame[c].dtype) or frame[c].dtype == object
    ]
    if not text:
        return frame
    return frame.assign(**{c: frame[c].astype("category") for c in text})


@dataclass
class ExpTotals:
    """Summed result of one expectation over a file's chunks."""

    exp: dict[str, Any]
    element_count: int = 0
    unexpected_count: int = 0
    missing_count: int = 0
    observed_value: Any = None
    exception: str | None = None
    success_table: bool | None = None

    @property
    def success(self) -> bool:
        if self.exception is not None:
            return False
        if self.success_table is not None:
            return self.success_table
        if self.exp["type"] in _TABLE_SHAPE:
            return self.observed_value is not False
        nonmissing = self.element_count - self.missing_count
        mostly = self.exp["kwargs"].get("mostly")
        if mostly is None or nonmissing == 0:
            return self.unexpected_count == 0
        return (1 - self.unexpected_count / nonmissing) >= mostly

    def as_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.exp["type"] == "expect_table_row_count_to_be_between":
            result["observed_value"] = self.observed_value
        elif self.exp["type"] not in _TABLE_SHAPE:
            nonmissing = self.element_count - self.missing_count
            result = {
                "element_count": self.element_count,
                "unexpected_count": self.unexpected_count,
                "unexpected_percent": (100.0 * self.unexpected_count / nonmissing)
                if nonmissing
                else 0.0,
                "missing_count": self.missing_count,
                "partial_unexpected_list": [],
            }
        return {
            "success": self.success,
            "expectation_config": {
                "type": self.exp["type"],
                "kwargs": self.exp["kwargs"],
                "meta": self.exp["meta"],
            },
            "result": result,
            "meta": {},
            "exception_info": {
                "raised_exception": self.exception is not None,
                "exception_message": self.exception,
                "exception_traceback": None,
            },
        }


@dataclass
class FileValidation:
    """Validation of one file, fed chunk by chunk, finished with the row-count check."""

    feed_table: str
    suite: dict[str, Any]
    totals: list[ExpTotals] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.totals = [ExpTotals(e) for e in self.suite["expectations"]]
        self._table_totals = [t for t in self.totals if _is_table_level(t.exp)]
        self._finished = False
        self._shape_checked = False

    def _subset(self, *, table: bool, shape: bool) -> list[ExpTotals]:
        """The expectations of one GX call: with or without row count and frame shape."""
        return [
            t
            for t in self.totals
            if (table or not _is_table_level(t.exp))
            and (shape or t.exp["type"] not in _TABLE_SHAPE)
        ]

    def _validate(
        self, name: str, subset: list[ExpTotals], frame: pd.DataFrame, params: dict[str, Any]
    ) -> list[tuple[ExpTotals, dict[str, Any]]]:
        return [(subset[i], r) for i, r in _run(name, [t.exp for t in subset], frame, params)]

    def add_chunk(
        self,
        frame: pd.DataFrame,
        *,
        whole_file_bounds: tuple[int, int] | None = None,
        row_counts: dict[str, int] | None = None,
        columns: list[str] | None = None,
    ) -> None:
        """Validate one chunk of the validation frame; check GX agrees with the row masks.

        With ``whole_file_bounds`` (min, max rows) the chunk is the whole file:
        the full suite, row count included, runs in one checkpoint call.

        ``columns`` names the validation frame's columns when ``frame`` holds only
        the ones the value expectations read (filtering a wide frame is most of
        GX's time): the frame-shape expectations then run once per file on an
        empty frame with exactly those columns.
        """
        compact = columns is not None and list(frame.columns) != list(columns)
        pairs: list[tuple[ExpTotals, dict[str, Any]]] = []
        if compact and not self._shape_checked:
            shape = [t for t in self.totals if t.exp["type"] in _TABLE_SHAPE]
            empty = pd.DataFrame({c: pd.Series(dtype=object) for c in columns or ()})
            pairs += self._validate(f"{self.feed_table}__shape", shape, empty, {})
            self._shape_checked = True
        suffix = "__values" if compact else ""
        if whole_file_bounds is not None:
            params = {"min_rows": whole_file_bounds[0], "max_rows": whole_file_bounds[1]}
            subset = self._subset(table=True, shape=not compact)
            pairs += self._validate(f"{self.feed_table}__whole{suffix}", subset, frame, params)
            self._finished = True
        else:
            subset = self._subset(table=False, shape=not compact)
            pairs += self._validate(f"{self.feed_table}{suffix}", subset, frame, {})
        for t, r in pairs:
            if _is_table_level(t.exp):
                self._record_table(t, r, *(whole_file_bounds or (0, 0)))
                continue
            info = r.get("exception_info") or {}
            if info.get("raised_exception"):
                t.exception = str(info.get("exception_message") or "GX raised an exception")[:300]
                continue
            res = r.get("result") or {}
            if t.exp["type"] in _TABLE_SHAPE:
                t.observed_value = (
                    bool(r["success"])
                    if t.observed_value is None
                    else (t.observed_value and bool(r["success"]))
                )
                continue
            t.element_count += int(res.get("element_count") or 0)
            t.unexpected_count += int(res.get("unexpected_count") or 0)
            t.missing_count += int(res.get("missing_count") or 0)
            if t.exp["meta"].get("level") == "row":
                expected = (row_counts or {}).get(expectation_key(t.exp))
                if expected is None:
                    mask = failure_mask(t.exp, frame)
                    expected = int(mask.sum()) if mask is not None else None
                if expected is not None and expected != int(res.get("unexpected_count") or 0):
                    raise QualityMismatch(
                        f"{self.feed_table}: {t.exp['type']} on {t.exp['kwargs'].get('column') or t.exp['kwargs']}"
                        f" — GX counts {res.get('unexpected_count')} unexpected rows, the row check {expected}"
                    )

    def finish(self, rows: int, min_rows: int, max_rows: int) -> None:
        """Run the table-level expectations over the file's total row count."""
        if not self._table_totals or self._finished:
            return
        params = {"min_rows": min_rows, "max_rows": max_rows}
        # the row-count expectation needs a frame of the file's length, not its data
        frame = pd.DataFrame({"_row": pd.Series(0, index=pd.RangeIndex(rows), dtype="int8")})
        for t, r in self._validate(f"{self.feed_table}__table", self._table_totals, frame, params):
            self._record_table(t, r, min_rows, max_rows)

    @staticmethod
    def _record_table(t: ExpTotals, r: dict[str, Any], min_rows: int, max_rows: int) -> None:
        t.observed_value = (r.get("result") or {}).get("observed_value")
        t.success_table = bool(r["success"])
        t.exp = {
            **t.exp,
            "kwargs": {**t.exp["kwargs"], "min_value": min_rows, "max_value": max_rows},
        }

    @property
    def failed_batch_expectations(self) -> list[ExpTotals]:
        return [t for t in self.totals if t.exp["meta"].get("level") == "batch" and not t.success]

    def to_json(self, *, batch_id: str, feed_key: str, run_time: dt.datetime) -> dict[str, Any]:
        """A GX-shaped suite validation result (what Data Docs render)."""
        results = [t.as_result() for t in self.totals]
        ok = sum(1 for r in results if r["success"])
        return {
            "success": all(
                r["success"]
                for r in results
                if r["expectation_config"]["meta"].get("level") != "warning"
            ),
            "results": results,
            "suite_name": self.feed_table,
            "suite_parameters": {},
            "statistics": {
                "evaluated_expectations": len(results),
                "successful_expectations": ok,
                "unsuccessful_expectations": len(results) - ok,
                "success_percent": 100.0 * ok / len(results) if results else 100.0,
            },
            "meta": {
                "batch_id": batch_id,
                "feed": feed_key,
                "run_id": {"run_name": batch_id, "run_time": run_time.isoformat()},
                "active_batch_definition": {
                    "datasource_name": DATASOURCE,
                    "data_connector_name": "fluent",
                    "data_asset_name": self.feed_table,
                    "batch_identifiers": {"batch_id": batch_id},
                },
                "great_expectations_version": _gx_version(),
                "batch_success": not self.failed_batch_expectations,
            },
        }


def _gx_version() -> str:
    from importlib.metadata import version

    return version("great-expectations")


def docs_selection(results_dir: Path) -> list[Path]:
    """Validation results worth a Data Docs page: the newest per feed plus every unsuccessful one.

    Rendering costs ~0.2 s a page and daily feeds make hundreds of batches; the
    counts of every batch stay queryable in ``audit.validation_results``.
    """
    newest: dict[str, tuple[str, Path]] = {}
    failed: list[Path] = []
    for p in results_dir.glob("*.json") if results_dir.is_dir() else ():
        d = json.loads(p.read_text(encoding="utf-8"))
        run_time = str(d["meta"]["run_id"]["run_time"])
        feed = str(d["suite_name"])
        if feed not in newest or newest[feed][0] < run_time:
            newest[feed] = (run_time, p)
        if not d["meta"].get("batch_success", True):
            failed.append(p)
    return sorted({p for _, p in newest.values()} | set(failed))


def build_data_docs(results_dir: Path, docs_dir: Path, suites: list[dict[str, Any]]) -> Path:
    """Render Data Docs (suites + :func:`docs_selection`) into ``docs_dir``; returns index.html."""
    quiet_gx_logging()
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    docs_dir.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    ctx.add_data_docs_site(
        "datahub",
        {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    for s in suites:
        ctx.suites.add(
            gx.ExpectationSuite(
                name=s["name"],
                expectations=_expectation_objects(s["expectations"]),
                meta=s.get("meta"),
            )
        )
    store = ctx.validation_results_store
    if docs_dir.exists():
        shutil.rmtree(docs_dir)  # the selection changes between runs: no stale pages
    docs_dir.mkdir(parents=True)
    for p in docs_selection(results_dir):
        d = json.loads(p.read_text(encoding="utf-8"))
        evrs = [
            ExpectationValidationResult(
                success=r["success"],
                expectation_config=ExpectationConfiguration(**r["expectation_config"]),
                result=r["result"],
                exception_info=r["exception_info"],
            )
            for r in d["results"]
        ]
        meta = d["meta"]
        vr = ExpectationSuiteValidationResult(
            success=d["success"],
            results=evrs,
            suite_name=d["suite_name"],
            statistics=d["statistics"],
            meta={k: v for k, v in meta.items() if k != "run_id"},
        )
        run_id = RunIdentifier(
            run_name=meta["run_id"]["run_name"], run_time=meta["run_id"]["run_time"]
        )
        key = ValidationResultIdentifier(
            ExpectationSuiteIdentifier(d["suite_name"]), run_id, meta["batch_id"]
        )
        store.set(key, vr)
    ctx.build_data_docs()
    return docs_dir / "index.html"

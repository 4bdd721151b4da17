"""SQL model runner: ``warehouse/models/<schema>/<table>.sql`` → ``<schema>.<table>``.

Each file holds one ``SELECT`` (CTEs named source → renamed → final) and a
header of ``--`` directives::

    -- comment: 一分钟派警率 / share dispatched within 60 s      (table comment)
    -- column dispatch_rate_60s: 一分钟派警率 / share dispatched within 60 s
    -- depends_on: integrated.person_xref                        (optional, extra)

Models run layer by layer (staging → integrated → marts), and inside a layer
in dependency order: references to ``staging.x`` / ``integrated.x`` /
``marts.x`` in the SQL are dependencies, plus any ``depends_on``. Tables that
Python steps produce (the person index of :mod:`datahub.linkage`) are passed
as ``provided`` so that the caller can run the models in two phases around
the linkage step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from datahub.warehouse.db import sql_literal

MODELS_DIR = Path(__file__).with_name("models")
LAYERS: tuple[str, ...] = ("staging", "integrated", "marts")
#: Layers whose every table and column must carry a (bilingual) comment.
COMMENTED_LAYERS: frozenset[str] = frozenset({"marts"})

_REF = re.compile(r"\b(staging|integrated|marts)\.([a-z_][a-z0-9_]*)\b", re.IGNORECASE)
_DIRECTIVE = re.compile(r"^--\s*(comment|depends_on|column\s+([a-z_][a-z0-9_]*))\s*:\s*(.*)$")


class ModelError(RuntimeError):
    """A model file is malformed, its dependencies cannot be met, or its SQL failed."""


@dataclass(frozen=True)
class Model:
    """One SQL model file."""

    layer: str
    name: str
    sql: str
    path: Path
    comment: str | None = None
    column_comments: dict[str, str] = field(default_factory=dict)
    depends_on: frozenset[str] = frozenset()

    @property
    def table(self) -> str:
        """Qualified table name, e.g. ``marts.mart_dispatch``."""
        return f"{self.layer}.{self.name}"


def parse_model(path: Path, layer: str) -> Model:
    """Read one model file: its SQL, header directives and referenced tables."""
    text = path.read_text(encoding="utf-8")
    comment: str | None = None
    columns: dict[str, str] = {}
    extra: set[str] = set()
    for line in text.splitlines():
        m = _DIRECTIVE.match(line.strip())
        if not m:
            continue
        kind, column, value = m.group(1), m.group(2), m.group(3).strip()
        if kind == "comment":
            comment = value
        elif kind == "depends_on":
            extra.update(v.strip() for v in value.split(",") if v.strip())
        elif column:
            columns[column] = value
    body = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("--"))
    refs = {f"{s.lower()}.{t.lower()}" for s, t in _REF.findall(body)}
    name = path.stem
    refs.discard(f"{layer}.{name}")
    return Model(layer, name, text, path, comment, columns, frozenset(refs | extra))


def load_models(root: Path = MODELS_DIR) -> list[Model]:
    """All model files below ``root``, grouped by layer folder."""
    models: list[Model] = []
    for layer in LAYERS:
        for path in sorted((root / layer).glob("*.sql")):
            models.append(parse_model(path, layer))
    return models


def plan(models: Sequence[Model], provided: Iterable[str] = ()) -> list[Model]:
    """Order models: by layer, then topologically by dependencies.

    Raises ``ModelError`` for a dependency that is neither a model nor provided,
    or a cycle.
    """
    by_table = {m.table: m for m in models}
    available = set(provided)
    for m in models:
        for dep in m.depends_on:
            if dep not in by_table and dep not in available and not dep.startswith("raw."):
                raise ModelError(f"{m.path.name}: depends on unknown table {dep}")
    ordered: list[Model] = []
    done: set[str] = set()
    for layer in LAYERS:
        pending = [m for m in models if m.layer == layer]
        while pending:
            ready = [
                m
                for m in pending
                if all(d in done or d in available or d not in by_table for d in m.depends_on)
            ]
            if not ready:
                names = ", ".join(m.table for m in pending)
                raise ModelError(f"dependency cycle or later-layer dependency among: {names}")
            for m in ready:
                ordered.append(m)
                done.add(m.table)
            pending = [m for m in pending if m.table not in done]
    return ordered


def split_around(
    models: Sequence[Model], produced_by_python: Iterable[str]
) -> tuple[list[Model], list[Model]]:
    """Split models into those runnable before a Python step and those needing its output.

    A model goes into the second list when it depends, directly or through
    other models, on one of ``produced_by_python``.
    """
    later: set[str] = set(produced_by_python)
    changed = True
    while changed:
        changed = False
        for m in models:
            if m.table not in later and m.depends_on & later:
                later.add(m.table)
                changed = True
    before = [m for m in models if m.table not in later]
    after = [m for m in models if m.table in later]
    return before, after


def _check_comments(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """Every column of a commented layer's table has a comment in the model header."""
    if model.layer not in COMMENTED_LAYERS:
        return
    if not model.comment:
        raise ModelError(f"{model.path.name}: missing '-- comment:' header")
    cols = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
            "ORDER BY column_index",
            [model.layer, model.name],
        ).fetchall()
    ]
    missing = [c for c in cols if c not in model.column_comments]
    if missing:
        raise ModelError(f"{model.path.name}: columns without '-- column' comment: {missing}")


def run_model(con: duckdb.DuckDBPyConnection, model: Model) -> int:
    """Materialise one model as a table (replacing it) and apply its comments; return its rows."""
    body = "\n".join(ln for ln in model.sql.splitlines() if not ln.strip().startswith("--"))
    body = body.strip().rstrip(";")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {model.layer}")
    try:
        con.execute(f"CREATE OR REPLACE TABLE {model.table} AS\n{body}")
    except duckdb.Error as exc:
        # DuckDB messages quote SQL and names, never data values.
        raise ModelError(f"model {model.table} ({model.path.name}) failed: {exc}") from exc
    _check_comments(con, model)
    if model.comment:
        con.execute(f"COMMENT ON TABLE {model.table} IS {sql_literal(model.comment)}")
    for column, text in model.column_comments.items():
        con.execute(f"COMMENT ON COLUMN {model.table}.{column} IS {sql_literal(text)}")
    row = con.execute(f"SELECT count(*) FROM {model.table}").fetchone()
    return int(row[0]) if row else 0


def run_models(
    con: duckdb.DuckDBPyConnection, models: Sequence[Model], provided: Iterable[str] = ()
) -> dict[str, int]:
    """Run models in plan order inside one transaction; return row counts per table.

    All or nothing: when one model fails, the previous tables stay as they were.
    """
    ordered = plan(models, provided)
    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for model in ordered:
            counts[model.table] = run_model(con, model)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return counts

"""The linkage step: records → clusters → stable keys → index and cross-reference.

Everything stays in DuckDB (the warehouse connection plus an attached in-memory
scratch database); Python only sees the edges that touch records without an ID
token and one row per cluster for the keys.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from datahub.linkage.clustering import cluster
from datahub.linkage.keys import assign_keys
from datahub.linkage.model import save_model, score_pairs
from datahub.linkage.settings import LinkageSettings
from datahub.linkage.sql import one_row
from datahub.linkage.store import PersonIndexStore

XREF_COLUMNS = (
    "unique_id",
    "feed",
    "record_key",
    "role",
    "person_key",
    "match_probability",
    "link_rule",
    "source_file",
    "source_row",
)


@dataclass(frozen=True)
class LinkResult:
    """Outcome of one linkage run (no identifiers: counts, the trained model, the run id)."""

    stats: dict[str, int]
    model: dict[str, Any]
    run_id: str


def _assign(con: duckdb.DuckDBPyConnection, clusters: str, keys: dict[int, str], out: str) -> None:
    """``out``: every record of ``clusters`` with its cluster's person_key."""
    table = pa.table(
        {
            "cluster_rid": pa.array(list(keys), pa.int64()),
            "person_key": pa.array(list(keys.values()), pa.string()),
        }
    )
    con.register("_link_keys", table)
    try:
        con.execute(
            f"CREATE TABLE {out} AS SELECT c.rid, k.person_key, c.match_probability, c.link_rule "
            f"FROM {clusters} AS c JOIN _link_keys AS k USING (cluster_rid)"
        )
    finally:
        con.unregister("_link_keys")


def _stats(con: duckdb.DuckDBPyConnection, assigned: str) -> dict[str, int]:
    row = one_row(con, f"SELECT count(*), count(DISTINCT person_key) FROM {assigned}")
    rules = con.execute(
        f"SELECT link_rule, count(*) FROM {assigned} GROUP BY link_rule ORDER BY count(*) DESC"
    ).fetchall()
    return {
        "records": int(row[0]),
        "persons": int(row[1]),
        **{f"rule_{rule}": int(n) for rule, n in rules},
    }


def link_persons(
    con: duckdb.DuckDBPyConnection,
    model_dir: Path | None = None,
    settings: LinkageSettings | None = None,
    run_id: str | None = None,
) -> LinkResult:
    """Link ``integrated.person_records`` and write ``integrated.person_index`` / ``person_xref``.

    The trained Splink model is saved as ``<model_dir>/model-<run_id>.json``
    when ``model_dir`` is given (DATAHUB_HOME/linkage in the pipeline).
    """
    settings = settings or LinkageSettings.load()
    run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    store = PersonIndexStore(con)
    with store.memory_limit(settings.duckdb_memory_limit), store.scratch() as scratch:
        store.load_records(scratch)
        scored = score_pairs(con, scratch, settings)
        clusters = f"{scratch}.link_clusters"
        cluster(
            con, f"{scratch}.link_records", scored.edges, settings.threshold_match_probability,
            clusters,
        )  # fmt: skip
        keys = assign_keys(
            store.overlaps(scratch, clusters), store.seeds(scratch, clusters), store.taken_keys()
        )
        assigned = f"{scratch}.link_assigned"
        _assign(con, clusters, keys, assigned)
        del keys
        stats = {**_stats(con, assigned), "candidate_pairs": scored.candidate_pairs}
        store.write(scratch, assigned, run_id)
    if model_dir is not None and scored.model:
        save_model(scored.model, model_dir / f"model-{run_id}.json")
    return LinkResult(stats, scored.model, run_id)

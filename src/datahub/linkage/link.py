"""The linkage step: records → clusters → stable keys → index and cross-reference."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from datahub.linkage.clustering import cluster
from datahub.linkage.keys import assign_keys
from datahub.linkage.model import save_model, score_pairs
from datahub.linkage.records import check_frame, usable
from datahub.linkage.settings import LinkageSettings
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
    """Outcome of one linkage run (no identifiers, only counts and frames of tokens/keys)."""

    xref: pd.DataFrame
    index: pd.DataFrame
    model: dict[str, Any]
    run_id: str

    @property
    def stats(self) -> dict[str, int]:
        rules = self.xref["link_rule"].value_counts().to_dict()
        return {
            "records": len(self.xref),
            "persons": len(self.index),
            **{f"rule_{k}": int(v) for k, v in rules.items()},
        }


def _department(feed: pd.Series) -> pd.Series:
    return feed.str.split(".").str[0]


def _mode(values: pd.Series) -> object:
    """Most frequent non-null value (ties: the smallest), or NA."""
    counts = values.dropna().value_counts()
    if counts.empty:
        return pd.NA
    return sorted(counts[counts == counts.max()].index)[0]


def _group_mode(keys: pd.Series, values: pd.Series, index: pd.Index) -> pd.Series:
    """:func:`_mode` of ``values`` per key, vectorised (a per-group lambda costs seconds)."""
    df = pd.DataFrame({"k": keys.to_numpy(), "v": values.to_numpy()}).dropna(subset=["v"])
    counts = df.groupby(["k", "v"], sort=False).size().rename("n").reset_index()
    counts = counts.sort_values(
        ["k", "n", "v"], ascending=[True, False, True], kind="mergesort"
    ).drop_duplicates("k")
    out = pd.Series(counts["v"].to_numpy(), index=counts["k"].to_numpy(), dtype=values.dtype)
    return out.reindex(index)


def build_index(records: pd.DataFrame, xref: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """One row per person_key: departments present, record counts, ID token and quasi-identifiers."""
    joined = xref[["unique_id", "person_key"]].merge(records, on="unique_id")
    joined["department"] = _department(joined["feed"])
    g = joined.groupby("person_key")
    size = g.size()
    index = pd.DataFrame(
        {
            "n_records": size,
            "n_feeds": g["feed"].nunique(),
            "n_departments": g["department"].nunique(),
            "id_token": g["id_token"].first(),
            "birth_year": _group_mode(joined["person_key"], joined["birth_year"], size.index),
            "sex": _group_mode(joined["person_key"], joined["sex"], size.index),
        }
    )
    present = pd.crosstab(joined["person_key"], joined["department"]) > 0
    for dept in ("police", "government", "social_security", "community"):
        index[f"in_{dept}"] = present.get(dept, False)
    index["birth_year"] = index["birth_year"].astype("Int64")
    index["linked_run"] = run_id
    return index.reset_index()


def link_frame(
    records: pd.DataFrame,
    settings: LinkageSettings,
    previous: Mapping[str, str] | None = None,
    issued: set[str] | None = None,
    run_id: str | None = None,
) -> LinkResult:
    """Link a person-record frame (pure apart from Splink's in-memory DuckDB)."""
    check_frame(records)
    run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    records = records.copy()
    records["unique_id"] = records["unique_id"].astype("str")
    records["usable"] = usable(records)
    scored = score_pairs(records[records["usable"]], settings)
    clusters = cluster(records, scored.edges, settings.threshold_match_probability).frame
    keys = assign_keys(clusters, previous or {}, issued or set())
    clusters["person_key"] = clusters["cluster_id"].map(keys)
    clusters = clusters.astype({"unique_id": "str", "cluster_id": "str", "link_rule": "str"})
    xref = clusters.merge(
        records[["unique_id", "feed", "record_key", "role", "source_file", "source_row"]],
        on="unique_id",
    )[list(XREF_COLUMNS)]
    xref["linked_run"] = run_id
    index = build_index(records, xref, run_id)
    return LinkResult(xref, index, scored.model, run_id)


def link_persons(
    con: duckdb.DuckDBPyConnection,
    model_dir: Path | None = None,
    settings: LinkageSettings | None = None,
) -> LinkResult:
    """Link ``integrated.person_records`` and write ``integrated.person_index`` / ``person_xref``.

    The trained Splink model is saved as ``<model_dir>/model-<run_id>.json``
    when ``model_dir`` is given (DATAHUB_HOME/linkage in the pipeline).
    """
    store = PersonIndexStore(con)
    result = link_frame(
        store.records(),
        settings or LinkageSettings.load(),
        previous=store.previous_keys(),
        issued=store.issued_keys(),
    )
    store.write(result.xref, result.index, result.run_id)
    if model_dir is not None and result.model:
        save_model(result.model, model_dir / f"model-{result.run_id}.json")
    return result

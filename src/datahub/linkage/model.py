"""The probabilistic model: Splink 5 on an in-memory DuckDB, over tokens only."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from datahub.linkage.records import TOKEN_COLUMNS
from datahub.linkage.settings import LinkageSettings, splink_settings
from datahub.linkage.u_values import u_from_id_contrasts
from datahub.warehouse.db import memory

EDGE_COLUMNS = ("unique_id_l", "unique_id_r", "match_probability", "match_key")


@dataclass(frozen=True)
class ScoredPairs:
    """Scored candidate pairs and the trained model (Splink settings dict)."""

    edges: pd.DataFrame
    model: dict[str, Any]


def _quiet_splink() -> None:
    # Splink logs each SQL step at INFO and warns about every level EM cannot observe
    # (expected: the blocking column's own levels); the trained model JSON records it all.
    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)


def score_pairs(records: pd.DataFrame, settings: LinkageSettings) -> ScoredPairs:
    """Train (u from different-ID pairs, m by EM) and score blocked pairs of ``records``.

    ``records`` needs ``unique_id`` and the token columns; nothing else is
    handed to Splink.
    """
    from splink import DuckDBAPI, Linker, block_on

    _quiet_splink()
    frame = records[["unique_id", *TOKEN_COLUMNS]].copy()
    frame["birth_year"] = frame["birth_year"].astype("Int64")
    if len(frame) < 2:
        return ScoredPairs(pd.DataFrame(columns=list(EDGE_COLUMNS)), {})
    con = memory(threads=2)
    try:
        db_api = DuckDBAPI(connection=con)
        sdf = db_api.register(frame, table_name="person_records")
        u = u_from_id_contrasts(frame)
        linker = Linker(sdf, splink_settings(settings, u), log_level=logging.ERROR)
        if u is None:  # too few ID tokens to count non-matches: sample random pairs
            linker.training.estimate_u_using_random_sampling(
                max_pairs=settings.u_max_pairs, seed=settings.seed
            )
        for rule in settings.training_rules:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*rule), record_sample_proportion=1.0
            )
        predictions = linker.inference.predict(threshold_match_probability=0.5)
        edges = predictions.as_pandas_dataframe()
        model = linker.misc.save_model_to_json()
    finally:
        con.close()
    edges = edges[[c for c in EDGE_COLUMNS if c in edges.columns]].copy()
    edges["match_probability"] = edges["match_probability"].astype(float)
    return ScoredPairs(edges, model)


def save_model(model: dict[str, Any], path: Path) -> None:
    """Write trained Splink parameters (JSON) for audit and reuse."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model, indent=2, ensure_ascii=False), encoding="utf-8")

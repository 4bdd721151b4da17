"""The probabilistic model: Splink 5 over tokens, inside the linkage's scratch database.

Splink reads the usable records of the scratch view ``link_records`` (integer
``rid`` as unique id, token columns only), is trained there (u counted on pairs
of different ID tokens, m by EM capped at ``em_max_pairs`` pairs) and scores
candidate pairs that *we* block: only pairs that can change a cluster, i.e. with
at least one record lacking an ID token (two records with the same ID token are
already one person, two different ID tokens never are) and not two persons of
one event. Every table it makes stays in the scratch database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from datahub.linkage.records import TOKEN_COLUMNS
from datahub.linkage.settings import LinkageSettings, splink_settings
from datahub.linkage.sql import one_row
from datahub.linkage.u_values import u_from_id_contrasts

#: The view of usable records handed to Splink (in the scratch database).
SPLINK_INPUT = "link_splink_input"
#: ID-carrying records, one row per ID token and token profile.
ID_PROFILES = "link_id_profiles"
#: Candidate pairs for predict (rid pairs, left < right).
BLOCKED_PAIRS = "link_blocked_pairs"


@dataclass(frozen=True)
class ScoredPairs:
    """Scored pairs at or above the threshold (a table in scratch) and the trained model."""

    edges: str | None  # qualified table: unique_id_l, unique_id_r (rids), match_probability
    model: dict[str, Any]
    candidate_pairs: int


def _quiet_splink() -> None:
    # Splink logs each SQL step at INFO and warns about every level EM cannot observe
    # (expected: the blocking column's own levels); the trained model JSON records it all.
    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def _default_catalog(con: duckdb.DuckDBPyConnection, catalog: str) -> Iterator[None]:
    """Make ``catalog`` the default one, so that Splink's unqualified tables land there."""
    row = one_row(con, "SELECT current_database(), current_schema()")
    con.execute(f"USE {catalog}.main")
    try:
        yield
    finally:
        con.execute(f'USE "{row[0]}"."{row[1]}"')


def id_profiles_sql(records: str) -> str:
    """ID-carrying records, one row per (ID token, token profile) with its multiplicity ``n``.

    Records of one ID token with equal tokens score alike against any other
    record, so one of them (the smallest rid) stands for all. Its ``event_key``
    is kept only when every record it stands for has that same event (then a
    pair with a record of that event is excluded for all of them); otherwise
    it is NULL (some record it stands for may pair).
    """
    cols = ", ".join(TOKEN_COLUMNS)
    return (
        f"SELECT min(rid) AS rid, {cols}, count(*) AS n, "
        "CASE WHEN count(event_key) = count(*) AND min(event_key) = max(event_key) "
        "THEN min(event_key) END AS event_key "
        f"FROM {records} WHERE id_token IS NOT NULL GROUP BY {cols}"
    )


def blocked_pairs_sql(records: str, profiles: str, rules: tuple[tuple[str, ...], ...]) -> str:
    """Candidate rid pairs for predict: any blocking rule, at least one side without ID.

    Usable records lacking an ID token are joined to each other and to the ID
    profiles (:func:`id_profiles_sql`), so the join never enumerates the many
    pairs of records that both carry an ID token, nor repeats of one profile.
    Pairs of one event are left out. ``match_key`` is the first rule that found
    the pair, as in Splink.
    """
    cols = ", ".join(TOKEN_COLUMNS)
    other_event = "(a.event_key IS NULL OR b.event_key IS NULL OR a.event_key <> b.event_key)"
    parts = []
    for k, rule in enumerate(rules):
        on = " AND ".join(f"a.{c} = b.{c}" for c in rule)
        parts.append(
            f"SELECT '{k}' AS match_key, a.rid AS l, b.rid AS r FROM noid AS a JOIN noid AS b "
            f"ON {on} AND a.rid < b.rid WHERE {other_event}"
        )
        parts.append(
            f"SELECT '{k}', least(a.rid, b.rid), greatest(a.rid, b.rid) "
            f"FROM noid AS a JOIN {profiles} AS b ON {on} WHERE {other_event}"
        )
    union = "\n    UNION ALL\n".join(parts)
    return f"""
        with noid as (
            select rid, event_key, {cols} from {records} where usable and id_token is null
        ),
        pairs as (
            {union}
        )
        select min(match_key) as match_key, l as join_key_l, r as join_key_r
        from pairs group by l, r
    """


def score_pairs(
    con: duckdb.DuckDBPyConnection, scratch: str, settings: LinkageSettings
) -> ScoredPairs:
    """Train the model and score candidate pairs of ``{scratch}.link_records``.

    ``link_records`` has ``rid``, ``usable``, ``event_key`` and the token
    columns. Returns the qualified name of the predictions table (pairs with
    ``match_probability`` at or above the threshold) and the model.
    """
    from splink import DuckDBAPI, Linker, block_on

    _quiet_splink()
    records = f"{scratch}.link_records"
    cols = ", ".join(TOKEN_COLUMNS)
    con.execute(
        f"CREATE OR REPLACE VIEW {scratch}.{SPLINK_INPUT} AS "
        f"SELECT rid AS unique_id, {cols} FROM {records} WHERE usable"
    )
    if one_row(con, f"SELECT count(*) FROM {scratch}.{SPLINK_INPUT}")[0] < 2:
        return ScoredPairs(None, {}, 0)
    profiles = f"{scratch}.{ID_PROFILES}"
    con.execute(f"CREATE OR REPLACE TABLE {profiles} AS {id_profiles_sql(records)}")
    con.execute(
        f"CREATE OR REPLACE TABLE {scratch}.{BLOCKED_PAIRS} AS "
        + blocked_pairs_sql(records, profiles, settings.blocking_rules)
    )
    n_pairs = int(one_row(con, f"SELECT count(*) FROM {scratch}.{BLOCKED_PAIRS}")[0])
    u = u_from_id_contrasts(con, profiles, weight="n")
    with _default_catalog(con, scratch):
        db_api = DuckDBAPI(connection=con)
        linker = Linker(
            db_api.register(SPLINK_INPUT), splink_settings(settings, u), log_level=logging.ERROR
        )
        if u is None:  # too few ID tokens to count non-matches: sample random pairs
            linker.training.estimate_u_using_random_sampling(
                max_pairs=settings.u_max_pairs, seed=settings.seed
            )
        for rule in settings.training_rules:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*rule),
                estimate_without_term_frequencies=settings.em_without_tf,
                max_pairs=settings.em_max_pairs,
            )
        model = linker.misc.save_model_to_json()
        if n_pairs == 0:
            return ScoredPairs(None, model, 0)
        linker.table_management.register_blocked_pairs_for_predict(db_api.register(BLOCKED_PAIRS))
        predictions = linker.inference.predict(
            threshold_match_probability=settings.threshold_match_probability
        )
    return ScoredPairs(f"{scratch}.{predictions.physical_name}", model, n_pairs)


def save_model(model: dict[str, Any], path: Path) -> None:
    """Write trained Splink parameters (JSON) for audit and reuse."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model, indent=2, ensure_ascii=False), encoding="utf-8")

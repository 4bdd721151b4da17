"""Parts of the linkage on small hand-made tables in a real (in-memory) DuckDB.

Clustering rules, the vectorised clustering against the edge-by-edge rule,
stable keys, candidate pairs, u counting, the person index and pairwise scoring.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from datahub.linkage.clustering import (
    RULE_EXACT_ID,
    RULE_PROBABILISTIC,
    RULE_SINGLETON,
    RULE_UNUSABLE,
    _apply_in_order,
    _union_edges,
    cluster,
    components,
)
from datahub.linkage.keys import assign_keys
from datahub.linkage.model import blocked_pairs_sql, id_profiles_sql
from datahub.linkage.records import RECORD_COLUMNS
from datahub.linkage.score import score_linkage
from datahub.linkage.store import PersonIndexStore

THRESHOLD = 0.99


Rows = Sequence[Mapping[str, object]]


class Linked(NamedTuple):
    cluster: int
    probability: float | None
    rule: str


def _frame(rows: Rows) -> pd.DataFrame:
    frame = pd.DataFrame([{c: None for c in RECORD_COLUMNS} | dict(r) for r in rows])
    frame["source_row"] = range(1, len(frame) + 1)
    frame["feed"] = frame["feed"].fillna("police.incidents")
    frame["record_key"] = frame["unique_id"]
    frame["source_file"] = "f.csv"
    return frame


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    c.execute("CREATE SCHEMA integrated")
    yield c
    c.close()


def _load(con: duckdb.DuckDBPyConnection, rows: Rows) -> dict[str, int]:
    """integrated.person_records from rows; return unique_id → rid (rowid)."""
    con.register("_rows", _frame(rows))
    con.execute(
        "CREATE TABLE integrated.person_records AS SELECT * REPLACE "
        "(birth_year::INTEGER AS birth_year, source_row::BIGINT AS source_row) FROM _rows"
    )
    con.unregister("_rows")
    return {
        u: r
        for u, r in con.execute("SELECT unique_id, rowid FROM integrated.person_records").fetchall()
    }


def _cluster(
    con: duckdb.DuckDBPyConnection, rows: Rows, edges: list[tuple[str, str, float]]
) -> dict[str, Linked]:
    """Cluster rows with the given scored edges; one row per unique_id."""
    rid = _load(con, rows)
    store = PersonIndexStore(con)
    with store.scratch() as scratch:
        store.load_records(scratch)
        edge_frame = pd.DataFrame(
            [(rid[a], rid[b], p) for a, b, p in edges],
            columns=["unique_id_l", "unique_id_r", "match_probability"],
        ).astype({"unique_id_l": "int64", "unique_id_r": "int64", "match_probability": "float64"})
        con.register("_edges", edge_frame)
        con.execute(f"CREATE TABLE {scratch}.edges AS SELECT * FROM _edges")
        con.unregister("_edges")
        cluster(con, f"{scratch}.link_records", f"{scratch}.edges", THRESHOLD, f"{scratch}.out")
        out = con.execute(
            f"SELECT r.unique_id, o.cluster_rid, o.match_probability, o.link_rule "
            f"FROM {scratch}.out AS o JOIN {scratch}.link_records AS r USING (rid)"
        ).fetchall()
    return {u: Linked(c, p, rule) for u, c, p, rule in out}


def test_exact_id_tokens_link_without_edges(con: duckdb.DuckDBPyConnection) -> None:
    out = _cluster(
        con,
        [
            {"unique_id": "a", "id_token": "I1"},
            {"unique_id": "b", "id_token": "I1"},
            {"unique_id": "c", "id_token": "I2"},
            {"unique_id": "d", "name_token": "N"},  # a name alone: unusable
        ],
        [],
    )
    assert out["a"].cluster == out["b"].cluster != out["c"].cluster
    assert out["a"].rule == RULE_EXACT_ID
    assert out["a"].probability == 1.0
    assert out["c"].rule == RULE_SINGLETON
    assert out["d"].rule == RULE_UNUSABLE


def test_probabilistic_edge_never_joins_two_id_tokens(con: duckdb.DuckDBPyConnection) -> None:
    out = _cluster(
        con,
        [
            {"unique_id": "a", "id_token": "I1", "phone_token": "P"},
            {"unique_id": "b", "phone_token": "P"},
            {"unique_id": "c", "id_token": "I2", "phone_token": "P"},
        ],
        # b is more like a than c: the weaker b–c edge must be rejected
        [("a", "b", 0.999), ("b", "c", 0.995)],
    )
    assert out["a"].cluster == out["b"].cluster
    assert out["c"].cluster != out["a"].cluster
    assert out["b"].rule == RULE_PROBABILISTIC
    assert out["b"].probability == pytest.approx(0.999)
    assert out["c"].rule == RULE_SINGLETON


def test_edges_below_threshold_or_within_one_event_are_ignored(
    con: duckdb.DuckDBPyConnection,
) -> None:
    out = _cluster(
        con,
        [
            {"unique_id": "a", "phone_token": "P", "event_key": "E1"},
            {"unique_id": "b", "phone_token": "P", "event_key": "E1"},
            {"unique_id": "c", "phone_token": "Q"},
        ],
        [("a", "b", 0.9999), ("a", "c", 0.5)],
    )
    assert len({v.cluster for v in out.values()}) == 3
    assert {v.rule for v in out.values()} == {RULE_SINGLETON}


def test_an_edge_to_any_record_of_an_id_joins_the_whole_id(con: duckdb.DuckDBPyConnection) -> None:
    out = _cluster(
        con,
        [
            {"unique_id": "a1", "id_token": "I1", "phone_token": "P"},
            {"unique_id": "a2", "id_token": "I1"},
            {"unique_id": "x", "phone_token": "P"},
            {"unique_id": "y", "phone_token": "P"},
        ],
        [("a1", "x", 0.995), ("x", "y", 0.999)],
    )
    assert len({v.cluster for v in out.values()}) == 1
    assert out["x"].probability == pytest.approx(0.999)
    assert out["y"].rule == RULE_PROBABILISTIC
    assert out["a2"].rule == RULE_EXACT_ID


def test_components_give_the_smallest_node_even_along_a_long_chain() -> None:
    left = np.array([9, 8, 7, 6, 5, 4, 3, 20], dtype=np.int64)
    right = np.array([8, 7, 6, 5, 4, 3, 2, 21], dtype=np.int64)
    nodes, comp = components(left, right)
    got = dict(zip(nodes.tolist(), comp.tolist(), strict=True))
    assert all(got[n] == 2 for n in range(2, 10))
    assert got[20] == got[21] == 20


def _random_edges(rng: random.Random) -> pa.Table:
    """Ordered node edges of a random graph where some nodes carry ID tokens."""
    n_nodes = rng.randint(2, 12)
    tokened = {n for n in range(n_nodes) if rng.random() < 0.4}
    pairs = {tuple(sorted(rng.sample(range(n_nodes), 2))) for _ in range(rng.randint(1, 20))}
    edges = sorted(((rng.choice([0.99, 0.995, 0.999, 1.0]), a, b) for a, b in pairs), reverse=True)
    return pa.table(
        {
            "node_l": pa.array([a for _, a, _ in edges], pa.int64()),
            "node_r": pa.array([b for _, _, b in edges], pa.int64()),
            "tok_l": pa.array([a in tokened for _, a, _ in edges]),
            "tok_r": pa.array([b in tokened for _, _, b in edges]),
            "p": pa.array([p for p, _, _ in edges], pa.float64()),
        }
    )


def test_vectorised_clustering_matches_the_edge_by_edge_rule() -> None:
    rng = random.Random(7)
    conflicted = 0
    for _ in range(300):
        edges = _random_edges(rng)
        roots, best = _apply_in_order(edges)
        got = _union_edges(edges).to_pydict()
        for node, root, b, joined in zip(
            got["node"], got["root"], got["best"], got["joined"], strict=True
        ):
            assert root == roots[node]
            assert (b if b == b and b is not None else 0.0) == best.get(node, 0.0)
            assert joined == (sum(1 for r in roots.values() if r == root) > 1)
        nodes, comp = components(
            edges.column("node_l").to_numpy(), edges.column("node_r").to_numpy()
        )
        conflicted += any(roots[n] != c for n, c in zip(nodes.tolist(), comp.tolist(), strict=True))
    assert conflicted > 30  # the refusal path was exercised, not only clean components


def test_keys_carry_forward_by_largest_overlap() -> None:
    first = assign_keys([], {"a": "a", "c": "c"})
    # a new record d joins c's person; a new person e appears; cluster ids change
    overlaps = [("b", first["a"], 2), ("d", first["c"], 1)]
    second = assign_keys(overlaps, {"b": "a", "d": "c", "e": "e"}, taken=first.values())
    assert second["b"] == first["a"]
    assert second["d"] == first["c"]
    assert second["e"] not in first.values()


def test_split_person_keeps_key_on_the_larger_part() -> None:
    first = assign_keys([], {"a": "a"})
    # a, b, c were one person; now {a, b} and {c}
    second = assign_keys(
        [("a", first["a"], 2), ("c", first["a"], 1)], {"a": "a", "c": "c"}, taken=first.values()
    )
    assert second["a"] == first["a"]
    assert second["c"] != first["a"]


def test_candidate_pairs_touch_a_record_without_id_and_skip_one_event(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rid = _load(
        con,
        [
            {"unique_id": "a1", "id_token": "I1", "phone_token": "P"},
            {"unique_id": "a2", "id_token": "I1", "phone_token": "P"},  # same profile as a1
            {"unique_id": "c", "id_token": "I2", "phone_token": "P"},
            {"unique_id": "x", "phone_token": "P", "event_key": "E"},
            {"unique_id": "y", "phone_token": "P", "event_key": "E"},  # x's event
            {"unique_id": "z", "phone_token": "P"},
            {"unique_id": "n", "name_token": "N"},  # unusable
        ],
    )
    name = {r: u for u, r in rid.items()}
    store = PersonIndexStore(con)
    with store.scratch() as scratch:
        store.load_records(scratch)
        records = f"{scratch}.link_records"
        con.execute(f"CREATE TABLE {scratch}.p AS {id_profiles_sql(records)}")
        weights = dict(
            con.execute(f"SELECT id_token, sum(n) FROM {scratch}.p GROUP BY 1").fetchall()
        )
        pairs = con.execute(
            blocked_pairs_sql(records, f"{scratch}.p", (("phone_token",), ("name_token",)))
        ).fetchall()
    got = {frozenset((name[left], name[right])) for _k, left, right in pairs}
    assert weights == {"I1": 2, "I2": 1}
    assert got == {
        frozenset(p)
        for p in [("a1", "x"), ("a1", "y"), ("a1", "z"), ("c", "x"), ("c", "y"), ("c", "z"),
                  ("x", "z"), ("y", "z")]
    }  # fmt: skip
    assert all(left < right for _k, left, right in pairs)


def test_u_values_count_only_pairs_of_different_id_tokens(con: duckdb.DuckDBPyConnection) -> None:
    from datahub.linkage.u_values import U_FLOOR, u_from_id_contrasts

    # 60 persons with two records each sharing a phone; phones are unique per person except
    # persons 0 and 1, who share one: exactly 4 cross-person pairs out of C(120,2) - 60
    rows = []
    for p in range(60):
        phone = "shared" if p < 2 else f"ph{p}"
        for k in range(2):
            rows.append({"unique_id": f"{p}-{k}", "id_token": f"I{p}", "phone_token": phone})
    _load(con, rows)
    u = u_from_id_contrasts(con, "integrated.person_records")
    assert u is not None
    total = 120 * 119 / 2 - 60
    assert u["phone_token"][0] == pytest.approx(4 / total)
    assert u["id_token"][0] == U_FLOOR
    assert sum(u["phone_token"]) == pytest.approx(1.0)
    # the same records counted once per (ID, profile) with their multiplicity
    con.execute(
        "CREATE TABLE w AS SELECT id_token, phone_token, NULL::VARCHAR AS name_token, "
        "NULL::VARCHAR AS name_pinyin_token, NULL::VARCHAR AS name_dob_token, "
        "NULL::VARCHAR AS address_code, NULL::VARCHAR AS village_code, NULL::INTEGER AS birth_year, "
        "NULL::VARCHAR AS sex, count(*) AS n FROM integrated.person_records GROUP BY ALL"
    )
    assert u_from_id_contrasts(con, "w", weight="n") == u
    con.execute("CREATE TABLE few AS SELECT * FROM integrated.person_records LIMIT 20")
    assert u_from_id_contrasts(con, "few") is None  # too few persons: Splink samples instead


def test_index_counts_departments_and_takes_the_most_frequent_values(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rid = _load(
        con,
        [
            {"unique_id": "a", "id_token": "I1", "birth_year": 1980, "sex": "F",
             "feed": "police.incidents"},
            {"unique_id": "b", "id_token": "I1", "birth_year": 1981, "sex": "F",
             "feed": "police.incident_persons"},
            {"unique_id": "c", "birth_year": 1981, "feed": "social_security.insured"},
            {"unique_id": "d", "birth_year": 1980, "sex": "M", "feed": "community.visits"},
        ],
    )  # fmt: skip
    store = PersonIndexStore(con)
    with store.scratch() as scratch:
        store.load_records(scratch)
        con.execute(
            f"CREATE TABLE {scratch}.assigned AS SELECT rid, 'PK1' AS person_key, "
            "1.0 AS match_probability, 'exact_id_token' AS link_rule "
            f"FROM {scratch}.link_records"
        )
        store.write(scratch, f"{scratch}.assigned", "run1")
    index = con.execute("SELECT * FROM integrated.person_index").df().iloc[0]
    assert (index["n_records"], index["n_feeds"], index["n_departments"]) == (4, 4, 3)
    assert index["id_token"] == "I1"
    assert index["birth_year"] == 1980  # 1980 and 1981 twice each: the smaller
    assert index["sex"] == "F"
    assert bool(index["in_police"]) and bool(index["in_community"])
    assert not bool(index["in_government"])
    xref = con.execute("SELECT unique_id, person_key, linked_run FROM integrated.person_xref").df()
    assert sorted(xref["unique_id"]) == sorted(rid)
    assert set(xref["linked_run"]) == {"run1"}
    registry = con.execute("SELECT person_key, first_run FROM integrated.person_key_registry")
    assert registry.fetchall() == [("PK1", "run1")]


def test_score_counts_pairs_splits_and_merges() -> None:
    xref = pd.DataFrame(
        {
            "source_file": ["f.csv"] * 5,
            "source_row": [1, 2, 3, 4, 5],
            "role": ["r"] * 5,
            "person_key": ["K1", "K1", "K2", "K3", "K3"],
            "link_rule": ["x"] * 5,
        }
    )
    truth = pd.DataFrame(
        {
            "source_file": ["f.csv"] * 5,
            "source_row": [1, 2, 3, 4, 5],
            "role": ["r"] * 5,
            "person_id": ["p1", "p1", "p1", "p2", "p3"],
        }
    )
    s = score_linkage(xref, truth)
    assert (s.true_pairs, s.predicted_pairs, s.correct_pairs) == (3, 2, 1)
    assert s.precision == pytest.approx(0.5)
    assert s.recall == pytest.approx(1 / 3)
    assert s.split_share == pytest.approx(1 / 3)
    assert s.merged_share == pytest.approx(2 / 3)


def test_memory_limit_applies_while_linking_unless_the_caller_set_one(
    con: duckdb.DuckDBPyConnection,
) -> None:
    def limit() -> str:
        return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])

    default = limit()
    store = PersonIndexStore(con)
    with store.memory_limit("500MB"):
        assert limit() == "476.8 MiB"
    assert limit() == default
    con.execute("SET memory_limit = '3GB'")
    custom = limit()
    with store.memory_limit("500MB"):
        assert limit() == custom  # the caller's own limit stands
    assert limit() == custom

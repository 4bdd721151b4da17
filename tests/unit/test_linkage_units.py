"""Pure parts of the linkage: clustering rules, stable keys, pairwise scoring."""

from __future__ import annotations

import pandas as pd
import pytest

from datahub.linkage.clustering import RULE_EXACT_ID, RULE_PROBABILISTIC, RULE_SINGLETON, cluster
from datahub.linkage.keys import assign_keys
from datahub.linkage.records import RECORD_COLUMNS, usable
from datahub.linkage.score import score_linkage


def _records(rows: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame([{c: None for c in RECORD_COLUMNS} | r for r in rows])
    frame["usable"] = usable(frame)
    return frame


def _edges(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["unique_id_l", "unique_id_r", "match_probability"])


def test_exact_id_tokens_link_without_edges() -> None:
    recs = _records(
        [
            {"unique_id": "a", "id_token": "I1"},
            {"unique_id": "b", "id_token": "I1"},
            {"unique_id": "c", "id_token": "I2"},
        ]
    )
    out = cluster(recs, _edges([]), 0.99).frame.set_index("unique_id")
    assert out.loc["a", "cluster_id"] == out.loc["b", "cluster_id"] != out.loc["c", "cluster_id"]
    assert out.loc["a", "link_rule"] == RULE_EXACT_ID
    assert out.loc["c", "link_rule"] == RULE_SINGLETON


def test_probabilistic_edge_never_joins_two_id_tokens() -> None:
    recs = _records(
        [
            {"unique_id": "a", "id_token": "I1", "phone_token": "P"},
            {"unique_id": "b", "phone_token": "P"},
            {"unique_id": "c", "id_token": "I2", "phone_token": "P"},
        ]
    )
    # b is more like a than c: the weaker b–c edge must be rejected
    out = cluster(recs, _edges([("a", "b", 0.999), ("b", "c", 0.995)]), 0.99).frame
    out = out.set_index("unique_id")
    assert out.loc["a", "cluster_id"] == out.loc["b", "cluster_id"]
    assert out.loc["c", "cluster_id"] != out.loc["a", "cluster_id"]
    assert out.loc["b", "link_rule"] == RULE_PROBABILISTIC
    assert out.loc["b", "match_probability"] == pytest.approx(0.999)


def test_edges_below_threshold_or_within_one_event_are_ignored() -> None:
    recs = _records(
        [
            {"unique_id": "a", "phone_token": "P", "event_key": "E1"},
            {"unique_id": "b", "phone_token": "P", "event_key": "E1"},
            {"unique_id": "c", "phone_token": "Q"},
        ]
    )
    out = cluster(recs, _edges([("a", "b", 0.9999), ("a", "c", 0.5)]), 0.99).frame
    assert out["cluster_id"].nunique() == 3


def test_keys_carry_forward_by_largest_overlap() -> None:
    before = pd.DataFrame({"unique_id": ["a", "b", "c"], "cluster_id": ["a", "a", "c"]})
    first = assign_keys(before, {})
    previous = {u: first[c] for u, c in before.itertuples(index=False)}
    # a new record d joins c's person; a new person e appears; cluster ids change
    after = pd.DataFrame(
        {"unique_id": ["a", "b", "c", "d", "e"], "cluster_id": ["b", "b", "d", "d", "e"]}
    )
    second = assign_keys(after, previous, issued=set(first.values()))
    assert second["b"] == first["a"]
    assert second["d"] == first["c"]
    assert second["e"] not in first.values()


def test_split_person_keeps_key_on_the_larger_part() -> None:
    before = pd.DataFrame({"unique_id": ["a", "b", "c"], "cluster_id": ["a", "a", "a"]})
    first = assign_keys(before, {})
    previous = {u: first["a"] for u in "abc"}
    after = pd.DataFrame({"unique_id": ["a", "b", "c"], "cluster_id": ["a", "a", "c"]})
    second = assign_keys(after, previous, issued={first["a"]})
    assert second["a"] == first["a"]
    assert second["c"] != first["a"]


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


def test_u_values_count_only_pairs_of_different_id_tokens() -> None:
    from datahub.linkage.u_values import U_FLOOR, u_from_id_contrasts

    # 60 persons with two records each sharing a phone; phones are unique per person except
    # persons 0 and 1, who share one: exactly 4 cross-person pairs out of C(120,2) - 60
    rows = []
    for p in range(60):
        phone = "shared" if p < 2 else f"ph{p}"
        for k in range(2):
            rows.append({"unique_id": f"{p}-{k}", "id_token": f"I{p}", "phone_token": phone})
    recs = _records(rows)
    u = u_from_id_contrasts(recs)
    assert u is not None
    total = 120 * 119 / 2 - 60
    assert u["phone_token"][0] == pytest.approx(4 / total)
    assert u["id_token"][0] == U_FLOOR
    assert sum(u["phone_token"]) == pytest.approx(1.0)
    assert u_from_id_contrasts(recs.head(20)) is None  # too few persons: Splink samples instead

"""Clustering: exact ID-token rule first, then probabilistic edges under a threshold.

Pure functions over frames. Clusters never hold two different ID tokens: a
probabilistic edge that would join them is rejected (two valid, different
resident IDs are two people, whatever the names and phones say).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

RULE_EXACT_ID = "exact_id_token"
RULE_PROBABILISTIC = "probabilistic"
RULE_SINGLETON = "singleton"
RULE_UNUSABLE = "no_usable_identifier"


class _UnionFind:
    """Union-find that remembers the one ID token a component may hold."""

    def __init__(self, n: int, id_tokens: list[str | None]) -> None:
        self.parent = list(range(n))
        self.token: list[str | None] = list(id_tokens)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> bool:
        """Join the components of a and b unless their ID tokens conflict."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        ta, tb = self.token[ra], self.token[rb]
        if ta is not None and tb is not None and ta != tb:
            return False
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.token[ra] = ta if ta is not None else tb
        return True


@dataclass(frozen=True)
class Clusters:
    """Cluster of every record plus how it was linked."""

    frame: pd.DataFrame  # unique_id, cluster_id, match_probability, link_rule


def cluster(records: pd.DataFrame, edges: pd.DataFrame, threshold: float) -> Clusters:
    """Cluster records by exact ID token, then by scored edges at ``threshold``.

    ``edges`` has ``unique_id_l``, ``unique_id_r``, ``match_probability``; edges
    below the threshold, between records of the same event, or touching a
    record without usable identifiers are ignored. Strongest edges are applied
    first so that an ID conflict rejects the weaker link.
    """
    uids = records["unique_id"].tolist()
    index = {u: i for i, u in enumerate(uids)}
    id_tokens = [t if isinstance(t, str) else None for t in records["id_token"].tolist()]
    uf = _UnionFind(len(uids), id_tokens)

    by_token: dict[str, int] = {}
    for i, tok in enumerate(id_tokens):
        if tok is None:
            continue
        if tok in by_token:
            uf.union(by_token[tok], i)
        else:
            by_token[tok] = i

    usable = records["usable"].tolist() if "usable" in records else [True] * len(uids)
    events = records["event_key"].tolist()
    best = [0.0] * len(uids)
    strong = edges[edges["match_probability"] >= threshold].sort_values(
        ["match_probability", "unique_id_l", "unique_id_r"], ascending=[False, True, True]
    )
    for left, right, prob in strong[["unique_id_l", "unique_id_r", "match_probability"]].itertuples(
        index=False
    ):
        a, b = index.get(left), index.get(right)
        if a is None or b is None or not usable[a] or not usable[b]:
            continue
        if isinstance(events[a], str) and events[a] == events[b]:
            continue
        if uf.union(a, b):
            best[a] = max(best[a], float(prob))
            best[b] = max(best[b], float(prob))

    roots = [uf.find(i) for i in range(len(uids))]
    size: dict[int, int] = {}
    for r in roots:
        size[r] = size.get(r, 0) + 1
    token_count: dict[str, int] = {}
    for tok in id_tokens:
        if tok is not None:
            token_count[tok] = token_count.get(tok, 0) + 1

    probs: list[float | None] = []
    rules: list[str] = []
    for i, root in enumerate(roots):
        tok = id_tokens[i]
        if tok is not None and token_count[tok] > 1:
            rules.append(RULE_EXACT_ID)
            probs.append(1.0)
        elif best[i] > 0:
            rules.append(RULE_PROBABILISTIC)
            probs.append(best[i])
        elif not usable[i]:
            rules.append(RULE_UNUSABLE)
            probs.append(None)
        else:
            rules.append(RULE_SINGLETON if size[root] == 1 else RULE_PROBABILISTIC)
            probs.append(None)
    frame = pd.DataFrame(
        {
            "unique_id": uids,
            "cluster_id": [uids[r] for r in roots],
            "match_probability": pd.array(probs, dtype="Float64"),
            "link_rule": rules,
        }
    )
    return Clusters(frame)

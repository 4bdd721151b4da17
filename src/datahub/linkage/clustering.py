"""Clustering: exact ID-token rule first, then probabilistic edges under a threshold.

The exact rule runs in SQL: records sharing an ID token form one *node* (named
by its smallest ``rid``); every other record is a node of its own. Scored edges
are reduced to node pairs (strongest edge per pair) and applied strongest first
by a small union-find in Python that never joins two nodes carrying ID tokens
(two valid, different resident IDs are two people, whatever the names and phones
say). Only edges touching a record without ID token reach Python, so its work
grows with the unidentified records, not with all records.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

RULE_EXACT_ID = "exact_id_token"
RULE_PROBABILISTIC = "probabilistic"
RULE_SINGLETON = "singleton"
RULE_UNUSABLE = "no_usable_identifier"
#: Decimals kept of a match probability (far above the model's precision, far below float noise).
PROBABILITY_DIGITS = 12


class _UnionFind:
    """Union-find over node ids that remembers the one ID node a component may hold."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.token: dict[int, int | None] = {}

    def add(self, node: int, has_token: bool) -> None:
        if node not in self.parent:
            self.parent[node] = node
            self.token[node] = node if has_token else None

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def union(self, a: int, b: int) -> bool:
        """Join the components of a and b unless both hold (different) ID tokens."""
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


def _node_edges_sql(records: str, edges: str, threshold: float) -> str:
    """Edges at or above ``threshold`` between usable records of different events, as node pairs.

    Edges between two ID-carrying records are dropped: the same token is one
    node already, two different tokens never join. Of several edges between the
    same two nodes only the strongest can matter (a later one finds the nodes
    joined, or refused for good), so one per node pair is kept. Probabilities are
    rounded to ``PROBABILITY_DIGITS`` decimals first: EM's parallel float sums
    leave last-bit noise between runs, which must not reorder edges of equal weight.
    """
    return f"""
        with source as (
            select e.unique_id_l as l, e.unique_id_r as r,
                   round(e.match_probability, {PROBABILITY_DIGITS}) as p,
                   a.node as node_l, b.node as node_r,
                   a.id_token is not null as tok_l, b.id_token is not null as tok_r
            from {edges} as e
            join {records} as a on a.rid = e.unique_id_l
            join {records} as b on b.rid = e.unique_id_r
            where round(e.match_probability, {PROBABILITY_DIGITS}) >= {threshold!r}
              and a.usable and b.usable
              and not (a.id_token is not null and b.id_token is not null)
              and (a.event_key is null or b.event_key is null or a.event_key <> b.event_key)
        ),
        final as (
            select * from source
            qualify row_number() over (
                partition by least(node_l, node_r), greatest(node_l, node_r)
                order by p desc, l, r
            ) = 1
        )
        select node_l, node_r, tok_l, tok_r, p from final order by p desc, l, r
    """


def components(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of an edge list: (nodes, smallest node of each node's component).

    Min-label propagation with pointer jumping, vectorised: every label is a
    node of the same component no larger than the node itself, so the fixed
    point gives each node its component's smallest node.
    """
    nodes, label, _a, _b = _components(left, right)
    return nodes, nodes[label]


def _components(
    left: np.ndarray, right: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(nodes, component label as a position in ``nodes``, positions of each edge's two ends).

    The positions come with the sort, so callers need no second search.
    """
    nodes, inverse = np.unique(np.concatenate([left, right]), return_inverse=True)
    a, b = inverse[: len(left)], inverse[len(left) :]
    label = np.arange(len(nodes))
    while True:
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]
        if np.array_equal(new, label):
            return nodes, label, a, b
        label = new


def _apply_in_order(table: pa.Table) -> tuple[dict[int, int], dict[int, float]]:
    """The sequential rule over ordered node edges: (node → root, node → strongest applied edge)."""
    uf = _UnionFind()
    best: dict[int, float] = {}
    cols = [table.column(c).to_pylist() for c in ("node_l", "node_r", "tok_l", "tok_r", "p")]
    for a, b, ta, tb, p in zip(*cols, strict=True):
        uf.add(a, ta)
        uf.add(b, tb)
        if uf.union(a, b):
            if p > best.get(a, 0.0):
                best[a] = p
            if p > best.get(b, 0.0):
                best[b] = p
    return {n: uf.find(n) for n in uf.parent}, best


def _union_edges(edges: pa.Table) -> pa.Table:
    """Apply node edges strongest first, never joining two ID nodes.

    Returns every touched node with its root (smallest node of its cluster),
    the strongest edge applied to it (None if none) and whether its cluster
    holds more than this node. A component of the edge graph with at most one
    ID node never meets a refusal, so it is its own cluster and every edge in
    it applies; only the rare components holding two or more ID nodes go
    through the sequential union-find, edge by edge in order.
    """
    left = edges.column("node_l").to_numpy()
    right = edges.column("node_r").to_numpy()
    p = edges.column("p").to_numpy()
    nodes, comp_index, a, b = _components(left, right)
    comp = nodes[comp_index]
    has_token = np.zeros(len(nodes), dtype=bool)
    has_token[a[edges.column("tok_l").to_numpy(zero_copy_only=False)]] = True
    has_token[b[edges.column("tok_r").to_numpy(zero_copy_only=False)]] = True
    tokens_in_comp = np.bincount(comp_index, weights=has_token, minlength=len(nodes))
    conflicted = tokens_in_comp[comp_index] > 1  # per node

    root = comp.copy()
    best = np.zeros(len(nodes))
    np.maximum.at(best, a, p)
    np.maximum.at(best, b, p)
    joined = np.ones(len(nodes), dtype=bool)  # a touched node of a clean component has an edge
    if conflicted.any():
        mask = conflicted[a]  # both ends share the component
        roots, applied = _apply_in_order(edges.filter(pa.array(mask)))
        idx = np.flatnonzero(conflicted)
        sub_root = np.array([roots[int(n)] for n in nodes[idx]], dtype=nodes.dtype)
        root[idx] = sub_root
        best[idx] = [applied.get(int(n), 0.0) for n in nodes[idx]]
        sizes = np.unique(sub_root, return_counts=True)
        big = set(sizes[0][sizes[1] > 1].tolist())
        joined[idx] = [int(r) in big for r in sub_root]
    return pa.table(
        {
            "node": pa.array(nodes, pa.int64()),
            "root": pa.array(root, pa.int64()),
            "best": pa.array(np.where(best > 0, best, np.nan), pa.float64(), from_pandas=True),
            "joined": pa.array(joined, pa.bool_()),
        }
    )


def cluster(
    con: duckdb.DuckDBPyConnection,
    records: str,
    edges: str | None,
    threshold: float,
    out: str,
) -> None:
    """Write table ``out`` (rid, cluster_rid, match_probability, link_rule) for every record.

    ``records`` has ``rid`` (unique integer), ``id_token``,
    ``usable`` and ``event_key``; ``edges`` (or None) has ``unique_id_l``,
    ``unique_id_r`` (rids) and ``match_probability``. ``cluster_rid`` is the
    smallest rid of the cluster.
    """
    nodes = f"{out}__nodes"
    con.execute(
        f"""
        create or replace table {nodes} as
        select rid, id_token, usable, event_key,
               case when id_token is null then rid
                    else min(rid) over (partition by id_token) end as node,
               id_token is not null and count(*) over (partition by id_token) > 1 as exact
        from {records}
        """
    )
    if edges is not None:
        node_edges = con.sql(_node_edges_sql(nodes, edges, threshold)).to_arrow_table()
    else:
        node_edges = pa.table(
            {
                "node_l": pa.array([], pa.int64()),
                "node_r": pa.array([], pa.int64()),
                "tok_l": pa.array([], pa.bool_()),
                "tok_r": pa.array([], pa.bool_()),
                "p": pa.array([], pa.float64()),
            }
        )
    unions = _union_edges(node_edges)
    del node_edges
    con.register("_link_unions", unions)
    try:
        con.execute(
            f"""
            create or replace table {out} as
            with source as (
                select n.rid, n.usable, n.exact, coalesce(u.root, n.node) as cluster_rid,
                       case when n.node = n.rid then u.best end as best,
                       coalesce(u.joined, false) as joined
                from {nodes} as n
                left join _link_unions as u on u.node = n.node
            ),
            final as (
                -- a record that is neither exact nor joined is a node, and a cluster, of one
                select rid, cluster_rid,
                    case when exact then 1.0 when best > 0 then best end as match_probability,
                    case when exact then '{RULE_EXACT_ID}'
                         when best > 0 then '{RULE_PROBABILISTIC}'
                         when not usable then '{RULE_UNUSABLE}'
                         when joined then '{RULE_PROBABILISTIC}'
                         else '{RULE_SINGLETON}' end as link_rule
                from source
            )
            select * from final
            """
        )
    finally:
        con.unregister("_link_unions")
        con.execute(f"drop table if exists {nodes}")

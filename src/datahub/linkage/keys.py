"""Stable person keys: carry earlier keys forward by largest record overlap."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import pandas as pd


def _fresh_key(seed: str, taken: set[str]) -> str:
    """A new key derived from the cluster's smallest record id, avoiding taken keys."""
    salt = 0
    while True:
        digest = hashlib.sha256(f"{seed}#{salt}".encode()).hexdigest()[:16].upper()
        key = f"P{digest}"
        if key not in taken:
            return key
        salt += 1


def assign_keys(
    clusters: pd.DataFrame,
    previous: Mapping[str, str],
    issued: Iterable[str] = (),
) -> dict[str, str]:
    """Map each ``cluster_id`` to a ``person_key``.

    ``clusters`` has ``unique_id`` and ``cluster_id``; ``previous`` maps the
    unique_ids of the last run to their person_key; ``issued`` lists every key
    ever handed out (never re-used for another person). Overlaps are matched
    greedily, largest first, each earlier key to at most one cluster; ties are
    broken by key and cluster id so that reruns are deterministic.
    """
    overlap: dict[tuple[str, str], int] = {}
    for uid, cid in clusters[["unique_id", "cluster_id"]].itertuples(index=False):
        old = previous.get(uid)
        if old is not None:
            overlap[(cid, old)] = overlap.get((cid, old), 0) + 1
    ranked = sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0][1], kv[0][0]))
    result: dict[str, str] = {}
    used: set[str] = set()
    for (cid, old), _n in ranked:
        if cid in result or old in used:
            continue
        result[cid] = old
        used.add(old)
    taken = set(issued) | set(previous.values()) | used
    seeds = clusters.groupby("cluster_id")["unique_id"].min()
    for cid, seed in seeds.sort_index().items():
        if cid not in result:
            key = _fresh_key(str(seed), taken)
            result[str(cid)] = key
            taken.add(key)
    return result

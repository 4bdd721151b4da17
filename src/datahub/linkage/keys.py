"""Stable person keys: carry earlier keys forward by largest record overlap."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

C = TypeVar("C", bound=Hashable)


def fresh_key(seed: str, taken: set[str]) -> str:
    """A new key derived from the cluster's smallest record id, avoiding taken keys."""
    salt = 0
    while True:
        digest = hashlib.sha256(f"{seed}#{salt}".encode()).hexdigest()[:16].upper()
        key = f"P{digest}"
        if key not in taken:
            return key
        salt += 1


def assign_keys(
    overlaps: Iterable[tuple[C, str, int]],
    seeds: Mapping[C, str],
    taken: Iterable[str] = (),
) -> dict[C, str]:
    """Map each cluster to a ``person_key``.

    ``overlaps`` lists (cluster, earlier key, number of the cluster's records
    that had that key in the last run); ``seeds`` maps every cluster to its
    smallest unique_id; ``taken`` lists every key ever handed out (never re-used
    for another person). Overlaps are matched greedily, largest first, each
    earlier key to at most one cluster; ties are broken by key and cluster so
    that reruns are deterministic. Clusters left over get fresh keys, in seed
    order.
    """
    ranked = sorted(overlaps, key=lambda o: (-o[2], o[1], o[0]))
    result: dict[C, str] = {}
    used: set[str] = set()
    for cid, old, _n in ranked:
        if cid in result or old in used:
            continue
        result[cid] = old
        used.add(old)
    unavailable = set(taken) | used
    for cid, seed in sorted(seeds.items(), key=lambda kv: kv[1]):
        if cid not in result:
            key = fresh_key(seed, unavailable)
            result[cid] = key
            unavailable.add(key)
    return result

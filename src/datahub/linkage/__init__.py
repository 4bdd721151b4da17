"""Cross-department person linkage over tokens (Splink 5 on DuckDB).

1. deterministic: records with the same ID token are one person;
2. probabilistic: a Splink model (u counted on pairs of different ID tokens,
   m by EM) scores blocked pairs that touch a record without ID token (phone,
   name-pinyin + address, name + birth date, name-pinyin + community);
3. clustering at a threshold, never joining two different ID tokens;
4. stable ``person_key``: earlier keys carried forward by largest overlap.

All in DuckDB (an in-memory scratch database attached to the warehouse).
Public API: :func:`link_persons` (warehouse → person_index/person_xref) and
:func:`datahub.linkage.score.score_linkage`.
"""

from __future__ import annotations

from datahub.linkage.link import LinkResult, link_persons

__all__ = ["LinkResult", "link_persons"]

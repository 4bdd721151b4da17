"""u probabilities from pairs known to be different persons.

Splink's random-sampling estimate of u assumes random pairs are non-matches;
in a small town (or a small test set) a person has many records and random
pairs often match, which inflates u and drowns real links. Pairs of records
with two *different* valid ID tokens are certainly different persons, so u is
counted on them: for a comparison level, the share of such pairs (both values
present) that fall into the level. Counting uses group sizes, never a self-join.
"""

from __future__ import annotations

import pandas as pd

#: Smallest u handed to Splink (a level never seen among non-matches is not impossible).
U_FLOOR = 1e-7
#: Fewer distinct ID tokens than this: too little evidence, let Splink sample instead.
MIN_PERSONS = 50


def _c2(n: pd.Series) -> float:
    return float((n * (n - 1) / 2).sum())


def _equal_pairs(frame: pd.DataFrame, cols: list[str]) -> float:
    """Pairs with equal (non-null) ``cols`` but different ID tokens."""
    sub = frame.dropna(subset=cols)
    if sub.empty:
        return 0.0
    return _c2(sub.groupby(cols).size()) - _c2(sub.groupby(["id_token", *cols]).size())


def _total_pairs(frame: pd.DataFrame, col: str) -> float:
    """Pairs with ``col`` present on both sides and different ID tokens."""
    sub = frame.dropna(subset=[col])
    return _c2(pd.Series([len(sub)])) - _c2(sub.groupby("id_token").size())


def _levels(equal: list[float], total: float) -> list[float]:
    """u per non-null level (nested exact levels first, then 'else')."""
    out = []
    previous = 0.0
    for e in equal:
        out.append(max((e - previous) / total, U_FLOOR))
        previous = e
    out.append(max(1.0 - sum(out), U_FLOOR))
    return out


def u_from_id_contrasts(records: pd.DataFrame) -> dict[str, list[float]] | None:
    """u per comparison (levels in settings order, null level excluded), or None if too few IDs."""
    frame = records[records["id_token"].notna()]
    if frame["id_token"].nunique() < MIN_PERSONS:
        return None
    u: dict[str, list[float]] = {}
    t = _total_pairs(frame, "id_token")
    u["id_token"] = [U_FLOOR, 1.0 - U_FLOOR]
    t = _total_pairs(frame, "name_pinyin_token")
    if t > 0:
        u["name"] = _levels(
            [_equal_pairs(frame, ["name_token"]), _equal_pairs(frame, ["name_pinyin_token"])], t
        )
    t = _total_pairs(frame, "address_code")
    if t > 0:
        u["address"] = _levels(
            [_equal_pairs(frame, ["address_code"]), _equal_pairs(frame, ["village_code"])], t
        )
    for col in ("phone_token", "name_dob_token", "birth_year", "sex"):
        t = _total_pairs(frame, col)
        if t > 0:
            u[col] = _levels([_equal_pairs(frame, [col])], t)
    return u

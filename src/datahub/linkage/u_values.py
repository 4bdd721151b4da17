"""u probabilities from pairs known to be different persons.

Splink's random-sampling estimate of u assumes random pairs are non-matches;
in a small town (or a small test set) a person has many records and random
pairs often match, which inflates u and drowns real links. Pairs of records
with two *different* valid ID tokens are certainly different persons, so u is
counted on them: for a comparison level, the share of such pairs (both values
present) that fall into the level. Counting uses group sizes in DuckDB, never a
self-join.
"""

from __future__ import annotations

import duckdb

from datahub.linkage.sql import one_row

#: Smallest u handed to Splink (a level never seen among non-matches is not impossible).
U_FLOOR = 1e-7
#: Fewer distinct ID tokens than this: too little evidence, let Splink sample instead.
MIN_PERSONS = 50


class _Counter:
    """Pair counts over the records of ``table`` that carry an ID token.

    A row stands for ``weight`` identical records (a column name, or 1).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str, weight: str) -> None:
        self._con = con
        self._table = table
        self._weight = weight

    def _c2(self, cols: list[str], present: list[str]) -> float:
        """Sum of C(n, 2) over groups of ``cols``, records with every ``present`` column set."""
        where = " AND ".join(f"{c} IS NOT NULL" for c in ["id_token", *present])
        group = ", ".join(cols) if cols else "true"
        row = one_row(
            self._con,
            f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM "
            f"(SELECT sum({self._weight})::DOUBLE AS n FROM {self._table} WHERE {where} GROUP BY {group})",
        )
        return float(row[0])

    def equal_pairs(self, cols: list[str]) -> float:
        """Pairs with equal (non-null) ``cols`` but different ID tokens."""
        return self._c2(cols, cols) - self._c2(["id_token", *cols], cols)

    def total_pairs(self, col: str) -> float:
        """Pairs with ``col`` present on both sides and different ID tokens."""
        return self._c2([], [col]) - self._c2(["id_token"], [col])

    def persons(self) -> int:
        return int(one_row(self._con, f"SELECT count(DISTINCT id_token) FROM {self._table}")[0])


def _levels(equal: list[float], total: float) -> list[float]:
    """u per non-null level (nested exact levels first, then 'else')."""
    out = []
    previous = 0.0
    for e in equal:
        out.append(max((e - previous) / total, U_FLOOR))
        previous = e
    out.append(max(1.0 - sum(out), U_FLOOR))
    return out


def u_from_id_contrasts(
    con: duckdb.DuckDBPyConnection, table: str, weight: str = "1"
) -> dict[str, list[float]] | None:
    """u per comparison (levels in settings order, null level excluded), or None if too few IDs.

    ``table`` (a table or view visible to ``con``) has the token columns; each
    row counts as ``weight`` records (a column of ``table``; default one), so
    that identical records may be counted once with their multiplicity.
    """
    count = _Counter(con, table, weight)
    if count.persons() < MIN_PERSONS:
        return None
    u: dict[str, list[float]] = {"id_token": [U_FLOOR, 1.0 - U_FLOOR]}
    t = count.total_pairs("name_pinyin_token")
    if t > 0:
        u["name"] = _levels(
            [count.equal_pairs(["name_token"]), count.equal_pairs(["name_pinyin_token"])], t
        )
    t = count.total_pairs("address_code")
    if t > 0:
        u["address"] = _levels(
            [count.equal_pairs(["address_code"]), count.equal_pairs(["village_code"])], t
        )
    for col in ("phone_token", "name_dob_token", "birth_year", "sex"):
        t = count.total_pairs(col)
        if t > 0:
            u[col] = _levels([count.equal_pairs([col])], t)
    return u

"""Row checks as DuckDB SQL: the set-based twin of :mod:`.checks`.

:func:`mask_sql` turns a row-level expectation of a feed's suite into the SQL
condition of the rows GX counts as unexpected — the same rule as
:func:`datahub.quality.checks.failure_mask` — over the columns of the
validation frame. The prepare engine computes every mask in the same query
that types and pseudonymises a chunk, derives the row reasons from them, and
GX then validates the frame itself: :class:`~datahub.quality.gx_runner.FileValidation`
fails the batch if GX's unexpected count of any expectation differs from its
mask's count.
"""

from __future__ import annotations

from typing import Any

from datahub.quality.checks import row_level
from datahub.quality.suites import REASONS
from datahub.sources.sql import literal, quote


def _values(values: list[Any]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


def mask_sql(exp: dict[str, Any]) -> str:
    """SQL condition (never NULL) for the rows a row-level expectation counts as unexpected."""
    kw = exp["kwargs"]
    t = exp["type"]
    if t == "expect_column_values_to_be_in_set":
        c = quote(kw["column"])
        return f"coalesce({c} NOT IN {_values(kw['value_set'])}, false)"
    if t == "expect_column_values_to_not_be_in_set":
        c = quote(kw["column"])
        return f"coalesce({c} IN {_values(kw['value_set'])}, false)"
    if t == "expect_column_values_to_not_be_null":
        return f"({quote(kw['column'])} IS NULL)"
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = quote(kw["column_A"]), quote(kw["column_B"])
        op = "<" if kw.get("or_equal") else "<="
        return f"coalesce({a} {op} {b}, false)"
    raise ValueError(f"row-level expectation {t} has no SQL mask")


def reason_sql(suite: dict[str, Any]) -> dict[str, str]:
    """Reason code → SQL condition: the row fails at least one expectation with that reason.

    In :data:`~datahub.quality.suites.REASONS` order (the first one of a row is its
    primary reason).
    """
    by_reason: dict[str, list[str]] = {}
    for exp in row_level(suite):
        by_reason.setdefault(exp["meta"]["reason"], []).append(mask_sql(exp))
    return {r: "(" + " OR ".join(by_reason[r]) + ")" for r in REASONS if r in by_reason}


def reasons_text_sql(reasons: dict[str, str]) -> str:
    """``;``-joined reason codes of a row in priority order ('' when it passes every check)."""
    if not reasons:
        return "''"
    parts = ", ".join(f"CASE WHEN {cond} THEN {literal(r)} END" for r, cond in reasons.items())
    return f"concat_ws(';', {parts})"

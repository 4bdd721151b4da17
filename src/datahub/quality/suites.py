"""Expectation suites per feed, generated from the contracts, stored as reviewed JSON.

``expectations/<department>__<feed>.json`` holds one GX 1.x ExpectationSuite
(the ``ExpectationSuite.to_json_dict()`` layout without generated ids). The
files are written once by ``datahub quality suites --write`` and then reviewed
like code; a test checks they still match :func:`suite_for_feed`.

Suites run on the *validation frame*: the pseudonymised, typed frame (no raw
identifier ever) plus boolean check columns computed before validation
(``_truncated``, ``_bad_value``, ``_unknown_code``, ``_future_date``,
``_duplicate_row``, ``_row_failed``). The SQL prepare engine hands GX only the
columns the expectations read; the frame-shape expectation then checks the
full column list once per file (see ``FileValidation.add_chunk``). Every
expectation carries ``meta``:

* ``level`` — ``row`` (a failing row is quarantined with ``meta.reason``),
  ``warning`` (reported only: e.g. business-key uniqueness, because
  near-duplicate records are linkage's business, not a defect), or ``batch``
  (a failure rejects the whole file);
* ``reason`` — the quarantine reason code for ``row`` expectations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datahub.sources.contracts import FEEDS, Column, Feed

#: Quarantine reason codes, in priority order (the first one of a row is its primary reason).
REASONS: tuple[str, ...] = (
    "truncated_row",
    "bad_value",
    "missing_required",
    "invalid_id_number",
    "not_allowed_value",
    "unknown_code",
    "time_order",
    "future_date",
    "duplicate_row",
)

#: Batch gate: a file with at least this many rows is rejected when more than
#: ``1 - ACCEPTED_FRACTION`` of them fail (a systematically broken export).
ACCEPTED_FRACTION = 0.5
GATE_MIN_ROWS = 10

ID_INVALID_STATUSES = ["invalid_checksum", "malformed"]

Expectation = dict[str, Any]


def _exp(type_: str, level: str, reason: str | None = None, **kwargs: Any) -> Expectation:
    meta: dict[str, Any] = {"level": level}
    if reason is not None:
        meta["reason"] = reason
    return {"type": type_, "kwargs": kwargs, "meta": meta}


def flag_column(c: Column) -> str:
    """The status/kind column that replaces identifier column ``c`` after pseudonymisation."""
    return f"{c.name}_kind" if c.role == "phone" else f"{c.name}_status"


def _allowed_values(c: Column) -> list[Any]:
    assert c.allowed is not None
    if c.type == "int":
        return [int(v) for v in c.allowed]
    return list(c.allowed)


def validation_columns(feed: Feed) -> list[str]:
    """Columns of the validation frame that come from the data (not check columns)."""
    from datahub.privacy.pseudonymise import output_columns

    return list(output_columns(feed))


CHECK_COLUMNS: tuple[str, ...] = (
    "_truncated",
    "_bad_value",
    "_unknown_code",
    "_future_date",
    "_duplicate_row",
    "_row_failed",
)


def suite_for_feed(feed: Feed) -> dict[str, Any]:
    """The GX suite (as a JSON dict) for one feed, derived from its contract.

    Per-column checks GX can express natively (not null, allowed values, ID
    status, time order) run on the real columns; checks that need the file's
    context (unparseable text, codes of the reference tables, future dates,
    exact duplicates, truncated rows) are boolean columns computed before
    validation, one per reason, so that a file costs a fixed, small number of
    expectations.
    """
    exps: list[Expectation] = [
        _exp(
            "expect_table_columns_to_match_set",
            "batch",
            column_set=[*validation_columns(feed), "_row_number", *CHECK_COLUMNS],
            exact_match=True,
        ),
        _exp(
            "expect_column_values_to_be_in_set",
            "row",
            "truncated_row",
            column="_truncated",
            value_set=[False],
        ),
        _exp(
            "expect_column_values_to_be_in_set",
            "row",
            "bad_value",
            column="_bad_value",
            value_set=[False],
        ),
    ]
    for c in feed.columns:
        if c.role is not None:
            flag = flag_column(c)
            if c.role == "id_number":
                exps.append(
                    _exp(
                        "expect_column_values_to_not_be_in_set",
                        "row",
                        "invalid_id_number",
                        column=flag,
                        value_set=ID_INVALID_STATUSES,
                    )
                )
            if c.required:
                exps.append(
                    _exp(
                        "expect_column_values_to_not_be_in_set",
                        "row",
                        "missing_required",
                        column=flag,
                        value_set=["missing"],
                    )
                )
            if c.role == "phone":
                exps.append(
                    _exp(
                        "expect_column_values_to_not_be_in_set",
                        "warning",
                        column=flag,
                        value_set=["invalid"],
                        mostly=0.95,
                    )
                )
            continue
        if c.required:
            exps.append(
                _exp(
                    "expect_column_values_to_not_be_null", "row", "missing_required", column=c.name
                )
            )
        if c.allowed is not None:
            exps.append(
                _exp(
                    "expect_column_values_to_be_in_set",
                    "row",
                    "not_allowed_value",
                    column=c.name,
                    value_set=_allowed_values(c),
                )
            )
    if any(c.references for c in feed.columns):
        exps.append(
            _exp(
                "expect_column_values_to_be_in_set",
                "row",
                "unknown_code",
                column="_unknown_code",
                value_set=[False],
            )
        )
    if any(c.type in ("date", "datetime", "month") for c in feed.columns):
        exps.append(
            _exp(
                "expect_column_values_to_be_in_set",
                "row",
                "future_date",
                column="_future_date",
                value_set=[False],
            )
        )
    for earlier, later in feed.time_order:
        exps.append(
            _exp(
                "expect_column_pair_values_a_to_be_greater_than_b",
                "row",
                "time_order",
                column_A=later,
                column_B=earlier,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            )
        )
    exps.append(
        _exp(
            "expect_column_values_to_be_in_set",
            "row",
            "duplicate_row",
            column="_duplicate_row",
            value_set=[False],
        )
    )
    if len(feed.business_key) == 1:
        exps.append(
            _exp("expect_column_values_to_be_unique", "warning", column=feed.business_key[0])
        )
    else:
        exps.append(
            _exp(
                "expect_compound_columns_to_be_unique",
                "warning",
                column_list=list(feed.business_key),
            )
        )
    exps.append(
        _exp(
            "expect_column_values_to_be_in_set",
            "batch",
            column="_row_failed",
            value_set=[False],
            mostly=ACCEPTED_FRACTION,
        )
    )
    exps.append(
        _exp(
            "expect_table_row_count_to_be_between",
            "batch",
            min_value={"$PARAMETER": "min_rows"},
            max_value={"$PARAMETER": "max_rows"},
        )
    )
    return {
        "name": feed.table,
        "expectations": exps,
        "meta": {
            "feed": feed.key,
            "generated_from": "datahub.sources.contracts via datahub.quality.suites",
        },
        "notes": f"{feed.label} — {feed.meaning}",
    }


def suite_path(feed: Feed, directory: Path) -> Path:
    return directory / f"{feed.table}.json"


def render(suite: dict[str, Any]) -> str:
    """Stable JSON text of a suite (what the reviewed file holds)."""
    return json.dumps(suite, ensure_ascii=False, indent=2) + "\n"


def write_suites(directory: Path) -> list[Path]:
    """(Re)write every feed's suite file; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for feed in FEEDS:
        p = suite_path(feed, directory)
        p.write_text(render(suite_for_feed(feed)), encoding="utf-8")
        out.append(p)
    return out


def stale_suites(directory: Path) -> list[str]:
    """Feeds whose suite file is missing or differs from the contract-derived suite."""
    stale = []
    for feed in FEEDS:
        p = suite_path(feed, directory)
        if not p.exists() or p.read_text(encoding="utf-8") != render(suite_for_feed(feed)):
            stale.append(feed.key)
    return stale


def load_suite(feed: Feed, directory: Path) -> dict[str, Any]:
    """Read a feed's reviewed suite file."""
    p = suite_path(feed, directory)
    if not p.exists():
        raise FileNotFoundError(
            f"no expectation suite for {feed.key} at {p}; run `datahub quality suites --write`"
        )
    data: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
    return data

"""Suites: in sync with the contracts, valid GX, and GX agrees with the row-reason masks."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from datahub.config import EXPECTATIONS_DIR
from datahub.quality.checks import reason_masks, row_reasons
from datahub.quality.gx_runner import FileValidation
from datahub.quality.suites import REASONS, load_suite, stale_suites
from datahub.sources.contracts import FEEDS, FEEDS_BY_KEY


def test_expectation_files_match_the_contracts() -> None:
    assert stale_suites(EXPECTATIONS_DIR) == [], "run `datahub suites --write` and review the diff"


def test_every_row_expectation_names_a_known_reason() -> None:
    for feed in FEEDS:
        suite = load_suite(feed, EXPECTATIONS_DIR)
        for e in suite["expectations"]:
            assert e["meta"]["level"] in ("row", "warning", "batch")
            if e["meta"]["level"] == "row":
                assert e["meta"]["reason"] in REASONS
            cols = [e["kwargs"].get("column"), *e["kwargs"].get("column_list", [])]
            # suites never look at a raw identifier column
            for c in filter(None, cols):
                assert c not in {i.name for i in feed.identifier_columns}, (feed.key, c)


def _frame() -> pd.DataFrame:
    t = pd.Timestamp("2026-06-01 10:00:00")
    n = 6
    return pd.DataFrame(
        {
            "incident_no": pd.array(["I1", "I2", "I3", "I4", "I5", "I1"], dtype="string"),
            "received_at": pd.Series([t] * n, dtype="datetime64[us]"),
            "dispatched_at": pd.Series(
                [t, t - pd.Timedelta(minutes=5), None, t, t, t], dtype="datetime64[us]"
            ),
            "arrived_at": pd.Series([None] * n, dtype="datetime64[us]"),
            "closed_at": pd.Series([None] * n, dtype="datetime64[us]"),
            "report_channel": pd.array(
                ["电话", "电话", "飞鸽", None, "电话", "电话"], dtype="string"
            ),
            "call_category": pd.array(
                ["刑事", "刑事", "刑事", None, "刑事", "刑事"], dtype="string"
            ),
            "final_category": pd.array([None] * n, dtype="string"),
            "incident_level": pd.array([1, 2, 5, None, 1, 1], dtype="Int64"),
            "address_code": pd.array(["A1"] * n, dtype="string"),
            "area_class": pd.array(["重点部位"] * n, dtype="string"),
            "station": pd.array(["名山派出所"] * n, dtype="string"),
            "caller_name_token": pd.array([None] * n, dtype="string"),
            "caller_name_pinyin_token": pd.array([None] * n, dtype="string"),
            "caller_name_status": pd.array(["missing"] * n, dtype="string"),
            "caller_id_number_token": pd.array([None] * n, dtype="string"),
            "caller_id_number_status": pd.array(
                ["valid", "malformed", "missing", "valid", "invalid_checksum", "valid"],
                dtype="string",
            ),
            "caller_phone_token": pd.array([None] * n, dtype="string"),
            "caller_phone_kind": pd.array(["missing"] * n, dtype="string"),
            "caller_name_dob_token": pd.array([None] * n, dtype="string"),
            "caller_birth_year": pd.array([None] * n, dtype="Int64"),
            "caller_sex": pd.array([None] * n, dtype="string"),
            "_row_number": pd.array(range(1, n + 1), dtype="int64"),
            "_truncated": [False] * n,
            "_bad_value": [False] * n,
            "_unknown_code": [False, False, False, False, True, False],
            "_future_date": [False] * n,
            "_duplicate_row": [False, False, False, False, False, True],
        }
    )


def test_gx_counts_equal_the_row_masks_and_reasons_follow() -> None:
    feed = FEEDS_BY_KEY["police.incidents"]
    suite = load_suite(feed, EXPECTATIONS_DIR)
    frame = _frame()
    masks = reason_masks(suite, frame)
    frame["_row_failed"] = pd.concat(list(masks.values()), axis=1).any(axis=1).to_numpy(dtype=bool)
    validation = FileValidation(feed.table, suite)
    # raises QualityMismatch if GX and the masks disagree on any row expectation
    validation.add_chunk(frame, whole_file_bounds=(0, 100))
    reasons = row_reasons(masks, frame.index).tolist()
    assert reasons == [
        "",
        "invalid_id_number;time_order",
        "not_allowed_value",
        "missing_required",
        "invalid_id_number;unknown_code",
        "duplicate_row",
    ]
    by_type = {
        (t.exp["type"], t.exp["kwargs"].get("column")): t.unexpected_count
        for t in validation.totals
    }
    assert by_type[("expect_column_values_to_be_in_set", "report_channel")] == 1
    assert by_type[("expect_column_values_to_not_be_in_set", "caller_id_number_status")] == 2
    result = validation.to_json(batch_id="b1", feed_key=feed.key, run_time=dt.datetime.now(dt.UTC))
    assert result["meta"]["batch_success"] is False  # 5 of 6 rows failed
    text = str(result)
    assert "I1" not in text and "飞鸽" not in text  # no cell value in the stored result


def test_gx_batches_skip_the_dataframe_fingerprint() -> None:
    """gx_runner turns off GX's per-batch md5 of the whole frame (most of a large validation)."""
    from datahub.quality import gx_runner

    exps = [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}, "meta": {}}]
    cp, _ = gx_runner._checkpoint("fingerprint_probe", exps)
    (vd,) = cp.validation_definitions
    batch = vd.data.get_batch(batch_parameters={"dataframe": pd.DataFrame({"a": [1, 2]})})
    assert "ge_load_time" in batch.batch_markers
    assert "pandas_data_fingerprint" not in batch.batch_markers


def test_gx_disagreeing_with_the_row_masks_stops_the_file() -> None:
    """The cross-check is live: a row count GX does not confirm raises QualityMismatch."""
    from datahub.quality.checks import expectation_key, row_level
    from datahub.quality.gx_runner import QualityMismatch

    feed = FEEDS_BY_KEY["police.incidents"]
    suite = load_suite(feed, EXPECTATIONS_DIR)
    frame = _frame()
    counts: dict[str, int] = {}
    masks = reason_masks(suite, frame, counts)
    frame["_row_failed"] = pd.concat(list(masks.values()), axis=1).any(axis=1).to_numpy(dtype=bool)
    dup = next(e for e in row_level(suite) if e["meta"]["reason"] == "duplicate_row")
    assert counts[expectation_key(dup)] == 1
    counts[expectation_key(dup)] = 0  # a row check that missed the duplicate GX sees
    with pytest.raises(QualityMismatch, match="_duplicate_row"):
        FileValidation(feed.table, suite).add_chunk(
            frame, whole_file_bounds=(0, 100), row_counts=counts
        )

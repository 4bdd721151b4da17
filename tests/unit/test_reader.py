"""Reader: encodings, line endings, header checks, truncated rows, empty and binary files, typing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from datahub.sources.contracts import FEEDS_BY_KEY
from datahub.sources.parse import type_chunk
from datahub.sources.reader import FileRejected, iter_chunks, read_header

FEED = FEEDS_BY_KEY["community.grid_members"]
HEADER = ",".join(FEED.column_names)
ROWS = [
    "WGY001,张三,13800138000,G01,专职,2022-02-08",
    "WGY002,李四,13800138001,G01,兼职,2022/02/09",
    "WGY003,王五,13800138002,G01,兼职,2022年02月10日",
]


def _write(tmp_path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    p = tmp_path / "grid_members_20260731.csv"
    p.write_bytes(text.replace("\n", newline).encode(encoding))
    return p


def _read(p: Path, chunk_rows: int = 100_000) -> pd.DataFrame:
    header = read_header(p, FEED)
    chunks = list(iter_chunks(p, FEED, header, chunk_rows=chunk_rows))
    return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()


@pytest.mark.parametrize(
    ("encoding", "newline", "detected"),
    [("utf-8", "\n", "utf-8"), ("utf-8-sig", "\r\n", "utf-8-sig"), ("gbk", "\r\n", "gb18030")],
)
def test_encodings_and_line_endings_decode_to_the_same_rows(
    tmp_path: Path, encoding: str, newline: str, detected: str
) -> None:
    p = _write(tmp_path, "\n".join([HEADER, *ROWS]) + "\n", encoding, newline)
    assert read_header(p, FEED).encoding == detected
    df = _read(p)
    assert df["name"].tolist() == ["张三", "李四", "王五"]
    assert df["member_type"].tolist() == ["专职", "兼职", "兼职"]
    assert df["started_on"].str.endswith(("08", "09", "10日")).all()  # no stray \r
    assert df["_row_number"].tolist() == [1, 2, 3]


def test_chinese_labels_are_accepted_as_header(tmp_path: Path) -> None:
    labels = ",".join(c.label for c in FEED.columns)
    p = _write(tmp_path, "\n".join([labels, *ROWS]) + "\n", "gbk")
    assert read_header(p, FEED).columns == FEED.column_names


def test_truncated_last_line_is_flagged_and_the_rest_reads(tmp_path: Path) -> None:
    p = _write(tmp_path, "\n".join([HEADER, *ROWS, "WGY004,赵六,1380"]))
    df = _read(p)
    assert df["_truncated"].tolist() == [False, False, False, True]
    assert df["_row_number"].tolist() == [1, 2, 3, 4]
    assert df.loc[3, "grid_code"] is None


def test_cut_inside_a_quoted_field_counts_as_a_truncated_row(tmp_path: Path) -> None:
    p = _write(tmp_path, "\n".join([HEADER, *ROWS, 'WGY004,"赵']))
    df = _read(p)
    assert df["_truncated"].tolist()[-1] is True
    assert len(df) == 4


def test_row_with_too_many_fields_keeps_no_plain_value(tmp_path: Path) -> None:
    p = _write(tmp_path, "\n".join([HEADER, "WGY001,张,三,13800138000,G01,专职,2022-02-08"]) + "\n")
    df = _read(p)
    assert bool(df.loc[0, "_overflow"])
    # a shifted field could put an identifier into a plain column: plain values are dropped
    assert df.loc[0, ["member_no", "grid_code", "member_type", "started_on"]].isna().all()


def test_renamed_column_rejects_the_file_naming_columns(tmp_path: Path) -> None:
    p = _write(tmp_path, "\n".join([HEADER.replace("grid_code", "grid"), *ROWS]) + "\n")
    with pytest.raises(FileRejected) as err:
        read_header(p, FEED)
    assert err.value.reason == "header_mismatch"
    assert "missing column(s) grid_code" in err.value.message
    assert "unexpected column(s) grid" in err.value.message


def test_extra_column_is_reported_and_ignored(tmp_path: Path) -> None:
    p = _write(tmp_path, "\n".join([HEADER + ",remark", *[r + ",x" for r in ROWS]]) + "\n")
    header = read_header(p, FEED)
    assert header.extra_columns == ("remark",)
    assert "remark" in header.warnings[0]
    df = _read(p)
    assert "remark" not in df.columns and len(df) == 3


def test_empty_and_header_only_files_read_as_empty(tmp_path: Path) -> None:
    assert read_header(_write(tmp_path, ""), FEED).empty
    p = _write(tmp_path, HEADER + "\r\n", newline="\r\n")
    assert read_header(p, FEED).empty
    assert _read(p).empty


def test_binary_file_is_rejected(tmp_path: Path) -> None:
    p = tmp_path / "grid_members_20260731.csv"
    p.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    with pytest.raises(FileRejected) as err:
        read_header(p, FEED)
    assert err.value.reason == "not_text"
    assert "binary" in err.value.message


def test_chunks_number_rows_continuously(tmp_path: Path) -> None:
    rows = [f"WGY{i:04d},张三,13800138000,G01,专职,2022-02-08" for i in range(25)]
    p = _write(tmp_path, "\n".join([HEADER, *rows]) + "\n")
    header = read_header(p, FEED)
    chunks = list(iter_chunks(p, FEED, header, chunk_rows=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert pd.concat(chunks)["_row_number"].tolist() == list(range(1, 26))


def test_typing_accepts_every_declared_spelling_and_flags_garbage() -> None:
    feed = FEEDS_BY_KEY["police.incidents"]
    values = [
        "2026-06-01 10:00:00",
        "2026/06/01 10:00:00",
        "20260601100000",
        "2026-06-01T10:00:00",
        "2026年06月01日 10:00:00",
        "2026-06-01 10:00",
        "2026-02-30 10:00:00",
        "",
        "明天",
    ]
    frame = pd.DataFrame({c: [None] * len(values) for c in feed.column_names}, dtype=object)
    frame["received_at"] = values
    typed = type_chunk(feed, frame)
    parsed = typed.frame["received_at"]
    assert parsed.iloc[:6].notna().all()
    assert (parsed.iloc[:5] == pd.Timestamp("2026-06-01 10:00:00")).all()
    assert typed.bad["received_at"].tolist() == [False] * 6 + [True, False, True]

"""Arrow fast path of the feed reader: the same chunks as the csv reference reader, always.

Every comparison runs the public ``iter_chunks`` and the reference
``_iter_chunks_python`` on the same file and asserts identical chunks (boundaries
included) and identical :class:`FileRejected` reasons and messages. Which reader
served the file is read from ``READ_PATHS``, so the tests also prove the fast path
is taken where it should be and left where it must be.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from datahub.sources import reader
from datahub.sources.contracts import FEEDS_BY_KEY, Feed, feed_for_file
from datahub.sources.reader import FileHeader, FileRejected, iter_chunks, read_header

SAMPLES = Path(__file__).resolve().parents[2] / "sample_sources"
SAMPLE_FILES = sorted(
    p
    for d in ("police", "government", "social_security", "community")
    for p in (SAMPLES / d).glob("*.csv")
)
FEED = FEEDS_BY_KEY["community.grid_members"]
HEADER = ",".join(FEED.column_names)
LABELS = ",".join(c.label for c in FEED.columns)
ROW = "WGY{i:04d},张三{i},1380013{i:04d},G01,专职,2022-02-08"

Reader = Callable[..., Iterator[pd.DataFrame]]
Outcome = tuple[list[pd.DataFrame], tuple[str, str] | None]


def _outcome(read: Reader, path: Path, feed: Feed, header: FileHeader, chunk_rows: int) -> Outcome:
    """Chunks yielded (also those before an error) and the rejection, if any."""
    chunks: list[pd.DataFrame] = []
    try:
        for chunk in read(path, feed, header, chunk_rows=chunk_rows):
            chunks.append(chunk)
    except FileRejected as exc:
        return chunks, (exc.reason, exc.message)
    return chunks, None


def _assert_same(path: Path, feed: Feed = FEED, chunk_rows: int = 100_000) -> str:
    """Assert the public reader equals the reference; return the path that served it."""
    header = read_header(path, feed)
    before = reader.READ_PATHS.copy()
    fast, fast_err = _outcome(iter_chunks, path, feed, header, chunk_rows)
    ref, ref_err = _outcome(reader._iter_chunks_python, path, feed, header, chunk_rows)
    assert fast_err == ref_err
    assert [len(c) for c in fast] == [len(c) for c in ref]
    for got, want in zip(fast, ref, strict=True):
        assert_frame_equal(got, want, check_index_type=True, check_column_type=True)
        assert type(got.index) is type(want.index)
    if fast:
        # str cells stay Python str (not numpy or Arrow scalars), missing fields stay None
        got_all, want_all = pd.concat(fast), pd.concat(ref)
        assert got_all.map(type).equals(want_all.map(type))
    used = reader.READ_PATHS - before
    if header.empty:
        assert not used
        return "none"
    assert sum(used.values()) == 1
    return next(iter(used))


def _write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / "grid_members_20260731.csv"
    p.write_bytes(text.encode(encoding))
    return p


def _rows(n: int, start: int = 0) -> list[str]:
    return [ROW.format(i=i) for i in range(start, start + n)]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrow blocks and scan pieces of a few rows, so boundaries fall everywhere."""
    monkeypatch.setattr(reader, "ARROW_BLOCK_BYTES", 512)
    monkeypatch.setattr(reader, "LINE_WINDOW", 128)
    monkeypatch.setattr(reader, "SCAN_BYTES", 300)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_file_reads_the_same_and_takes_the_fast_path(path: Path) -> None:
    feed, _ = feed_for_file(path.parent.name, path.name)
    used = _assert_same(path, feed)
    assert used in ("arrow", "none")  # header-only days read as empty without a reader
    if used == "arrow":
        # small chunks (a prime, so boundaries land anywhere) on larger files too
        rows = sum(len(c) for c in iter_chunks(path, feed, read_header(path, feed)))
        assert _assert_same(path, feed, chunk_rows=7 if rows < 1000 else 997) == "arrow"


def test_sample_set_covers_the_encodings() -> None:
    encodings = {
        read_header(p, feed_for_file(p.parent.name, p.name)[0]).encoding for p in SAMPLE_FILES
    }
    assert encodings == {"utf-8", "utf-8-sig", "gb18030"}
    assert len(SAMPLE_FILES) >= 140


# (text, encoding, reader the fixture must be served by)
FIXTURES: dict[str, tuple[str, str, str]] = {
    "clean": ("\n".join([HEADER, *_rows(20)]) + "\n", "utf-8", "arrow"),
    "truncated_last_row": ("\n".join([HEADER, *_rows(20), "WGY0999,赵六,1380"]), "utf-8", "arrow"),
    "overflow_rows": (
        "\n".join(
            [HEADER, *_rows(5), "WGY0100,张,三,13800138000,G01,专职,2022-02-08", *_rows(5, 5)]
        )
        + "\n",
        "utf-8",
        "arrow",
    ),
    "short_and_long_rows_everywhere": (
        "\n".join(
            [HEADER]
            + [
                r if i % 3 else r + ",extra" if i % 2 else r.rsplit(",", 2)[0]
                for i, r in enumerate(_rows(30))
            ]
        )
        + "\n",
        "utf-8",
        "arrow",
    ),
    "blank_and_whitespace_lines": (
        "\n".join([HEADER, "", *_rows(3), "   ", "", "\u3000", *_rows(3, 3), "", ""]) + "\n",
        "utf-8",
        "arrow",
    ),
    "extra_column": (
        "\n".join([HEADER + ",remark", *[r + ",备注" for r in _rows(10)]]) + "\n",
        "utf-8",
        "arrow",
    ),
    "extra_column_first": (
        "\n".join(["remark," + HEADER, *["x," + r for r in _rows(10)]]) + "\n",
        "utf-8",
        "arrow",
    ),
    "label_header_gbk_crlf": ("\r\n".join([LABELS, *_rows(12)]) + "\r\n", "gbk", "arrow"),
    "duplicate_header_name": (
        "\n".join([HEADER + ",name", *[r + ",李四" for r in _rows(6)]]) + "\n",
        "utf-8",
        "arrow",
    ),
    "bom_crlf": ("\r\n".join([HEADER, *_rows(9)]) + "\r\n", "utf-8-sig", "arrow"),
    "mixed_line_endings": (
        HEADER
        + "\r\n"
        + "\n".join(_rows(3))
        + "\r"
        + "\r\n".join(_rows(3, 3))
        + "\r\r\n\n"
        + _rows(1, 9)[0],
        "utf-8",
        "arrow",
    ),
    "cr_only_line_endings": ("\r".join([HEADER, *_rows(8)]) + "\r", "gbk", "arrow"),
    "surrounding_whitespace_kept": (
        "\n".join([HEADER, " WGY0001 , 张三 ,13800138000 ,G01,专职 , 2022-02-08 "]) + "\n",
        "utf-8",
        "arrow",
    ),
    "quoted_fields_on_one_line": (
        "\n".join(
            [
                HEADER,
                'WGY0001,"张三","138,0013,8000",G01,"专""职",2022-02-08',
                'WGY0002,"李"四,13800138001,G"01,专职,"2022"-02-"09"',
                '"",,,,,',
                '""',
                *_rows(4, 3),
            ]
        )
        + "\n",
        "utf-8",
        "arrow",
    ),
    "quoted_header": (
        '"' + HEADER.replace(",", '","') + '"\n' + "\n".join(_rows(4)) + "\n",
        "utf-8",
        "arrow",
    ),
    "quoted_value_with_newline": (
        "\n".join(
            [HEADER, *_rows(3), 'WGY0100,"张\n三",13800138000,G01,专职,2022-02-08', *_rows(3, 3)]
        )
        + "\n",
        "utf-8",
        "python",
    ),
    "quoted_value_with_crlf_gbk": (
        "\r\n".join([HEADER, 'WGY0100,张三,13800138000,G01,"专\r\n职",2022-02-08', *_rows(3)])
        + "\r\n",
        "gbk",
        "python",
    ),
    "cut_quote_at_eof": ("\n".join([HEADER, *_rows(5), 'WGY0004,"赵']), "utf-8", "python"),
    "cut_quote_at_eof_with_newline": (
        "\n".join([HEADER, *_rows(5), 'WGY0004,"赵']) + "\n\n",
        "utf-8",
        "python",
    ),
    "long_overflow_row": (
        "\n".join([HEADER, *_rows(3), "WGY0100," + "长" * 30_000 + ",a,b,c,d,e,f", *_rows(3, 3)])
        + "\n",
        "utf-8",
        "arrow",
    ),
    "header_only_plus_blank": (HEADER + "\n\n", "utf-8", "none"),
    "one_row_no_newline": (HEADER + "\n" + _rows(1)[0], "utf-8", "arrow"),
}


@pytest.mark.parametrize("chunk_rows", [1, 7, 100_000])
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_defect_fixture_reads_the_same(tmp_path: Path, name: str, chunk_rows: int) -> None:
    text, encoding, expected_path = FIXTURES[name]
    p = _write(tmp_path, text, encoding)
    assert _assert_same(p, chunk_rows=chunk_rows) == expected_path


@pytest.mark.parametrize("chunk_rows", [3, 100_000])
@pytest.mark.parametrize(
    "name",
    [
        "clean",
        "truncated_last_row",
        "short_and_long_rows_everywhere",
        "blank_and_whitespace_lines",
        "mixed_line_endings",
        "quoted_fields_on_one_line",
        "label_header_gbk_crlf",
    ],
)
def test_defect_fixture_reads_the_same_across_arrow_block_boundaries(
    tmp_path: Path, small_blocks: None, name: str, chunk_rows: int
) -> None:
    text, encoding, _ = FIXTURES[name]
    lines = text.splitlines(keepends=True)
    p = _write(tmp_path, lines[0] + "".join(lines[1:]) * 15, encoding)  # many blocks
    assert _assert_same(p, chunk_rows=chunk_rows) == "arrow"


def test_odd_rows_at_chunk_boundaries_keep_their_numbers(tmp_path: Path) -> None:
    rows = _rows(40)
    for i in (6, 7, 13, 14, 20, 39):  # around multiples of 7
        rows[i] = rows[i].rsplit(",", 1)[0] if i % 2 else rows[i] + ",x"
    p = _write(tmp_path, "\n".join([HEADER, *rows]) + "\n")
    assert _assert_same(p, chunk_rows=7) == "arrow"
    df = pd.concat(
        list(iter_chunks(p, FEED, read_header(p, FEED), chunk_rows=7)), ignore_index=True
    )
    assert df["_row_number"].tolist() == list(range(1, 41))
    assert df.loc[[6, 14, 20], "_overflow"].all() and df.loc[[7, 13, 39], "_truncated"].all()
    # an overflow row keeps identifiers only: a shifted field could be an ID in a plain column
    assert df.loc[6, ["member_no", "grid_code", "member_type", "started_on"]].isna().all()
    assert df.loc[39, "started_on"] is None


def test_chunks_are_exactly_chunk_rows_long(tmp_path: Path) -> None:
    p = _write(tmp_path, "\n".join([HEADER, *_rows(25)]) + "\n")
    chunks = list(iter_chunks(p, FEED, read_header(p, FEED), chunk_rows=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert [c.index.tolist() for c in chunks] == [list(range(10))] * 2 + [list(range(5))]
    one = list(iter_chunks(p, FEED, read_header(p, FEED), chunk_rows=25))
    assert len(one) == 1  # a file of at most chunk_rows rows is one chunk (one GX run)
    assert _assert_same(p, chunk_rows=0) == "arrow"  # the reference cuts after every row then


def test_gbk_file_with_a_bad_byte_deep_inside_is_rejected_the_same(tmp_path: Path) -> None:
    body = "\r\n".join([HEADER, *_rows(30_000)]).encode("gbk")  # past the sniffed 1 MiB
    p = tmp_path / "grid_members_20260731.csv"
    p.write_bytes(
        body + b"\r\nWGY9999,\xff\xfe,1,G01,x,y\r\n" + "\r\n".join(_rows(5)).encode("gbk")
    )
    header = read_header(p, FEED)
    assert header.encoding == "gb18030"
    assert p.stat().st_size > reader.SAMPLE_BYTES
    for chunk_rows in (7_000, 100_000):  # the reference yields chunks before it meets the byte
        assert _assert_same(p, chunk_rows=chunk_rows) == "python"
    chunks, err = _outcome(iter_chunks, p, FEED, header, 7_000)
    assert len(chunks) >= 1
    assert err is not None and err[0] == "undecodable"


def test_utf8_file_with_a_bad_byte_deep_inside_is_rejected_the_same(tmp_path: Path) -> None:
    p = tmp_path / "grid_members_20260731.csv"
    good = "\n".join([HEADER, *_rows(30_000)]).encode()
    p.write_bytes(good + b"\nWGY9999,\xed\xa0\x80,1,G01,x,y\n")  # an encoded surrogate
    assert _assert_same(p, chunk_rows=10_000) == "python"


def test_header_mismatch_is_raised_the_same(tmp_path: Path) -> None:
    p = _write(tmp_path, "\n".join([HEADER.replace("grid_code", "grid"), *_rows(3)]) + "\n")
    header = FileHeader("utf-8", FEED.column_names, size_bytes=p.stat().st_size)
    fast = _outcome(iter_chunks, p, FEED, header, 100_000)
    ref = _outcome(reader._iter_chunks_python, p, FEED, header, 100_000)
    assert fast[1] == ref[1] and fast[1] is not None and fast[1][0] == "header_mismatch"


def test_nul_byte_past_the_sniffed_sample_falls_back(tmp_path: Path) -> None:
    rows = _rows(20_000)  # more than read_header's 1 MiB sample, which rejects NUL itself
    rows[-1] = rows[-1].replace("张", "张\x00")
    p = _write(tmp_path, "\n".join([HEADER, *rows]) + "\n")
    assert p.stat().st_size > reader.SAMPLE_BYTES
    assert _assert_same(p, chunk_rows=50_000) == "python"


def test_long_line_falls_back_and_reads_the_same(tmp_path: Path, small_blocks: None) -> None:
    p = _write(
        tmp_path, "\n".join([HEADER, *_rows(3), "WGY0100," + "长" * 200 + ",1,G01,x,y"]) + "\n"
    )
    assert _assert_same(p) == "python"


def test_arrow_surprise_before_the_first_chunk_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> Iterator[pd.DataFrame]:
        raise reader._NotEquivalent
        yield  # a generator, like the real one

    monkeypatch.setattr(reader, "_iter_tables_arrow", refuse)
    p = _write(tmp_path, "\n".join([HEADER, *_rows(5)]) + "\n")
    assert _assert_same(p) == "python"


def test_cr_only_file_header_is_read(tmp_path: Path) -> None:
    # read_header used to split the sample at \n only and crashed on a lone \r
    p = _write(tmp_path, "\r".join([HEADER, *_rows(3)]) + "\r")
    header = read_header(p, FEED)
    assert header.columns == FEED.column_names and not header.empty
    assert _assert_same(p) == "arrow"


_PIECES = [
    "a",
    "中",
    " ",
    ",",
    '"',
    '""',
    "\r",
    "\n",
    "\r\n",
    "WGY1",
    "  ",
    "\u3000",
    "x,y",
    "13800138000",
]


def _random_file(rnd: random.Random) -> tuple[str, str]:
    names = list(FEED.column_names)
    if rnd.random() < 0.2:
        names = [c.label for c in FEED.columns]
    if rnd.random() < 0.2:
        names.insert(rnd.randint(0, 6), "remark")
    quotes = rnd.random() < 0.3
    pool = _PIECES if quotes else [x for x in _PIECES if '"' not in x]
    newline = rnd.choice(["\n", "\r\n", "\r"])
    lines = [",".join(names)]
    for _ in range(rnd.randint(0, 25)):
        kind = rnd.random()
        if kind < 0.5:
            n = len(names) + rnd.choice([0, 0, 0, -1, 1, -3, 2])
            lines.append(
                ",".join(
                    rnd.choice(["a", "中文", "", " b ", "13800138000"]) for _ in range(max(n, 1))
                )
            )
        elif kind < 0.6:
            lines.append("")
        else:
            lines.append("".join(rnd.choice(pool) for _ in range(rnd.randint(0, 30))))
    text = newline.join(lines) + rnd.choice(["", newline, newline + newline])
    return text, rnd.choice(["utf-8", "utf-8-sig", "gbk"])


@pytest.mark.parametrize("seed", range(3))
def test_random_files_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rnd = random.Random(seed)
    served: set[str] = set()
    for case in range(50):
        text, encoding = _random_file(rnd)
        p = _write(tmp_path, text, encoding)
        try:
            read_header(p, FEED)
        except FileRejected:
            continue
        if case % 2:
            monkeypatch.setattr(reader, "ARROW_BLOCK_BYTES", 512)
            monkeypatch.setattr(reader, "LINE_WINDOW", 128)
            monkeypatch.setattr(reader, "SCAN_BYTES", 300)
        else:
            monkeypatch.undo()
        for chunk_rows in (3, 100_000):
            try:
                served.add(_assert_same(p, chunk_rows=chunk_rows))
            except AssertionError as exc:
                raise AssertionError(
                    f"case {case}: {text!r} ({encoding}), chunk_rows={chunk_rows}"
                ) from exc
    assert {"arrow", "python"} <= served

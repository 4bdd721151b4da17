"""Bad input end to end (prepare + load into a real DuckDB warehouse, real GX).

Every case must end with a clear message and a balanced ledger row
(rows_read = loaded + quarantined + rejected); nothing half-loads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datahub import pipeline
from datahub.config import Paths
from datahub.identifiers import id_check_char
from datahub.privacy.keys import KeyProblem, ensure_dev_keys, new_keyring
from datahub.warehouse.db import connect
from datahub.warehouse.loader import BatchRejected, load_batch, open_warehouse

GRID_HEADER = "member_no,name,phone,grid_code,member_type,started_on"
RAW_IDS = ("张三", "13800138000")


def _id(seq: int) -> str:
    first = f"51118119900101{seq:03d}"
    return first + id_check_char(first)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    gov = root / "government"
    gov.mkdir()
    (gov / "divisions_20260601.csv").write_text(
        "division_code,division_name,level,parent_code\n511181,峨眉山市,市,\n"
        "511181002,峨山街道,乡镇街道,511181\nG01,网格1,网格,511181002\n",
        encoding="utf-8",
    )
    (gov / "addresses_20260601.csv").write_text(
        "address_code,address_text,township_code,village_code,grid_code,address_level,longitude,"
        "latitude,station,in_use\nA1,绥山西路7号,511181002,511181002,G01,门牌,103.4,29.6,名山派出所,1\n",
        encoding="utf-8",
    )
    (root / "community").mkdir()
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, sources: Path):  # type: ignore[no-untyped-def]
    paths = Paths(tmp_path_factory.mktemp("home"))
    keyring = ensure_dev_keys(paths, announce=False)
    for f in pipeline.list_feed_files(sources):
        pipeline.ingest_file(f, paths=paths, keyring=keyring, sources_root=sources)
    return paths, keyring


def _rows(n: int, start: int = 0) -> list[str]:
    return [
        f"WGY{i:04d},张三{i},1380013{i:04d},G01,专职,2022-02-08" for i in range(start, start + n)
    ]


def _file(sources: Path, stamp: str, data: bytes) -> Path:
    p = sources / "community" / f"grid_members_{stamp}.csv"
    p.write_bytes(data)
    return p


def _ledger(paths: Paths, batch_id: str) -> tuple:  # type: ignore[type-arg]
    con = connect(paths.warehouse, read_only=True)
    try:
        row = con.execute(
            "SELECT status, rows_read, rows_loaded, rows_quarantined, rows_rejected, message "
            "FROM audit.batch_ledger WHERE batch_id = ?",
            [batch_id],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    assert row[1] == row[2] + row[3] + row[4], row
    return row


def _ingest(env, sources: Path, path: Path) -> pipeline.FileOutcome:  # type: ignore[no-untyped-def]
    paths, keyring = env
    out = pipeline.ingest_file(path, paths=paths, keyring=keyring, sources_root=sources)
    for raw in RAW_IDS:
        assert raw not in out.message
    return out


def test_gbk_crlf_file_loads_with_tokens_only(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    text = "\r\n".join([GRID_HEADER, *_rows(5)]) + "\r\n"
    out = _ingest(env, sources, _file(sources, "20260602", text.encode("gbk")))
    assert (out.status, out.rows_loaded, out.rows_quarantined) == ("loaded", 5, 0)
    con = connect(env[0].warehouse, read_only=True)
    try:
        cols = [r[0] for r in con.execute("DESCRIBE raw.community__grid_members").fetchall()]
        names = con.execute(
            "SELECT name_token FROM raw.community__grid_members WHERE _batch_id = ?", [out.batch_id]
        ).fetchall()
    finally:
        con.close()
    assert "name" not in cols and "phone" not in cols
    assert all(n[0].startswith("k1_") for n in names)


def test_bom_crlf_file_loads(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    text = "\r\n".join([GRID_HEADER, *_rows(4, 100)]) + "\r\n"
    out = _ingest(env, sources, _file(sources, "20260603", text.encode("utf-8-sig")))
    assert (out.status, out.rows_loaded) == ("loaded", 4)
    _ledger(env[0], out.batch_id)


def test_truncated_file_quarantines_the_cut_row_and_loads_the_rest(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    text = "\n".join([GRID_HEADER, *_rows(4, 200), "WGY0299,李四,13800"])
    out = _ingest(env, sources, _file(sources, "20260604", text.encode()))
    assert (out.status, out.rows_read, out.rows_loaded, out.rows_quarantined) == ("loaded", 5, 4, 1)
    con = connect(env[0].warehouse, read_only=True)
    try:
        q = con.execute(
            "SELECT _row_number, _reason FROM quarantine.community__grid_members WHERE _batch_id = ?",
            [out.batch_id],
        ).fetchall()
    finally:
        con.close()
    assert q == [(5, "truncated_row")]


def test_renamed_column_rejects_the_file(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    text = "\n".join([GRID_HEADER.replace("grid_code", "grid"), *_rows(3, 300)]) + "\n"
    out = _ingest(env, sources, _file(sources, "20260605", text.encode()))
    assert out.status == "rejected"
    assert "missing column(s) grid_code" in out.message
    status, read, loaded, quarantined, rejected, _ = _ledger(env[0], out.batch_id)
    assert (status, read, loaded, quarantined, rejected) == ("rejected", 0, 0, 0, 0)


def test_empty_and_header_only_files(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    out = _ingest(env, sources, _file(sources, "20260606", b""))
    assert out.status == "rejected" and "empty file" in out.message
    assert _ledger(env[0], out.batch_id)[1] == 0
    out = _ingest(env, sources, _file(sources, "20260607", (GRID_HEADER + "\n").encode()))
    assert out.status == "loaded" and "no data rows" in out.message
    assert _ledger(env[0], out.batch_id)[1:5] == (0, 0, 0, 0)


def test_binary_file_is_rejected(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    out = _ingest(
        env, sources, _file(sources, "20260608", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    )
    assert out.status == "rejected" and "binary" in out.message
    _ledger(env[0], out.batch_id)


def test_file_of_only_duplicate_rows_is_rejected_naming_the_expectation(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    row = _rows(1, 400)[0]
    text = "\n".join([GRID_HEADER, *[row] * 12]) + "\n"
    out = _ingest(env, sources, _file(sources, "20260609", text.encode()))
    assert out.status == "rejected"
    assert "expect_column_values_to_be_in_set(_row_failed" in out.message
    assert _ledger(env[0], out.batch_id)[1:5] == (12, 0, 0, 12)


def test_few_duplicate_rows_are_quarantined_later_copies_only(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(3, 500)
    text = "\n".join([GRID_HEADER, *rows, rows[0]]) + "\n"
    out = _ingest(env, sources, _file(sources, "20260610", text.encode()))
    assert (out.status, out.rows_loaded, out.rows_quarantined) == ("loaded", 3, 1)


def test_same_file_twice_is_skipped_and_redelivery_supersedes(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    paths, _ = env
    p = _file(sources, "20260611", ("\n".join([GRID_HEADER, *_rows(3, 600)]) + "\n").encode())
    first = _ingest(env, sources, p)
    again = _ingest(env, sources, p)
    assert again.status == "skipped_duplicate_file" and first.batch_id in again.message
    p.write_bytes(("\n".join([GRID_HEADER, *_rows(5, 600)]) + "\n").encode())
    third = _ingest(env, sources, p)
    assert third.status == "loaded" and third.rows_loaded == 5
    assert _ledger(paths, first.batch_id)[0] == "superseded"
    con = connect(paths.warehouse, read_only=True)
    try:
        n = con.execute(
            "SELECT count(*), count(DISTINCT _batch_id) FROM raw.community__grid_members "
            "WHERE _source_file = ?",
            [p.name],
        ).fetchone()
    finally:
        con.close()
    assert n == (5, 1)


def test_wrong_key_is_refused_before_anything_is_written(
    env, sources: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    paths, keyring = env
    p = _file(sources, "20260612", ("\n".join([GRID_HEADER, *_rows(2, 700)]) + "\n").encode())
    other = new_keyring(tmp_path / "other.key")
    batch = pipeline.prepare(p, paths=paths, keyring=other, sources_root=sources)
    with pytest.raises(KeyProblem, match="canary"):
        pipeline.load(batch, paths=paths, keyring=other)
    con = connect(paths.warehouse, read_only=True)
    try:
        n = con.execute(
            "SELECT count(*) FROM audit.batch_ledger WHERE source_file = ?", [p.name]
        ).fetchone()
    finally:
        con.close()
    assert n == (0,)


KILL_SCRIPT = """
import os, sys, time
from pathlib import Path
from datahub.config import Paths
from datahub.privacy.keys import load_keyring
from datahub.warehouse.loader import load_batch
paths = Paths(Path(sys.argv[1]))
def pause():
    Path(sys.argv[3]).write_text("ready")
    time.sleep(3600)
load_batch(Path(sys.argv[2]), paths=paths, keyring=load_keyring(paths), before_commit=pause)
"""


def _counts(paths: Paths) -> dict[str, int]:
    """Row counts of every raw/quarantine/audit table that exists."""
    con = connect(paths.warehouse, read_only=True)
    try:
        tables = [
            f"{s}.{t}"
            for s, t in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema IN ('raw', 'quarantine', 'audit')"
            ).fetchall()
        ]
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]
    finally:
        con.close()


def test_sigkill_mid_load_leaves_the_warehouse_unchanged(
    env, sources: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    paths, keyring = env
    header = "team_no,team_type,grid_code,members,leader_name,leader_phone,founded_on"
    rows = [
        f"T{i:05d},义警,G01,{i % 30 + 1},王{i},1390013{i % 10000:04d},2020-01-01"
        for i in range(3000)
    ]
    p = sources / "community" / "patrol_teams_20260613.csv"
    p.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    batch = pipeline.prepare(p, paths=paths, keyring=keyring, sources_root=sources)
    before = _counts(paths)
    marker = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(paths.home), str(batch), str(marker)]
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "loader exited before reaching the commit"
            assert time.monotonic() < deadline, "loader never reached the commit"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _counts(paths) == before
    out = load_batch(batch, paths=paths, keyring=keyring)
    assert (out.status, out.rows_loaded) == ("loaded", 3000)
    after = _counts(paths)
    assert after["raw.community__patrol_teams"] == 3000
    assert after["audit.batch_ledger"] == before["audit.batch_ledger"] + 1


def test_row_count_far_above_the_previous_batch_rejects_the_file(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    text = "\n".join([GRID_HEADER, *_rows(400, 5000)]) + "\n"
    out = _ingest(env, sources, _file(sources, "20260615", text.encode()))
    assert out.status == "rejected"
    assert "expect_table_row_count_to_be_between" in out.message
    assert _ledger(env[0], out.batch_id)[1:5] == (400, 0, 0, 400)


def test_rejected_batch_raises_from_load(env, sources: Path) -> None:  # type: ignore[no-untyped-def]
    paths, keyring = env
    p = _file(sources, "20260614", b"\x00\x01binary")
    batch = pipeline.prepare(p, paths=paths, keyring=keyring, sources_root=sources)
    with open_warehouse(paths) as con, pytest.raises(BatchRejected) as err:
        pipeline.load(batch, paths=paths, keyring=keyring, con=con)
    assert "binary" in str(err.value)


@pytest.mark.parametrize("chunk_rows", [10_000, 7], ids=["one-chunk", "many-chunks"])
def test_run_gates_each_file_on_the_batch_loaded_before_it(  # type: ignore[no-untyped-def]
    sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    """`run_sources` prepares a file while the previous one still loads; the row-count
    gate must still compare with the previous *loaded* batch of the same feed."""
    import shutil

    import datahub.prepare

    root = tmp_path / "sources"
    shutil.copytree(sources / "government", root / "government")
    (root / "community").mkdir()
    for stamp, n in (("20260601", 20), ("20260602", 100), ("20260603", 30)):
        text = "\n".join([GRID_HEADER, *_rows(n)]) + "\n"
        (root / "community" / f"grid_members_{stamp}.csv").write_text(text, encoding="utf-8")
    monkeypatch.setattr(datahub.prepare, "SQL_CHUNK_ROWS", chunk_rows)
    real_load = pipeline.load_outcome

    def slow_load(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(1.0)  # the next file's prepare is done long before this load
        return real_load(*args, **kwargs)

    monkeypatch.setattr(pipeline, "load_outcome", slow_load)
    paths = Paths(tmp_path / "home")
    keyring = ensure_dev_keys(paths, announce=False)
    outcomes = pipeline.run_sources(
        root, paths=paths, keyring=keyring, build_docs=False, feeds=("community.grid_members",)
    )
    # 100 rows after 20 exceeds a snapshot's 2x + 20; 30 after the loaded 20 does not
    assert [(o.path.name, o.status) for o in outcomes] == [
        ("grid_members_20260601.csv", "loaded"),
        ("grid_members_20260602.csv", "rejected"),
        ("grid_members_20260603.csv", "loaded"),
    ]
    assert "expect_table_row_count_to_be_between" in outcomes[1].message

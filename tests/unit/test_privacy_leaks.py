"""Leak scanner: planted identifiers are found in DuckDB, HTML and log files; clean files pass."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from test_privacy_helpers import make_id, make_keyring, random_ids
from typer.testing import CliRunner

from datahub.cli import app
from datahub.privacy.leaks import (
    SourceValues,
    find_in_text,
    mask,
    scan_duckdb,
    scan_paths,
    scan_text_file,
)
from datahub.privacy.normalise import normalise_ids
from datahub.privacy.tokens import tokenise_series
from datahub.warehouse.db import connect

ID18 = make_id("19880808", 321)
OLD15 = "511181880808321"
MOBILE = "13912345678"


def _tokens(tmp_path: Path, n: int = 2000) -> list[str]:
    ring = make_keyring(tmp_path / "k")
    ids = normalise_ids(pd.Series(random_ids(n))).value
    return tokenise_series(ring.domain_key("id_number"), 1, ids).tolist()


def _db(path: Path, rows: dict[str, list[object]]) -> Path:
    con = connect(path)
    try:
        con.execute("CREATE SCHEMA raw")
        con.register("df", pd.DataFrame(rows))
        con.execute("CREATE TABLE raw.t AS SELECT * FROM df")
        con.execute("CREATE TABLE main.other AS SELECT 1 AS n, 'ok' AS s")
    finally:
        con.close()
    return path


def test_patterns_in_text() -> None:
    text = (
        f"id={ID18.lower()} old {OLD15} tel:{MOBILE}; order 2024010112345678901 "
        "number 12345678901 ts 1717171717171"
    )
    found = {k for k, _ in find_in_text(text)}
    assert found == {"id18", "id15", "mobile"}
    assert not find_in_text(ID18[:17] + ("1" if ID18[17] != "1" else "2"))  # bad check digit
    assert not find_in_text("9" + ID18)  # part of a longer digit run
    assert not find_in_text("1" + MOBILE)


def test_masks_never_show_the_full_value() -> None:
    assert mask(ID18, "id18") == ID18[:4] + "*" * 10 + ID18[-4:]
    assert mask(MOBILE, "mobile") == "139****5678"
    assert mask("张伟", "source_value") == "张*"


def test_duckdb_planted_and_clean(tmp_path: Path) -> None:
    toks = _tokens(tmp_path)
    dirty = _db(
        tmp_path / "dirty.duckdb",
        {"id_token": toks[:3], "note": ["fine", f"caller {MOBILE}", f"ID {ID18}"], "n": [1, 2, 3]},
    )
    report = scan_duckdb(dirty)
    kinds = {(f.location.split("::")[1], f.kind): f.count for f in report.findings}
    assert kinds == {("raw.t.note", "mobile"): 1, ("raw.t.note", "id18"): 1}
    assert all(ID18 not in str(f) and MOBILE not in str(f) for f in report.findings)

    clean = _db(
        tmp_path / "clean.duckdb",
        {"id_token": toks, "note": ["k1_x"] * len(toks), "n": range(len(toks))},
    )
    report = scan_duckdb(clean)
    assert report.clean and len(report.scanned) >= 3


def test_html_and_log_planted_and_clean(tmp_path: Path) -> None:
    toks = _tokens(tmp_path)
    html = tmp_path / "docs" / "index.html"
    html.parent.mkdir()
    html.write_text(f"<table><tr><td>{OLD15}</td><td>{toks[0]}</td></tr></table>", encoding="utf-8")
    log = tmp_path / "logs" / "run.log"
    log.parent.mkdir()
    log.write_text(f"INFO loaded\nERROR bad row: id_number={ID18}\n", encoding="utf-8")
    clean_html = tmp_path / "clean" / "tokens.html"
    clean_html.parent.mkdir()
    clean_html.write_text(
        "<ul>" + "".join(f"<li>{t}</li>" for t in toks) + "</ul>", encoding="utf-8"
    )
    clean_json = tmp_path / "clean" / "result.json"
    clean_json.write_text(
        json.dumps({"unexpected": toks, "batch": "20240101", "rows": 1234567}), encoding="utf-8"
    )
    clean_log = tmp_path / "clean" / "run.log"
    clean_log.write_text(
        "\n".join(f"2024-06-01 12:00:00 token {t} ok" for t in toks), encoding="utf-8"
    )

    assert {f.kind for f in scan_text_file(html).findings} == {"id15"}
    assert {f.kind for f in scan_text_file(log).findings} == {"id18"}
    report = scan_paths([tmp_path / "clean"])
    assert report.clean and len(report.scanned) == 3
    everything = scan_paths([tmp_path / "docs", tmp_path / "logs", tmp_path / "clean"])
    assert len(everything.findings) == 2


def test_source_values_catch_names_and_invalid_ids(tmp_path: Path) -> None:
    bad_id = ID18[:17] + ("1" if ID18[17] != "1" else "2")
    sources = SourceValues(names={"张伟", "John Smith"}, numbers={bad_id})
    log = tmp_path / "a.log"
    log.write_text(f"name=张伟 id={bad_id} other=张伟强 plain", encoding="utf-8")
    kinds = [(f.kind, f.count) for f in scan_text_file(log, sources).findings]
    assert kinds == [("source_value", 2)]
    db = _db(tmp_path / "n.duckdb", {"who": ["John Smith", "张伟", "李娜"]})
    found = scan_duckdb(db, sources).findings
    assert [(f.kind, f.count) for f in found] == [("source_value", 2)]


def test_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    log = tmp_path / "logs" / "x.log"
    log.parent.mkdir()
    log.write_text(f"phone {MOBILE}\n", encoding="utf-8")
    result = runner.invoke(app, ["audit", "leaks", str(log.parent)])
    assert result.exit_code == 1
    assert MOBILE not in result.output and "139****5678" in result.output
    log.write_text("nothing here\n", encoding="utf-8")
    result = runner.invoke(app, ["audit", "leaks", str(log.parent)])
    assert result.exit_code == 0, result.output


def test_collect_source_values_reads_gbk_community_files(tmp_path: Path) -> None:
    from datahub.privacy.leaks import collect_source_values
    from datahub.sources.contracts import FEEDS_BY_KEY

    feed = FEEDS_BY_KEY["community.dispute_parties"]
    folder = tmp_path / "src" / "community"
    folder.mkdir(parents=True)
    header = ",".join(c.label for c in feed.columns)
    row = ",".join(
        {"name": "欧阳娜娜", "phone": "139-1234-5678", "id_number": ID18}.get(c.name, "x1")
        for c in feed.columns
    )
    # party_seq is an int column; the reader keeps strings, so any text is fine here
    (folder / "dispute_parties_202606.csv").write_bytes(f"{header}\r\n{row}\r\n".encode("gbk"))
    values = collect_source_values(tmp_path / "src")
    assert "欧阳娜娜" in values.names
    assert {MOBILE, ID18} <= values.numbers


def test_grid_codes_are_not_old_ids(tmp_path: Path) -> None:
    """15-digit grid codes (511181 100201 001) have the shape of an old ID born 1910-02-01."""
    grid = "511181100201001"
    assert find_in_text(grid)  # on its own the pattern cannot tell
    con = connect(tmp_path / "w.duckdb")
    try:
        con.execute(f"CREATE TABLE grids AS SELECT '{grid}' AS grid_code, 'in {grid}' AS note")
    finally:
        con.close()
    html = tmp_path / "docs.html"
    html.write_text(f"<td>{grid}</td><td>{OLD15}</td>", encoding="utf-8")
    report = scan_paths([tmp_path / "w.duckdb", html])
    assert [(Path(f.location).name, f.kind) for f in report.findings] == [("docs.html", "id15")]
    assert scan_text_file(html, SourceValues(codes={grid})).findings[0].count == 1


def test_content_hashes_are_not_phones() -> None:
    """sha256 hex digests contain 11-digit runs with mobile prefixes now and then."""
    import hashlib
    import re

    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20000)]
    with_runs = [d for d in digests if re.search(r"1[3-9]\d{9}", d)]
    assert with_runs  # the trap exists
    text = json.dumps({"content_hash": with_runs, "md5": [d[:32] for d in with_runs]})
    assert not find_in_text(text)
    assert find_in_text(f"{with_runs[0]} {MOBILE}") == {("mobile", MOBILE): 1}


def test_keys_and_codes_with_digit_runs_are_not_identifiers() -> None:
    assert not find_in_text(f"P000{MOBILE}AB J{ID18}Z person_key=P{MOBILE}0A1")
    assert find_in_text(f"phone_{MOBILE}.log 身份证{ID18}。") == {
        ("mobile", MOBILE): 1,
        ("id18", ID18): 1,
    }

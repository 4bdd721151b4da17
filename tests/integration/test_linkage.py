"""Person linkage on a freshly generated set with another seed (real ingest, DuckDB, Splink)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from datahub.config import Paths
from datahub.linkage.score import LinkageScore, read_truth, score_linkage
from datahub.warehouse.catalog import query as _df
from datahub.warehouse.db import connect

SEED = 11


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Paths, pd.DataFrame]:
    from datahub import pipeline
    from datahub.privacy.keys import ensure_dev_keys
    from datahub.warehouse.build import run_base_models, run_linkage

    root = tmp_path_factory.mktemp("linkage")
    sources = root / "sources"
    datahub = Path(sys.executable).parent / "datahub"
    subprocess.run(
        [str(datahub), "generate", "--out", str(sources), "--persons", "600", "--seed", str(SEED),
         "--start", "2026-07-01", "--end", "2026-07-10", "--quiet"],
        check=True, capture_output=True,
    )  # fmt: skip
    paths = Paths(root / "home")
    keyring = ensure_dev_keys(paths, announce=False)
    pipeline.run_sources(sources, paths=paths, keyring=keyring, build_docs=False)
    run_base_models(paths)
    run_linkage(paths)
    return sources, paths, _df(paths.build, "SELECT * FROM integrated.person_xref")


def test_scores_above_targets_on_another_seed(linked: tuple[Path, Paths, pd.DataFrame]) -> None:
    sources, _paths, xref = linked
    score: LinkageScore = score_linkage(xref, read_truth(sources))
    assert score.records > 1000
    assert score.precision >= 0.99, score
    assert score.recall >= 0.95, score
    assert score.unmatched_records == 0


def test_homophone_typos_link_to_the_same_person(linked: tuple[Path, Paths, pd.DataFrame]) -> None:
    sources, _paths, xref = linked
    truth = pd.read_csv(sources / "_truth" / "records.csv", dtype=str, keep_default_na=False)
    truth["source_file"] = truth["file"].map(lambda p: Path(p).name)
    truth["source_row"] = truth["row_number"].astype("int64")
    joined = xref.merge(truth, on=["source_file", "source_row", "role"])
    # records with a usable identifier (a name alone cannot link anybody)
    usable = joined[joined["link_rule"] != "no_usable_identifier"]
    homophones = usable[usable["defects"].str.contains("name_homophone")]
    assert len(homophones) >= 5
    # the person's other records carry the same key: the majority key of the true person
    majority = joined.groupby("person_id")["person_key"].agg(lambda s: s.mode().iloc[0])
    same = (homophones["person_key"] == homophones["person_id"].map(majority)).mean()
    assert same >= 0.95, same


def test_audit_linkage_score_cli(linked: tuple[Path, Paths, pd.DataFrame]) -> None:
    from typer.testing import CliRunner

    from datahub.cli import app

    sources, paths, _xref = linked
    out = CliRunner().invoke(
        app, ["audit", "linkage-score", str(sources), "--home", str(paths.home)]
    )
    assert out.exit_code == 0, out.output
    precision = next(line for line in out.output.splitlines() if "precision" in line)
    assert float(precision.split(":")[1]) >= 0.99
    assert "unusable_records" in out.output


def test_no_working_tables_are_left_in_the_warehouse(
    linked: tuple[Path, Paths, pd.DataFrame],
) -> None:
    _sources, paths, _xref = linked
    for path in (paths.warehouse, paths.build):
        con = connect(path, read_only=True)
        try:
            databases = {
                r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
            }
            tables = [
                r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            ]
        finally:
            con.close()
        assert "linkage_scratch" not in databases
        assert not [t for t in tables if t.startswith(("__splink", "link_"))], (path, tables)


def test_rerun_keeps_every_person_key(linked: tuple[Path, Paths, pd.DataFrame]) -> None:
    from datahub.warehouse.build import run_linkage

    _sources, paths, xref = linked
    stats = run_linkage(paths)
    again = _df(paths.build, "SELECT unique_id, person_key FROM integrated.person_xref")
    registry = _df(paths.build, "SELECT count(*) AS n FROM integrated.person_key_registry")
    assert stats["records"] == len(xref)
    merged = xref[["unique_id", "person_key"]].merge(again, on="unique_id", suffixes=("", "_2"))
    assert len(merged) == len(xref)
    assert (merged["person_key"] == merged["person_key_2"]).all()
    assert registry["n"].iloc[0] == xref["person_key"].nunique()  # no key issued twice


def test_a_fresh_build_of_the_same_records_links_them_alike(
    linked: tuple[Path, Paths, pd.DataFrame], tmp_path: Path
) -> None:
    """Another home, the same warehouse, no earlier keys: the same persons, keys and scores.

    The linkage numbers records by the rowid of ``integrated.person_records``; the
    model stores them in unique_id order so that every build numbers them alike.
    """
    import shutil

    from datahub.warehouse.build import run_base_models, run_linkage

    _sources, paths, xref = linked
    other = Paths(tmp_path / "home")
    other.home.mkdir(parents=True)
    shutil.copy(paths.warehouse, other.warehouse)
    run_base_models(other)
    run_linkage(other)
    inversions = _df(
        other.build,
        "SELECT count(*) AS n FROM (SELECT unique_id < lag(unique_id) OVER (ORDER BY rowid) AS down "
        "FROM integrated.person_records) WHERE down",
    )
    again = _df(
        other.build,
        "SELECT unique_id, person_key, match_probability, link_rule FROM integrated.person_xref",
    )
    assert inversions["n"].tolist() == [0], "person_records is not stored in unique_id order"
    cols = ["unique_id", "person_key", "match_probability", "link_rule"]
    a = xref[cols].sort_values("unique_id").reset_index(drop=True)
    b = again[cols].sort_values("unique_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_keys_of_a_one_file_warehouse_carry_into_the_first_build(
    linked: tuple[Path, Paths, pd.DataFrame], tmp_path: Path
) -> None:
    """Upgrade: a warehouse of the older layout held the linkage tables itself.

    Its keys (here: keys that a fresh linkage would not derive) must survive the
    first build into a build file of its own.
    """
    import shutil

    from datahub.warehouse.build import run_base_models, run_linkage

    _sources, paths, xref = linked
    old = Paths(tmp_path / "home")
    old.home.mkdir(parents=True)
    shutil.copy(paths.warehouse, old.warehouse)
    con = connect(old.warehouse)
    try:
        con.execute(f"ATTACH '{paths.build}' AS linked (READ_ONLY)")
        con.execute("CREATE SCHEMA IF NOT EXISTS integrated")
        con.execute(
            "CREATE TABLE integrated.person_xref AS SELECT * REPLACE "
            "('Q' || substr(person_key, 2) AS person_key) FROM linked.integrated.person_xref"
        )
        con.execute(
            "CREATE TABLE integrated.person_key_registry AS SELECT * REPLACE "
            "('Q' || substr(person_key, 2) AS person_key) FROM linked.integrated.person_key_registry"
        )
    finally:
        con.close()
    run_base_models(old)
    run_linkage(old)
    again = _df(old.build, "SELECT unique_id, person_key FROM integrated.person_xref")
    merged = xref[["unique_id", "person_key"]].merge(again, on="unique_id", suffixes=("", "_new"))
    assert len(merged) == len(xref)
    assert (merged["person_key_new"] == "Q" + merged["person_key"].str[1:]).all()

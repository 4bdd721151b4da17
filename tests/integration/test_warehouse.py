"""Warehouse build end to end over a slice of the committed sample (real DuckDB, GX, Splink).

One module-scoped build: snapshots + the first week of daily feeds + the monthly
feeds are ingested with the real pipeline, built, gated and published. Marts are
checked against numbers computed here independently, with pandas, from the CSV
rows and the generator's ground truth. A second batch (three more days) is then
ingested and rebuilt to check that person keys stay stable.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from datahub.config import SAMPLE_SOURCES, Paths
from datahub.generate.defects import QUARANTINE_REASON
from datahub.sources.contracts import DATETIME_FORMATS, FEEDS_BY_KEY
from datahub.warehouse.db import connect

pytestmark = pytest.mark.skipif(
    not (SAMPLE_SOURCES / "police").is_dir(), reason="sample_sources not generated"
)

FIRST_WEEK = ("20260601", "20260607")
SECOND_BATCH = ("20260608", "20260610")
DROP_LABELS = set(QUARANTINE_REASON) | {"near_duplicate"}


@dataclass
class Built:
    sources: Path
    paths: Paths
    xref_before: pd.DataFrame
    xref_after: pd.DataFrame


def _stamp(path: Path) -> str:
    return path.stem.rsplit("_", 1)[1]


def _copy_slice(dest: Path, lo: str, hi: str, with_snapshots: bool) -> None:
    for dept_dir in SAMPLE_SOURCES.iterdir():
        if not dept_dir.is_dir() or dept_dir.name.startswith("_"):
            continue
        (dest / dept_dir.name).mkdir(parents=True, exist_ok=True)
        for f in dept_dir.glob("*.csv"):
            stamp = _stamp(f)
            feed = FEEDS_BY_KEY[f"{dept_dir.name}.{f.stem.rsplit('_', 1)[0]}"]
            keep = (feed.kind != "event_day" and with_snapshots) or (
                feed.kind == "event_day" and lo <= stamp <= hi
            )
            if keep:
                shutil.copy2(f, dest / dept_dir.name / f.name)


def _xref(paths: Paths) -> pd.DataFrame:
    con = connect(paths.build, read_only=True)
    try:
        return con.execute("SELECT * FROM integrated.person_xref").df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    from datahub import pipeline
    from datahub.privacy.keys import ensure_dev_keys

    root = tmp_path_factory.mktemp("warehouse")
    sources = root / "sources"
    shutil.copytree(SAMPLE_SOURCES / "_truth", sources / "_truth")
    _copy_slice(sources, *FIRST_WEEK, with_snapshots=True)
    paths = Paths(root / "home")
    keyring = ensure_dev_keys(paths, announce=False)
    pipeline.run_sources(sources, paths=paths, keyring=keyring, build_docs=False)
    pipeline.build_warehouse(paths)
    before = _xref(paths)
    published_first = root / "published_first.duckdb"
    shutil.copy2(paths.published, published_first)
    # the next delivery: three more days of daily feeds
    _copy_slice(sources, *SECOND_BATCH, with_snapshots=False)
    pipeline.run_sources(sources, paths=paths, keyring=keyring, build_docs=False)
    pipeline.build_warehouse(paths)
    return Built(sources, paths, before, _xref(paths))


def _published(built: Built, sql: str) -> pd.DataFrame:
    con = connect(built.paths.published, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def _truth(built: Built) -> pd.DataFrame:
    t = pd.read_csv(built.sources / "_truth" / "records.csv", dtype=str, keep_default_na=False)
    t["row_number"] = t["row_number"].astype(int)
    return t


def _valid_rows(built: Built, department: str, feed: str) -> pd.DataFrame:
    """Rows of a feed's CSV files without a quarantine or near-duplicate defect (independent of the pipeline)."""
    spec = FEEDS_BY_KEY[f"{department}.{feed}"]
    truth = _truth(built)
    frames = []
    for f in sorted((built.sources / department).glob(f"{feed}_*.csv")):
        df = pd.read_csv(f, dtype=str, keep_default_na=False, encoding=spec.encoding)
        df["_row"] = range(1, len(df) + 1)
        labels = (
            truth[truth["file"] == f"{department}/{f.name}"]
            .groupby("row_number")["defects"]
            .agg(lambda s: set(";".join(s).split(";")) - {""})
        )
        df["_labels"] = df["_row"].map(labels).apply(lambda v: v if isinstance(v, set) else set())
        frames.append(df[df["_labels"].apply(lambda s: not (s & DROP_LABELS))])
    return pd.concat(frames, ignore_index=True)


def _parse(values: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for fmt in formats:
        missing = out.isna() & values.ne("")
        out[missing] = pd.to_datetime(values[missing], format=fmt, errors="coerce")
    return out


# ----------------------------------------------------------------------------- marts


def test_dispatch_rates_match_the_feed_rows(built: Built) -> None:
    rows = _valid_rows(built, "police", "incidents")
    received = _parse(rows["received_at"], DATETIME_FORMATS)
    dispatched = _parse(rows["dispatched_at"], DATETIME_FORMATS)
    arrived = _parse(rows["arrived_at"], DATETIME_FORMATS)
    dispatch_s = (dispatched - received).dt.total_seconds()
    target = rows["area_class"].map({"重点部位": 60, "重点区域": 180, "一般区域": 300})
    arrival_s = (arrived - dispatched).dt.total_seconds()
    expected_dispatch = (dispatch_s <= 60).sum() / dispatch_s.notna().sum()
    expected_arrival = (arrival_s <= target).sum() / arrival_s.notna().sum()

    mart = _published(
        built,
        "SELECT sum(n_incidents) AS n, sum(n_dispatched_60s) / sum(n_dispatched) AS d, "
        "sum(n_arrived_on_target) / sum(n_arrived) AS a FROM mart_dispatch",
    ).iloc[0]
    assert mart["n"] == len(rows)
    assert mart["d"] == pytest.approx(expected_dispatch)
    assert mart["a"] == pytest.approx(expected_arrival)
    # the 1/3/5-minute targets: per area class too
    by_class = _published(
        built,
        "SELECT area_class, sum(n_arrived_on_target) / sum(n_arrived) AS a FROM mart_dispatch GROUP BY 1",
    ).set_index("area_class")["a"]
    for area, group in rows.groupby("area_class"):
        idx = group.index
        exp = (arrival_s[idx] <= target[idx]).sum() / arrival_s[idx].notna().sum()
        assert by_class[area] == pytest.approx(exp)


def test_hotspot_rollup_totals_match_the_feed_rows(built: Built) -> None:
    rows = _valid_rows(built, "police", "incidents")
    addresses = pd.read_csv(built.sources / "_truth" / "addresses.csv", dtype=str)
    by_grid = rows.merge(addresses, on="address_code", how="left").groupby("grid_code").size()
    hot = _published(
        built,
        "SELECT division_level, grid_code, n_incidents FROM mart_incident_hotspots WHERE hour_of_week IS NULL",
    )
    city = hot[hot["division_level"] == "city"]["n_incidents"].item()
    grids = hot[hot["division_level"] == "grid"].set_index("grid_code")["n_incidents"]
    # incidents at addresses missing from the register (quarantined) have no grid
    known = rows["address_code"].isin(
        _published(built, "SELECT address_code FROM integrated.dim_address")["address_code"]
    )
    assert city == known.sum()
    common = grids.index.intersection(by_grid.index)
    assert len(common) > 10
    assert (grids[common] == by_grid[common]).all()


def test_dispute_counts_and_resolution_match_the_feed_rows(built: Built) -> None:
    rows = _valid_rows(built, "community", "disputes")
    resolved = rows["status"].eq("办结") & rows["resolved_on"].ne("")
    mart = _published(
        built, "SELECT sum(n_disputes) AS n, sum(n_resolved) AS r FROM mart_dispute_escalation"
    ).iloc[0]
    assert (mart["n"], mart["r"]) == (len(rows), resolved.sum())


def test_sensor_coverage_matches_the_snapshot(built: Built) -> None:
    rows = _valid_rows(built, "police", "sensors")
    in_use = rows[rows["status"] == "在用"]
    expected = in_use.groupby("sensor_type").size()
    mart = _published(
        built,
        "SELECT sum(n_video) AS v, sum(n_face) AS f, sum(n_vehicle) AS c FROM mart_sensor_blind_spots",
    ).iloc[0]
    assert mart["v"] == expected.get("视频监控", 0)
    assert mart["f"] == expected.get("人脸识别", 0)
    assert mart["c"] == expected.get("车辆卡口", 0)


def test_every_mart_column_has_a_bilingual_comment(built: Built) -> None:
    cols = _published(
        built,
        "SELECT table_name, column_name, comment FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND table_name LIKE 'mart_%'",
    )
    assert cols["table_name"].nunique() == 7
    assert cols["comment"].str.contains(" / ", regex=False).all(), cols[cols["comment"].isna()]


# --------------------------------------------------------------------------- linkage


def test_linkage_scores_above_targets(built: Built) -> None:
    from datahub.linkage.score import read_truth, score_linkage

    score = score_linkage(built.xref_after, read_truth(built.sources))
    assert score.precision >= 0.99, score
    assert score.recall >= 0.95, score
    assert score.unmatched_records == 0


def test_person_keys_are_stable_across_an_incremental_batch(built: Built) -> None:
    before = built.xref_before.set_index("unique_id")["person_key"]
    after = built.xref_after.set_index("unique_id")["person_key"]
    assert len(after) > len(before)  # the second batch added records
    common = before.index.intersection(after.index)
    assert len(common) == len(before)  # no earlier record vanished
    moved = before[common] != after[common]
    # a key may only disappear when the new batch proved two earlier persons to be one
    lost = set(before[common][moved])
    merged_into = after[common][moved]
    assert all(k in set(before) for k in merged_into), "records moved to a brand-new key"
    assert len(lost) <= 0.01 * before.nunique(), (len(lost), before.nunique())


# --------------------------------------------------------------------------- publish


def test_published_snapshot_holds_no_raw_vault_or_identifier(built: Built) -> None:
    from datahub.privacy.leaks import collect_source_values, scan_paths

    schemas = set(
        _published(built, "SELECT DISTINCT schema_name FROM duckdb_tables()")["schema_name"]
    )
    assert schemas == {"main", "staging", "integrated"}
    assert not (built.paths.published.parent / "vault").exists()
    report = scan_paths([built.paths.published], collect_source_values(built.sources))
    assert not report.findings, report


def test_jurisdiction_extract_contains_only_its_rows(built: Built, tmp_path: Path) -> None:
    from datahub.pipeline import publish_extract_file
    from datahub.privacy.leaks import collect_source_values, scan_paths

    town = _published(
        built,
        "SELECT township_code FROM mart_incident_hotspots WHERE division_level = 'township' "
        "AND hour_of_week IS NULL ORDER BY n_incidents DESC LIMIT 1",
    )["township_code"].item()
    out = tmp_path / "extract.duckdb"
    publish_extract_file(built.paths, town, out, threshold=5)
    con = duckdb.connect(str(out), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name='main'"
            ).fetchall()
        ]
        assert "mart_dispatch" in tables and "mart_incident_hotspots" in tables
        for table in tables:
            if table.startswith("_"):
                continue
            cols = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
            for col in ("township_code", "village_code", "grid_code"):
                if col in cols:
                    outside = con.execute(
                        f"SELECT count(*) FROM {table} WHERE {col} IS NOT NULL AND NOT starts_with({col}, ?)",
                        [town],
                    ).fetchone()
                    assert outside == (0,), (table, col)
            if "township_code" in cols:
                assert con.execute(
                    f"SELECT count(*) FROM {table} WHERE township_code IS NULL"
                ).fetchone() == (0,)
        small = con.execute(
            "SELECT count(*) FROM mart_incident_hotspots WHERE n_incidents > 0 AND n_incidents < 5"
        ).fetchone()
        hidden = con.execute(
            "SELECT count(*) FROM mart_incident_hotspots WHERE n_incidents IS NULL"
        ).fetchone()
    finally:
        con.close()
    assert small == (0,)
    assert hidden is not None and hidden[0] > 0  # suppression really happened
    assert not scan_paths([out], collect_source_values(built.sources)).findings


def _reader(path: str, queue: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    """Open the snapshot again and again; each time every table must match the manifest."""
    seen: set[str] = set()
    errors: list[str] = []
    reads = attempts = 0
    while not stop.is_set() or attempts < 3:
        attempts += 1
        try:
            con = duckdb.connect(path, read_only=True)
            try:
                con.execute("BEGIN TRANSACTION")
                manifest = con.execute(
                    "SELECT run_id, table_name, row_count FROM _publish_manifest"
                ).fetchall()
                for run_id, table, n in manifest:
                    seen.add(run_id)
                    got = con.execute(f"SELECT count(*) FROM {table}").fetchone()
                    if got != (n,):
                        errors.append(f"{table}: {got} != {n}")
                con.execute("COMMIT")
            finally:
                con.close()
            reads += 1
        except Exception as exc:  # report, never raise in the child
            errors.append(type(exc).__name__ + ": " + str(exc)[:200])
    queue.put((reads, sorted(seen), errors))


def test_reader_is_never_blocked_nor_sees_half_a_snapshot(built: Built) -> None:
    from datahub.warehouse.build import publish

    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    stop = ctx.Event()
    proc = ctx.Process(target=_reader, args=(str(built.paths.published), queue, stop))
    proc.start()
    try:
        # while the reader runs: the warehouse is open for writing and published repeatedly
        for i in range(4):
            publish(built.paths, run_id=f"concurrent-{i}-{dt.datetime.now().timestamp()}")
    finally:
        stop.set()
        reads, seen, errors = queue.get(timeout=600)
        proc.join()
    assert errors == []
    assert reads >= 3
    assert len(seen) >= 1


def test_cli_sql_catalog_and_formats(built: Built) -> None:
    from typer.testing import CliRunner

    from datahub.cli import app

    runner = CliRunner()
    home = ["--home", str(built.paths.home)]
    out = runner.invoke(
        app, ["sql", "SELECT count(*) AS n FROM mart_dispatch", "--format", "json", *home]
    )
    assert out.exit_code == 0, out.output
    assert '"n":' in out.output
    out = runner.invoke(
        app, ["sql", "SELECT station FROM mart_dispatch LIMIT 2", "--format", "csv", *home]
    )
    assert out.exit_code == 0 and out.output.startswith("station")
    out = runner.invoke(app, ["sql", "CREATE TABLE x AS SELECT 1", *home])
    assert out.exit_code == 1  # read-only
    out = runner.invoke(app, ["catalog", "mart_dispatch", *home])
    assert out.exit_code == 0 and "一分钟派警率" in out.output

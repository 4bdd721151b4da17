"""`datahub prune-staging`: staged Parquet of settled batches goes, nothing else does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datahub import pipeline
from datahub.cli import app
from datahub.config import SAMPLE_SOURCES, Paths
from datahub.privacy.keys import init_keys
from datahub.warehouse.db import connect


def _ledger(paths: Paths) -> list[tuple[str, str, int]]:
    con = connect(paths.warehouse, read_only=True)
    try:
        rows = con.execute(
            "SELECT batch_id, status, rows_read FROM audit.batch_ledger ORDER BY batch_id"
        ).fetchall()
    finally:
        con.close()
    return [(str(b), str(s), int(n)) for b, s, n in rows]


def test_prune_removes_only_settled_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(SAMPLE_SOURCES / "community", sources / "community")
    shutil.copytree(SAMPLE_SOURCES / "government", sources / "government")
    paths = Paths(tmp_path / "home")
    monkeypatch.setenv("DATAHUB_HOME", str(paths.home))
    monkeypatch.delenv("DATAHUB_KEY_FILE", raising=False)
    ring = init_keys(paths)
    pipeline.run_sources(
        sources, paths=paths, keyring=ring, departments=("community",), build_docs=False
    )
    # the same files again: the loader records them as duplicates (settled too)
    pipeline.run_sources(
        sources, paths=paths, keyring=ring, departments=("community",), build_docs=False
    )
    # prepared but not loaded yet: must survive
    waiting = pipeline.prepare(
        sources / "government" / "units_20260731.csv", paths=paths, keyring=ring
    )
    ledger = _ledger(paths)
    statuses = {s for _b, s, _n in ledger}
    assert {"loaded", "skipped_duplicate_file"} <= statuses
    staged = {p.name for p in pipeline.staged_batches(paths)}
    assert staged == {b for b, _s, _n in ledger} | {waiting.name}

    runner = CliRunner()
    dry = runner.invoke(app, ["prune-staging", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would remove {len(ledger)} staged batch folder(s)" in dry.output
    assert {p.name for p in pipeline.staged_batches(paths)} == staged

    result = runner.invoke(app, ["prune-staging"])
    assert result.exit_code == 0, result.output
    assert f"removed {len(ledger)} staged batch folder(s)" in result.output
    assert "kept 1" in result.output
    assert [p.name for p in pipeline.staged_batches(paths)] == [waiting.name]
    assert _ledger(paths) == ledger  # the ledger is the record; pruning never touches it

    # the waiting batch still loads, and a later run of the same files is still idempotent
    pipeline.load(waiting, paths=paths, keyring=ring)
    pipeline.run_sources(
        sources, paths=paths, keyring=ring, departments=("community",), build_docs=False
    )
    after = _ledger(paths)
    n_files = len(list((sources / "community").glob("*.csv")))
    assert len(after) == len(ledger) + 1 + n_files  # units loaded; community files seen again
    assert all(s in ("loaded", "skipped_duplicate_file") for _b, s, _n in after)


def test_loading_a_pruned_batch_again_returns_the_ledgers_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load task re-run after the prune (Airflow clear/retry) finds the ledger, not a crash."""
    from datahub.warehouse.loader import BatchRejected

    monkeypatch.delenv("DATAHUB_KEY_FILE", raising=False)
    sources = tmp_path / "sources"
    shutil.copytree(SAMPLE_SOURCES / "community", sources / "community")
    paths = Paths(tmp_path / "home")
    ring = init_keys(paths)
    batch = pipeline.prepare(
        sources / "community" / "patrol_teams_20260731.csv", paths=paths, keyring=ring
    )
    first = pipeline.load(batch, paths=paths, keyring=ring)
    assert first.status == "loaded" and first.rows_loaded > 0
    assert pipeline.prune_staged(paths).removed == [batch.name]
    assert not batch.exists()
    assert pipeline.load(batch, paths=paths, keyring=ring) == first
    assert _ledger(paths) == [(batch.name, "loaded", first.rows_read)]  # nothing loaded twice

    # a rejected batch stays rejected
    bad = sources / "community" / "grid_members_20260731.csv"
    bad.write_bytes(b"\x00\x01\x02 not a csv\n")
    rejected = pipeline.prepare(bad, paths=paths, keyring=ring)
    with pytest.raises(BatchRejected):
        pipeline.load(rejected, paths=paths, keyring=ring)
    pipeline.prune_staged(paths)
    with pytest.raises(BatchRejected) as again:
        pipeline.load(rejected, paths=paths, keyring=ring)
    assert again.value.outcome.status == "rejected"

    # a folder the ledger never saw is an error that says what to do
    with pytest.raises(FileNotFoundError, match="prepare the file again"):
        pipeline.load(
            paths.staging / "police__incidents-20260601-0000000000-abcdef",
            paths=paths,
            keyring=ring,
        )


def test_datahub_run_prunes_settled_batches_unless_asked_to_keep_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(SAMPLE_SOURCES / "community", sources / "community")
    paths = Paths(tmp_path / "home")
    monkeypatch.setenv("DATAHUB_HOME", str(paths.home))
    monkeypatch.delenv("DATAHUB_KEY_FILE", raising=False)
    init_keys(paths)
    n_files = len(list((sources / "community").glob("*.csv")))
    runner = CliRunner()

    kept = runner.invoke(app, ["run", "--sources", str(sources), "--no-docs", "--keep-staging"])
    assert kept.exit_code == 0, kept.output
    assert len(list(pipeline.staged_batches(paths))) == n_files

    pruned = runner.invoke(app, ["run", "--sources", str(sources), "--no-docs"])
    assert pruned.exit_code == 0, pruned.output
    # both runs' batches are settled (loaded, then skipped as duplicates): all go
    assert f"staging: removed {2 * n_files} staged batch folder(s)" in pruned.output
    assert list(pipeline.staged_batches(paths)) == []
    assert len(_ledger(paths)) == 2 * n_files

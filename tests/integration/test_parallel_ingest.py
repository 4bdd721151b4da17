"""`run_sources(workers=2)` (prepare in a process pool, load here) equals the one-process run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from datahub import pipeline
from datahub.config import SAMPLE_SOURCES, Paths
from datahub.privacy.keys import Keyring, init_keys, load_keyring
from datahub.sources.contracts import FEEDS
from datahub.warehouse.db import connect

#: A subset that still has GBK, BOM/CRLF, snapshots, monthly feeds and quarantined rows.
DEPARTMENTS = ("government", "social_security", "community")
#: Columns that name the batch or the moment of loading, not the data.
RUN_COLUMNS = {"_batch_id", "_loaded_at", "batch_id", "started_at", "finished_at"}


def _tables(paths: Paths) -> dict[str, pd.DataFrame]:
    con = connect(paths.warehouse, read_only=True)
    out: dict[str, pd.DataFrame] = {}
    try:
        for feed in FEEDS:
            if feed.department not in DEPARTMENTS:
                continue
            for schema in ("raw", "quarantine"):
                df = con.execute(f"SELECT * FROM {schema}.{feed.table}").df()
                df = df.drop(columns=[c for c in df.columns if c in RUN_COLUMNS])
                keys = [c for c in ("_source_file", "_row_number") if c in df.columns]
                out[f"{schema}.{feed.table}"] = df.sort_values(keys).reset_index(drop=True)
        ledger = con.execute("SELECT * FROM audit.batch_ledger").df()
        ledger = ledger.drop(columns=[c for c in ledger.columns if c in RUN_COLUMNS])
        out["ledger"] = ledger.sort_values("source_file").reset_index(drop=True)
    finally:
        con.close()
    return out


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("key") / "datahub.key"


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, key_file: Path
) -> tuple[list[pipeline.FileOutcome], list[pipeline.FileOutcome], Paths, Paths]:
    serial, parallel = (Paths(tmp_path_factory.mktemp(n)) for n in ("serial", "parallel"))
    init_keys(serial, key_file)
    keyring = load_keyring(serial, key_file)
    done = [
        pipeline.run_sources(
            SAMPLE_SOURCES,
            paths=p,
            keyring=keyring,
            departments=DEPARTMENTS,
            build_docs=False,
            workers=w,
        )
        for p, w in ((serial, 1), (parallel, 2))
    ]
    return done[0], done[1], serial, parallel


def test_parallel_prepare_loads_the_same_rows_in_the_same_order(runs) -> None:  # type: ignore[no-untyped-def]
    one, two, serial, parallel = runs
    assert [o.path for o in one] == [o.path for o in two]
    assert [(o.status, o.rows_read, o.rows_loaded, o.rows_quarantined) for o in one] == [
        (o.status, o.rows_read, o.rows_loaded, o.rows_quarantined) for o in two
    ]
    assert sum(o.rows_quarantined for o in two) > 0  # the subset exercises the quarantine
    a, b = _tables(serial), _tables(parallel)
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_like=False, obj=name)


def test_parallel_run_staged_every_batch_in_its_own_home(runs) -> None:  # type: ignore[no-untyped-def]
    _, two, _, parallel = runs
    staged = {p.name for p in pipeline.staged_batches(parallel)}
    assert {o.batch_id for o in two} <= staged


def _vault_tokens(paths: Paths, keyring: Keyring) -> set[tuple[str, str]]:
    from datahub.privacy.vault import open_vault

    with open_vault(paths, keyring, read_only=True) as vault:
        return set(vault.tokens().itertuples(index=False, name=None))


def _staged_vault_rows(paths: Paths) -> int:
    import pyarrow.parquet as pq

    from datahub.quality import staging as st

    return sum(pq.read_metadata(b / st.VAULT).num_rows for b in pipeline.staged_batches(paths))


def _warehouse_tokens(paths: Paths) -> set[str]:
    con = connect(paths.warehouse, read_only=True)
    try:
        tables = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND column_name LIKE '%\\_token' ESCAPE '\\'"
        ).fetchall()
        assert len(tables) > 2
        return {
            t
            for table, column in tables
            for (t,) in con.execute(
                f'SELECT DISTINCT "{column}" FROM raw."{table}" WHERE "{column}" IS NOT NULL'
            ).fetchall()
        }
    finally:
        con.close()


def test_one_process_run_sends_committed_tokens_once_and_the_vault_is_the_same(
    runs: tuple[list[pipeline.FileOutcome], list[pipeline.FileOutcome], Paths, Paths],
    key_file: Path,
) -> None:
    """In one process the loader tells the engine what the vault holds, so later files stage
    fewer vault rows; worker processes are not told and stage every token of every file.
    The vaults end up equal and hold every token of the warehouse."""
    _, _, serial, parallel = runs
    keyring = load_keyring(serial, key_file)
    assert _staged_vault_rows(serial) < _staged_vault_rows(parallel)
    vault = _vault_tokens(serial, keyring)
    assert vault == _vault_tokens(parallel, keyring)
    warehouse = _warehouse_tokens(serial)
    assert warehouse and warehouse <= {token for _, token in vault}


def test_what_the_engine_knows_of_one_vault_does_not_thin_another(
    tmp_path_factory: pytest.TempPathFactory, key_file: Path
) -> None:
    """Two homes, one process, one key: the second run's vault still gets every token."""
    homes = [Paths(tmp_path_factory.mktemp(n)) for n in ("first", "second")]
    if not key_file.exists():  # this test alone
        init_keys(homes[0], key_file)
    keyring = load_keyring(homes[0], key_file)
    for paths in homes:
        pipeline.run_sources(
            SAMPLE_SOURCES,
            paths=paths,
            keyring=keyring,
            departments=("social_security",),
            build_docs=False,
        )
    first, second = (_vault_tokens(p, keyring) for p in homes)
    assert first == second
    for paths in homes:
        assert _warehouse_tokens(paths) <= {token for _, token in _vault_tokens(paths, keyring)}

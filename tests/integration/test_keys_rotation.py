"""Key rotation end to end: real vault and warehouse DuckDB files, through the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_privacy_helpers import make_id  # noqa: E402

from datahub.cli import app  # noqa: E402
from datahub.config import Paths  # noqa: E402
from datahub.privacy.keys import KeyProblem, load_keyring  # noqa: E402
from datahub.privacy.pseudonymise import pseudonymise_feed  # noqa: E402
from datahub.privacy.rotation import rotate_keys  # noqa: E402
from datahub.privacy.vault import open_vault  # noqa: E402
from datahub.sources.contracts import FEEDS_BY_KEY  # noqa: E402
from datahub.warehouse.build import publish  # noqa: E402
from datahub.warehouse.db import connect  # noqa: E402
from datahub.warehouse.retokenise import ensure_warehouse_key, token_columns  # noqa: E402


def _all_varchar_values(path: Path) -> list[str]:
    con = connect(path, read_only=True)
    try:
        cols = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR' AND table_catalog = current_database()"
        ).fetchall()
        out: list[str] = []
        for s, t, c in cols:
            out += [
                str(r[0])
                for r in con.execute(
                    f'SELECT "{c}" FROM "{s}"."{t}" WHERE "{c}" IS NOT NULL'
                ).fetchall()
            ]
        return out
    finally:
        con.close()


def _load(paths: Paths, ring) -> pd.DataFrame:
    """A stand-in for loader and build: pseudonymise two feeds, append the vault, write raw and a
    table of the warehouse's own, a mart into the build file, and publish it."""
    pop = FEEDS_BY_KEY["government.population"]
    ins = FEEDS_BY_KEY["social_security.insured"]
    n = 30
    ids = [make_id(f"19{50 + i}0101", 100 + i) for i in range(n)]
    fp = pd.DataFrame({c: [f"x{i}" for i in range(n)] for c in pop.column_names}, dtype="str")
    fp["id_number"], fp["name"] = ids, [f"张{chr(0x4E00 + i)}" for i in range(n)]
    fp["phone"] = [f"1391234{5600 + i}" for i in range(n)]
    fi = pd.DataFrame({c: [f"y{i}" for i in range(n)] for c in ins.column_names}, dtype="str")
    fi["id_number"], fi["name"], fi["phone"] = ids, fp["name"], ""
    pp = pseudonymise_feed(pop, fp, ring)
    pi = pseudonymise_feed(ins, fi, ring)
    with open_vault(paths, ring) as vault:
        vault.append(pp.vault)
        vault.append(pi.vault)
    con = connect(paths.warehouse)
    try:
        con.execute("BEGIN TRANSACTION")
        ensure_warehouse_key(con, ring)
        con.execute("CREATE SCHEMA raw; CREATE SCHEMA marts")
        con.register("pp", pp.frame)
        con.register("pi", pi.frame)
        con.execute("CREATE TABLE raw.government__population AS SELECT * FROM pp")
        con.execute("CREATE TABLE raw.social_security__insured AS SELECT * FROM pi")
        con.execute(
            "CREATE TABLE marts.person AS SELECT p.id_number_token AS person_token, "
            "p.resident_birth_year AS birth_year FROM pp p JOIN pi i USING (id_number_token)"
        )
        con.execute("CREATE VIEW marts.v_person AS SELECT * FROM marts.person")
        con.execute("COMMIT")
    finally:
        con.close()
    con = connect(paths.build)
    try:
        con.execute("CREATE SCHEMA marts")
        con.register("pp", pp.frame)
        con.execute(
            "CREATE TABLE marts.population AS SELECT id_number_token, name_token, "
            "resident_birth_year AS birth_year FROM pp"
        )
    finally:
        con.close()
    publish(paths)
    return pp.frame


@pytest.mark.parametrize("via_cli", [False, True])
def test_rotation_leaves_no_old_token(
    tmp_path: Path, via_cli: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAHUB_HOME", str(tmp_path))
    monkeypatch.delenv("DATAHUB_KEY_FILE", raising=False)
    paths = Paths(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["keys", "init"])
    assert result.exit_code == 0, result.output
    ring = load_keyring(paths)
    frame = _load(paths, ring)
    old_token = frame["id_number_token"].iloc[3]
    con = connect(paths.warehouse, read_only=True)
    try:
        n_cols = len(token_columns(con))
    finally:
        con.close()
    assert n_cols >= 8

    if via_cli:
        result = runner.invoke(app, ["keys", "rotate"])
        assert result.exit_code == 0, result.output
        assert "key version 1 → 2" in result.output
    else:
        report = rotate_keys(paths)
        assert (report.old_version, report.new_version) == (1, 2)
        assert report.warehouse is not None and report.warehouse.total > 0
        assert report.build is not None and report.build.total == 2 * 30

    new_ring = load_keyring(paths)
    assert new_ring.current_version == 2 and new_ring.pending_version is None
    assert paths.published.exists()
    stores = (paths.warehouse, paths.build, paths.vault, paths.published)
    for values in map(_all_varchar_values, stores):
        old = [v for v in values if v.startswith("k1_")]
        assert not old, f"{len(old)} version-1 tokens remain"
        assert any(v.startswith("k2_") for v in values)

    # the same person still joins, and re-identification works with the new token
    con = connect(paths.warehouse, read_only=True)
    try:
        joined = con.execute("SELECT count(*) FROM marts.v_person").fetchone()[0]
        new_token = con.execute(
            "SELECT id_number_token FROM raw.government__population WHERE person_no = 'x3'"
        ).fetchone()[0]
        both = con.execute(
            "SELECT count(*) FROM raw.government__population p JOIN raw.social_security__insured i "
            "USING (id_number_token)"
        ).fetchone()[0]
    finally:
        con.close()
    assert joined == 30 and both == 30
    assert new_token != old_token and new_token.startswith("k2_")
    if via_cli:
        result = runner.invoke(
            app, ["reidentify", new_token, "--reason", "rotation test", "--actor", "t"]
        )
        assert result.exit_code == 0
        assert result.output.strip() == make_id("19530101", 103)
        result = runner.invoke(
            app, ["reidentify", old_token, "--reason", "old token", "--actor", "t"]
        )
        assert result.exit_code != 0
        result = runner.invoke(app, ["audit", "verify"])
        assert result.exit_code == 0 and "2 entries" in result.output
        result = runner.invoke(app, ["keys", "status"])
        assert result.exit_code == 0, result.output
    else:
        with open_vault(paths, new_ring) as vault:
            assert vault.reidentify(new_token, "rotation test", "t") == make_id("19530101", 103)

    # the old key file no longer fits the vault or the warehouse
    with pytest.raises(KeyProblem), open_vault(paths, ring):
        pass
    con = connect(paths.warehouse)
    try:
        with pytest.raises(KeyProblem, match="version 2"):
            ensure_warehouse_key(con, ring)
        ensure_warehouse_key(con, new_ring)
    finally:
        con.close()


def test_rotation_without_warehouse_rotates_vault_only(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    from datahub.privacy.keys import init_keys

    ring = init_keys(paths)
    feed = FEEDS_BY_KEY["community.grid_members"]
    frame = pd.DataFrame({c: ["m1", "m2"] for c in feed.column_names}, dtype="str")
    frame["name"], frame["phone"] = ["李娜", "王芳"], ["13900001111", "0833-5551234"]
    p = pseudonymise_feed(feed, frame, ring)
    with open_vault(paths, ring) as vault:
        vault.append(p.vault)
    report = rotate_keys(paths)
    assert report.warehouse is None and report.vault_tokens == len(p.vault)
    assert not paths.warehouse.exists()
    assert all(v.startswith(("k2_", "name", "phone")) for v in _all_varchar_values(paths.vault))
    with open_vault(paths, load_keyring(paths)) as vault:
        tokens = vault.tokens()["token"].tolist()
        assert all(t.startswith("k2_") for t in tokens)
        values = {vault.reidentify(t, "test", "t") for t in tokens}
    assert {"李娜", "13900001111", "0833-5551234"} <= values


def test_rotation_refuses_unmapped_warehouse_tokens(tmp_path: Path) -> None:
    """A warehouse token missing from the vault rolls the whole rotation back."""
    paths = Paths(tmp_path)
    from datahub.privacy.keys import init_keys

    ring = init_keys(paths)
    frame = _load(paths, ring)
    con = connect(paths.warehouse)
    try:
        con.execute("INSERT INTO marts.person VALUES ('k1_' || repeat('ab', 16), 1990)")
    finally:
        con.close()
    with pytest.raises(RuntimeError, match="no entry in the vault"):
        rotate_keys(paths)
    values = _all_varchar_values(paths.warehouse)
    assert frame["id_number_token"].iloc[0] in values  # untouched
    assert not any(v.startswith("k2_") for v in values)
    # the key file keeps version 1 current (2 is pending, resumed on the next run)
    assert load_keyring(paths).current_version == 1

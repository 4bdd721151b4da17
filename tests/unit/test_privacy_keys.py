"""The key file: creation, loading, refusal of missing/badly-permissioned/wrong keys."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from datahub.config import ENV_KEY_FILE, Paths
from datahub.privacy.keys import (
    KeyProblem,
    add_version,
    check_canary,
    ensure_dev_keys,
    init_keys,
    load_keyring,
    promote_pending,
    resolve_key_file,
    write_keyring,
)


def test_init_creates_private_file_and_refuses_overwrite(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    ring = init_keys(paths)
    assert ring.path == paths.key_file and paths.key_file.exists()
    assert stat.S_IMODE(paths.key_file.stat().st_mode) == 0o600
    with pytest.raises(KeyProblem, match="refusing to overwrite"):
        init_keys(paths)
    loaded = load_keyring(paths)
    assert loaded.current_version == 1
    assert loaded.domain_key("id_number") == ring.domain_key("id_number")
    assert loaded.fingerprint() == ring.fingerprint()
    assert len(loaded.vault_key) == 64
    assert "masters=" not in repr(loaded) and "vault_key=" not in repr(loaded)


def test_missing_key_file_is_a_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(KeyProblem, match="datahub keys init") as exc:
        load_keyring(Paths(tmp_path))
    assert isinstance(exc.value, KeyError)
    assert str(exc.value).startswith("no key file")  # not repr-quoted like a plain KeyError


def test_group_readable_key_file_refused(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    init_keys(paths)
    os.chmod(paths.key_file, 0o644)
    with pytest.raises(KeyProblem, match="chmod 600"):
        load_keyring(paths)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"format": 1}',
        '{"format": 1, "current_version": 1, "versions": {"1": {"master_key": "AAAA"}}, "vault_key": "AAAA"}',
    ],
)
def test_malformed_key_file_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "k.json"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyProblem):
        load_keyring(Paths(tmp_path), path)


def test_env_var_overrides_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "secrets" / "dh.key"
    monkeypatch.setenv(ENV_KEY_FILE, str(elsewhere))
    paths = Paths(tmp_path / "home")
    assert resolve_key_file(paths) == elsewhere.resolve()
    ensure_dev_keys(paths, announce=False)
    assert elsewhere.exists() and not (tmp_path / "home").exists()


def test_ensure_dev_keys_creates_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = Paths(tmp_path)
    first = ensure_dev_keys(paths)
    assert str(paths.key_file) in capsys.readouterr().out
    second = ensure_dev_keys(paths)
    assert capsys.readouterr().out == ""
    assert first.canary() == second.canary()


def test_ensure_dev_keys_refuses_to_mint_a_key_next_to_existing_data(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    paths.warehouse.write_bytes(b"")  # a warehouse exists, its key file is gone
    with pytest.raises(KeyProblem, match="restore the key file"):
        ensure_dev_keys(paths, announce=False)
    assert not paths.key_file.exists()


def test_canary_detects_wrong_key_and_version(tmp_path: Path) -> None:
    a = init_keys(Paths(tmp_path / "a"))
    b = init_keys(Paths(tmp_path / "b"))
    check_canary(a, a.canary(), where="the warehouse")
    check_canary(a, None, where="a new warehouse")
    with pytest.raises(KeyProblem, match="canary mismatch"):
        check_canary(a, b.canary(), where="the warehouse")
    rotated = promote_pending(add_version(a))
    assert rotated.current_version == 2
    with pytest.raises(KeyProblem, match="version 1"):
        check_canary(rotated, a.canary(), where="the warehouse")
    assert rotated.versions == (2,)  # the old master key is dropped after rotation
    with pytest.raises(KeyProblem, match="canary mismatch"):
        check_canary(rotated, a.canary(1), where="the warehouse", version=1)


def test_versions_survive_round_trip(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    ring = init_keys(paths)
    pending = add_version(ring)
    assert pending.pending_version == 2 and pending.current_version == 1
    assert add_version(pending).masters[2] == pending.masters[2]  # resumes, no new key
    write_keyring(pending, ring.path, overwrite=True)
    loaded = load_keyring(paths)
    assert loaded.pending_version == 2 and loaded.versions == (1, 2)
    assert loaded.domain_key("phone", 2) == pending.domain_key("phone", 2)
    assert loaded.domain_key("phone", 1) != loaded.domain_key("phone", 2)
    data = json.loads(ring.path.read_text())
    assert set(data) >= {"current_version", "versions", "vault_key"}


def test_airflow_connection_names_the_key_file(tmp_path: Path) -> None:
    """Inside a task, the real Airflow connection ``datahub_keys`` (env secrets backend) wins."""
    import subprocess
    import sys

    target = tmp_path / "from_airflow.key"
    # dag.test() in earlier tests leaves AIRFLOW_CTX_* in this process's environment:
    # drop them so that "outside a task" really is outside one.
    env = {
        k: v
        for k, v in os.environ.items()
        if k != ENV_KEY_FILE and not k.startswith("AIRFLOW_CTX_")
    }
    env["AIRFLOW_CONN_DATAHUB_KEYS"] = json.dumps(
        {"conn_type": "generic", "extra": {"key_file": str(target)}}
    )
    code = (
        "from datahub.config import Paths; from datahub.privacy.keys import resolve_key_file; "
        f"print(resolve_key_file(Paths.from_env({str(tmp_path / 'home')!r})))"
    )
    outside = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert outside.stdout.strip() == str(tmp_path / "home" / "keys" / "master.key")  # not in a task
    env["AIRFLOW_CTX_DAG_ID"] = "datahub_daily"  # set by Airflow for a running task
    inside = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert inside.stdout.strip().splitlines()[-1] == str(target)

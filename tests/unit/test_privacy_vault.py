"""Vault: AES-SIV vectors, idempotent append, key refusal, re-identification and its audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_privacy_helpers import make_id, make_keyring

from datahub.config import Paths
from datahub.privacy.cipher import VaultCipher
from datahub.privacy.keys import KeyProblem, init_keys, load_keyring
from datahub.privacy.pseudonymise import pseudonymise_feed
from datahub.privacy.vault import ReidentificationError, open_vault, read_audit_head
from datahub.sources.contracts import FEEDS_BY_KEY
from datahub.warehouse.db import connect

# RFC 5297 appendix A.1 (deterministic authenticated encryption)
A1_KEY = bytes.fromhex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
A1_AD = bytes.fromhex("101112131415161718191a1b1c1d1e1f2021222324252627")
A1_PT = bytes.fromhex("112233445566778899aabbccddee")
A1_OUT = bytes.fromhex("85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c")
# RFC 5297 appendix A.2 (nonce-based: the nonce is the last associated-data item)
A2_KEY = bytes.fromhex("7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f")
A2_AD = [
    bytes.fromhex(
        "00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100"
    ),
    bytes.fromhex("102030405060708090a0"),
    bytes.fromhex("09f911029d74e35bd84156c5635688c0"),
]
A2_PT = bytes.fromhex(
    "7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67205349562d414553"
)
A2_OUT = bytes.fromhex(
    "7bdb6e3b432667eb06f4d14bff2fbd0fcb900f2fddbe404326601965c889bf17"
    "dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d"
)


def test_rfc5297_a1_deterministic() -> None:
    c = VaultCipher(A1_KEY)
    assert c.encrypt(A1_PT, [A1_AD]) == A1_OUT
    assert c.encrypt(A1_PT, [A1_AD]) == A1_OUT  # deterministic
    assert c.decrypt(A1_OUT, [A1_AD]) == A1_PT


def test_rfc5297_a2_nonce_based() -> None:
    c = VaultCipher(A2_KEY)
    assert c.encrypt(A2_PT, A2_AD) == A2_OUT
    assert c.decrypt(A2_OUT, A2_AD) == A2_PT


def test_domain_is_bound_and_tampering_fails() -> None:
    c = VaultCipher(bytes(64))
    ct = c.seal("name", "张伟")
    assert c.open("name", ct) == "张伟"
    with pytest.raises(ValueError):
        c.open("phone", ct)
    with pytest.raises(ValueError):
        c.open("name", ct[:-1] + bytes([ct[-1] ^ 1]))


def _vault_entries(ring, n: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    feed = FEEDS_BY_KEY["police.incident_persons"]
    frame = pd.DataFrame({c: [f"v{i}" for i in range(n)] for c in feed.column_names}, dtype="str")
    frame["name"] = ["张伟", "李娜", "王芳", "张伟", "刘洋"][:n]
    frame["id_number"] = [make_id("19800101", i) for i in range(n)]
    frame["phone"] = [f"1391234{5670 + i}" for i in range(n)]
    p = pseudonymise_feed(feed, frame, ring)
    return p.frame, p.vault


def test_append_is_idempotent_and_reidentify_logs(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    ring = make_keyring(tmp_path)
    frame, entries = _vault_entries(ring)
    with open_vault(paths, ring) as v:
        added = v.append(entries)
        assert added == len(entries) == entries["token"].nunique()
        assert v.append(entries) == 0
        assert v.append(pd.concat([entries, entries])) == 0
        assert v.count() == added
        tok = frame["id_number_token"].iloc[2]
        assert v.reidentify(tok, "case 2026-0042 court order", actor="officer7") == make_id(
            "19800101", 2
        )
        assert (
            v.reidentify(frame["name_token"].iloc[1], "case 2026-0042", actor="officer7") == "李娜"
        )
        with pytest.raises(ReidentificationError, match="reason"):
            v.reidentify(tok, "   ", actor="officer7")
        with pytest.raises(ReidentificationError, match="not in the vault"):
            v.reidentify("k1_" + "0" * 32, "curious", actor="officer7")
        with pytest.raises(ReidentificationError, match="must not contain"):
            v.reidentify(tok, f"asked by {make_id('19700101', 5)}", actor="officer7")
        with pytest.raises(ReidentificationError, match="not a token"):
            v.reidentify(make_id("19800101", 2), "typed the ID", actor="officer7")
        report = v.verify_audit_log()
    assert report.ok and report.entries == 6
    lines = [json.loads(ln) for ln in paths.audit_log.read_text(encoding="utf-8").splitlines()]
    assert [e["outcome"] for e in lines] == [
        "ok:id_number",
        "ok:name",
        "refused_no_reason",
        "not_found",
        "refused_identifier_in_reason",
        "malformed_token",
    ]
    text = paths.audit_log.read_text(encoding="utf-8")
    for original in (make_id("19800101", 2), "李娜", make_id("19700101", 5)):
        assert original not in text  # the log never holds an original (nor what was typed)
    assert read_audit_head(paths).seq == 6


def test_tokens_of_another_version_or_malformed_are_refused(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    ring = make_keyring(tmp_path)
    _, entries = _vault_entries(ring)
    stale = entries.copy()
    stale.loc[stale.index[0], "token"] = "k9_" + "a" * 32
    broken = entries.copy()
    broken.loc[broken.index[-1], "token"] = "k1_not-hex"
    with open_vault(paths, ring) as v:
        with pytest.raises(KeyProblem, match=r"version\(s\) 1, 9 but the key file is at version 1"):
            v.append(stale)
        with pytest.raises(KeyProblem, match="None"):
            v.append(broken)
        assert v.count() == 0
        assert v.append(entries) == len(entries)


def test_wrong_key_refused_and_nothing_written(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    ring = make_keyring(tmp_path)
    _, entries = _vault_entries(ring)
    with open_vault(paths, ring) as v:
        v.append(entries)
    other = init_keys(paths, tmp_path / "other.key")
    other = load_keyring(paths, tmp_path / "other.key")
    _, other_entries = _vault_entries(other)
    with pytest.raises(KeyProblem, match="canary"), open_vault(paths, other) as v:
        v.append(other_entries)
    con = connect(paths.vault, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM entries").fetchone()[0] == len(entries)
    finally:
        con.close()


def test_missing_key_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyProblem, match="no key file"):
        load_keyring(Paths(tmp_path))
    assert not Paths(tmp_path).vault.exists()


def _reidentify_n(tmp_path: Path, n: int) -> Paths:
    paths = Paths(tmp_path)
    ring = make_keyring(tmp_path)
    frame, entries = _vault_entries(ring)
    with open_vault(paths, ring) as v:
        v.append(entries)
        for i in range(n):
            v.reidentify(frame["phone_token"].iloc[i % len(frame)], f"case {i}", actor="auditor")
    return paths


def _verify(paths: Paths):
    ring = load_keyring(paths, paths.home / "keys" / "master.key")
    with open_vault(paths, ring) as v:
        return v.verify_audit_log()


def test_audit_log_edit_detected(tmp_path: Path) -> None:
    paths = _reidentify_n(tmp_path, 4)
    lines = paths.audit_log.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[1])
    entry["reason"] = "harmless"
    lines[1] = json.dumps(entry, ensure_ascii=False, sort_keys=True)
    paths.audit_log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = _verify(paths)
    assert not report.ok and report.problems[0].startswith("line 2: entry was modified")


def test_audit_log_delete_detected(tmp_path: Path) -> None:
    paths = _reidentify_n(tmp_path, 4)
    lines = paths.audit_log.read_text(encoding="utf-8").splitlines()
    del lines[1]
    paths.audit_log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = _verify(paths)
    assert not report.ok and report.problems[0].startswith("line 2: chain broken")


def test_audit_log_reorder_detected(tmp_path: Path) -> None:
    paths = _reidentify_n(tmp_path, 4)
    lines = paths.audit_log.read_text(encoding="utf-8").splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    paths.audit_log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = _verify(paths)
    assert not report.ok and report.problems[0].startswith("line 2: chain broken")


def test_audit_log_truncation_detected(tmp_path: Path) -> None:
    paths = _reidentify_n(tmp_path, 4)
    lines = paths.audit_log.read_text(encoding="utf-8").splitlines()
    paths.audit_log.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    report = _verify(paths)
    assert not report.ok and "entry 3" in report.problems[0]


def test_untouched_log_verifies(tmp_path: Path) -> None:
    paths = _reidentify_n(tmp_path, 3)
    report = _verify(paths)
    assert report.ok and report.entries == 3

"""pseudonymise_feed: column convention, no raw identifier left, vault entries, cross-feed joins."""

from __future__ import annotations

import pandas as pd
import pytest
from test_privacy_helpers import make_id, make_keyring, mask

from datahub.privacy.cipher import VaultCipher
from datahub.privacy.keys import Keyring
from datahub.privacy.pseudonymise import output_columns, pseudonymise_feed
from datahub.privacy.tokens import tokenise_series
from datahub.sources.contracts import FEEDS, FEEDS_BY_KEY, Feed


@pytest.fixture()
def keyring(tmp_path) -> Keyring:
    return make_keyring(tmp_path)


def _frame(feed: Feed, n: int = 4) -> tuple[pd.DataFrame, list[str]]:
    """Synthetic feed rows (all strings); returns the frame and the raw identifiers planted."""
    data: dict[str, list[str | None]] = {}
    planted: list[str] = []
    for c in feed.columns:
        if c.role == "id_number":
            vals = [make_id("19800101", 10 + i) for i in range(n)]
            vals[-1] = ""  # one missing
            planted += [v for v in vals if v]
        elif c.role == "phone":
            vals = [f"1381234{5670 + i}" for i in range(n)]
            planted += vals
        elif c.role == "name":
            vals = ["张伟", "李 娜", "欧阳娜娜", None][:n]
            planted += ["张伟", "李娜", "欧阳娜娜"]
        else:
            vals = [f"v{i}" for i in range(n)]
        data[c.name] = vals
    return pd.DataFrame(data, dtype="str"), planted


@pytest.mark.parametrize("feed", FEEDS, ids=lambda f: f.key)
def test_every_feed_follows_the_convention(feed: Feed, keyring: Keyring) -> None:
    frame, planted = _frame(feed)
    p = pseudonymise_feed(feed, frame, keyring)
    assert tuple(p.frame.columns) == output_columns(feed)
    assert len(p.frame) == len(frame)
    for c in feed.identifier_columns:
        assert c.name not in p.frame.columns
    cells = {str(v) for col in p.frame.columns for v in p.frame[col].dropna()}
    leaked = [mask(v) for v in planted if v in cells or any(v in cell for cell in cells)]
    assert not leaked
    for c in feed.columns:
        if c.role is None:
            assert p.frame[c.name].equals(frame[c.name])
    if not feed.identifier_columns:
        assert p.vault.empty


def test_vault_holds_normalised_originals(keyring: Keyring) -> None:
    feed = FEEDS_BY_KEY["police.incident_persons"]
    frame, _ = _frame(feed)
    p = pseudonymise_feed(feed, frame, keyring)
    assert not p.vault.duplicated(["domain", "token"]).any()
    cipher = VaultCipher(keyring.vault_key)
    opened = {
        (d, t): cipher.open(d, ct)
        for d, t, ct in p.vault[["domain", "token", "ciphertext"]].itertuples(index=False)
    }
    for (d, t), original in opened.items():  # every ciphertext belongs to its own token
        assert tokenise_series(keyring.domain_key(d), 1, pd.Series([original])).iloc[0] == t
    for d, col in (
        ("id_number", "id_number_token"),
        ("name", "name_token"),
        ("phone", "phone_token"),
    ):
        for tok in p.frame[col].dropna():
            assert (d, tok) in opened
    assert opened[("name", p.frame["name_token"].iloc[1])] == "李娜"
    assert opened[("name_pinyin", p.frame["name_pinyin_token"].iloc[0])] == "zhangwei"
    dob_tok = p.frame["involved_name_dob_token"].iloc[0]
    assert opened[("name_dob", dob_tok)] == "张伟|1980-01-01"


def test_cached_and_new_ciphertexts_both_open_to_their_own_token(keyring: Keyring) -> None:
    """A later file mixes values sealed before (process cache) with new ones."""
    feed = FEEDS_BY_KEY["police.incident_persons"]
    first, _ = _frame(feed, n=3)
    second, _ = _frame(feed, n=4)  # rows 0-2 as before, row 3 new (its name is missing)
    second.loc[3, "phone"] = "13900001111"
    a = pseudonymise_feed(feed, first, keyring)
    b = pseudonymise_feed(feed, second, keyring)
    cipher = VaultCipher(keyring.vault_key)
    old = {(d, t): ct for d, t, ct in a.vault.itertuples(index=False)}
    for d, t, ct in b.vault.itertuples(index=False):
        original = cipher.open(d, ct)
        assert tokenise_series(keyring.domain_key(d), 1, pd.Series([original])).iloc[0] == t
        if (d, t) in old:
            assert old[(d, t)] == ct  # deterministic AES-SIV: the cache returns the same bytes
    new_phone = b.frame["phone_token"].iloc[3]
    assert ("phone", new_phone) in {(d, t) for d, t, _ in b.vault.itertuples(index=False)}
    assert ("phone", new_phone) not in old


def test_person_columns_and_statuses(keyring: Keyring) -> None:
    feed = FEEDS_BY_KEY["government.population"]
    frame, _ = _frame(feed)
    frame.loc[1, "id_number"] = frame.loc[1, "id_number"][:-1] + "Z"  # malformed
    p = pseudonymise_feed(feed, frame, keyring)
    f = p.frame
    assert f["id_number_status"].tolist() == ["valid", "malformed", "valid", "missing"]
    assert f["resident_birth_year"].tolist()[0] == 1980
    assert f["resident_sex"].iloc[0] in {"M", "F"}
    assert f["resident_name_dob_token"].notna().tolist() == [True, False, True, False]
    invalid = p.invalid_id_columns()
    assert invalid["id_number"].tolist() == [False, True, False, False]
    reasons = p.row_reasons()
    assert reasons.iloc[1] == "id_number: malformed"
    assert "id_number: missing" in reasons.iloc[3] and "name: missing" in reasons.iloc[3]
    assert pd.isna(reasons.iloc[0])


def test_same_person_joins_across_departments(keyring: Keyring) -> None:
    ident = make_id("19721130", 77)
    police = FEEDS_BY_KEY["police.key_persons"]
    social = FEEDS_BY_KEY["social_security.insured"]
    community = FEEDS_BY_KEY["community.visits"]
    fp, _ = _frame(police, 1)
    fs, _ = _frame(social, 1)
    fc, _ = _frame(community, 1)
    fp["id_number"], fp["name"], fp["phone"] = ident, "王 芳", "+86 139-0000-1111"
    fs["id_number"], fs["name"] = ident.lower(), "王芳"
    fc["id_number"], fc["name"], fc["phone"] = f"{ident[:6]}-{ident[6:]}", "王芳 ", "13900001111"
    tp = pseudonymise_feed(police, fp, keyring).frame
    ts = pseudonymise_feed(social, fs, keyring).frame
    tc = pseudonymise_feed(community, fc, keyring).frame
    assert (
        tp["id_number_token"].iloc[0]
        == ts["id_number_token"].iloc[0]
        == tc["id_number_token"].iloc[0]
    )
    assert tp["subject_name_dob_token"].iloc[0] == ts["insured_name_dob_token"].iloc[0]
    assert tp["phone_token"].iloc[0] == tc["phone_token"].iloc[0]
    assert tp["name_pinyin_token"].iloc[0] == tc["name_pinyin_token"].iloc[0]


def test_undeclared_column_refused(keyring: Keyring) -> None:
    feed = FEEDS_BY_KEY["police.incident_persons"]
    frame, _ = _frame(feed)
    frame["_row_number"] = "1"
    assert "_row_number" in pseudonymise_feed(feed, frame, keyring).frame.columns
    frame["notes"] = "free text"
    with pytest.raises(ValueError, match="not in the contract"):
        pseudonymise_feed(feed, frame, keyring)

"""Keyed tokens: RFC 4231 known answers, cross-feed equality, domain/version separation."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pyarrow as pa
import pytest
from test_privacy_helpers import make_id, make_keyring, mask, random_ids

from datahub.privacy.keys import Keyring
from datahub.privacy.normalise import normalise_ids
from datahub.privacy.tokens import (
    DOMAINS,
    TOKEN_RE,
    DomainRefused,
    check_domain,
    derive_domain_key,
    hmac_hex,
    hmac_hex_many,
    tokenise_series,
    tokenise_unique,
)


@pytest.fixture()
def keyring(tmp_path) -> Keyring:
    return make_keyring(tmp_path)


_LONG = bytes([0xAA]) * 131
#: RFC 4231 section 4: (key, data, HMAC-SHA-256 hex); case 5 is truncated to 128 bits.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        _LONG,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        _LONG,
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize("case", range(1, 8))
def test_rfc4231_hashlib_engine(case: int) -> None:
    key, data, expected = RFC4231[case - 1]
    assert hmac_hex(key, [data])[0][: len(expected)] == expected


@pytest.mark.parametrize("case", range(1, 8))
def test_rfc4231_duckdb_engine(case: int) -> None:
    key, data, expected = RFC4231[case - 1]
    got = hmac_hex_many(key, pa.array([data], type=pa.binary())).to_pylist()[0]
    assert got[: len(expected)] == expected


def test_engines_agree_with_stdlib_on_many_values() -> None:
    key = b"k" * 32
    ids = random_ids(3000)
    expected = [hmac.new(key, v.encode(), hashlib.sha256).hexdigest()[:32] for v in ids]
    for engine in ("duckdb", "hashlib"):
        toks = tokenise_unique(key, 3, ids, engine=engine)
        assert [t.removeprefix("k3_") for t in toks] == expected, engine
        assert all(TOKEN_RE.match(t) for t in toks)


def test_same_person_same_token_across_spellings(keyring) -> None:
    good = make_id("19850315", 457)  # ends in a check digit we also write in other ways
    first17 = good[:17]
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in good)  # ０-９ full-width digits
    spellings = pd.Series(
        [
            good,
            good.lower(),
            full_width,
            f"{first17[:6]}-{first17[6:14]}-{first17[14:]}{good[17]}",
            f" {good} ",
        ]
    )
    ids = normalise_ids(spellings)
    assert set(ids.status) == {"valid"}
    key = keyring.domain_key("id_number")
    toks = tokenise_series(key, keyring.current_version, ids.value)
    assert toks.nunique() == 1, [mask(t) for t in toks]


def test_lowercase_x_check_digit_same_token(keyring) -> None:
    # find a synthetic ID whose check character is X
    good = next(make_id("19900101", s) for s in range(1000) if make_id("19900101", s).endswith("X"))
    ids = normalise_ids(pd.Series([good, good[:-1] + "x"]))
    toks = tokenise_series(keyring.domain_key("id_number"), 1, ids.value)
    assert toks.iloc[0] == toks.iloc[1] and toks.notna().all()


def test_tokens_differ_across_domains_and_versions(keyring) -> None:
    value = pd.Series(["13812345678"])
    by_domain = {
        d: tokenise_series(keyring.domain_key(d, 1), 1, value).iloc[0]
        for d in DOMAINS
        if d != "canary"
    }
    assert len(set(by_domain.values())) == len(by_domain)
    key1 = derive_domain_key(b"\x01" * 32, "phone", 1)
    key2 = derive_domain_key(b"\x02" * 32, "phone", 2)
    t1 = tokenise_series(key1, 1, value).iloc[0]
    t2 = tokenise_series(key2, 2, value).iloc[0]
    assert t1 != t2 and t1.startswith("k1_") and t2.startswith("k2_")
    # the same master key under another version number still gives other tokens
    assert derive_domain_key(b"\x01" * 32, "phone", 1) != derive_domain_key(
        b"\x01" * 32, "phone", 2
    )


@pytest.mark.parametrize("domain", ["sex", "birth_year", "age", "nonsense"])
def test_low_entropy_and_unknown_domains_refused(domain: str, keyring) -> None:
    with pytest.raises(DomainRefused):
        check_domain(domain)
    with pytest.raises(DomainRefused):
        keyring.domain_key(domain)


def test_missing_values_have_no_token(keyring) -> None:
    toks = tokenise_series(keyring.domain_key("name"), 1, pd.Series(["张伟", None, pd.NA, "张伟"]))
    assert toks.isna().tolist() == [False, True, True, False]
    assert toks.iloc[0] == toks.iloc[3]


def test_dictionary_attack_plain_hash_vs_keyed_token(keyring) -> None:
    """All IDs of one birth date and region: 1000 sequences × check digit.

    Against a plain SHA-256 the attacker finds the target; against our tokens
    (without the key) none of the candidates' hashes or unkeyed HMACs match.
    """
    target = make_id("19760804", 613)
    candidates = [make_id("19760804", seq) for seq in range(1000)]
    assert len(set(candidates)) == 1000

    plain = hashlib.sha256(target.encode()).hexdigest()
    found = [c for c in candidates if hashlib.sha256(c.encode()).hexdigest() == plain]
    assert found == [target], "plain SHA-256 should be reversible by enumeration"

    token = tokenise_series(keyring.domain_key("id_number"), 1, pd.Series([target])).iloc[0]
    digest = token.split("_", 1)[1]
    guesses = set()
    for c in candidates:
        b = c.encode()
        guesses.add(hashlib.sha256(b).hexdigest()[:32])
        guesses.add(hmac.new(b"", b, hashlib.sha256).hexdigest()[:32])
        guesses.add(hmac.new(b"id_number", b, hashlib.sha256).hexdigest()[:32])
    guesses.update(
        t.split("_", 1)[1]
        for t in tokenise_unique(derive_domain_key(b"\x00" * 32, "id_number", 1), 1, candidates)
    )
    assert digest not in guesses


def test_tokenise_series_paths_agree() -> None:
    """Distinct-heavy, repeat-heavy and small inputs give the same tokens on every path."""
    key = b"s" * 32
    ids = random_ids(6000)
    distinct = pd.Series(ids + [None], dtype="str")
    repeated = pd.Series((ids[:50] * 130) + [None], dtype="object")
    for series in (distinct, repeated):
        fast = tokenise_series(key, 1, series, engine="duckdb")
        slow = tokenise_series(key, 1, series, engine="hashlib")
        assert fast.equals(slow)
        assert fast.isna().tolist() == series.isna().tolist()
        assert (
            fast.iloc[0]
            == "k1_" + hmac.new(key, series.iloc[0].encode(), hashlib.sha256).hexdigest()[:32]
        )


@pytest.mark.parametrize("engine", ["duckdb", "hashlib", "auto"])
def test_tokenise_series_keeps_a_non_default_index(engine: str) -> None:
    """A filtered frame's index (not 0..n-1) must not turn tokens into NA."""
    key = b"k" * 32
    values = pd.Series([f"v{i % 7}" for i in range(50)], index=range(100, 150), dtype="str")
    toks = tokenise_series(key, 1, values, engine=engine)
    assert toks.index.equals(values.index)
    assert toks.notna().all()
    assert (
        toks.tolist()
        == tokenise_series(key, 1, values.reset_index(drop=True), engine=engine).tolist()
    )

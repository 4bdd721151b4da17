"""Keyed tokens: HMAC-SHA256 per identifier domain, ``k<version>_<32 hex>``.

A plain hash of an ID number is reversible by enumeration (the ID space is
about 2^37, and ~1000 candidates once the birth date and region are known), so
every token is an HMAC under a secret key. Each domain has its own key, derived
by HKDF-SHA256 from the master key of a key version, so tokens of one domain
can never be compared with another's (ENISA pseudonymisation guidance,
NIST SP 800-53 SI-19(4)).

Two implementations of the same RFC 2104 HMAC are used:

* :func:`hmac_hex_many` — HMAC written in DuckDB SQL over BLOBs (built-in
  ``sha256``), used for large batches (~1.6 M values/s on two cores, see
  ``benchmarks/bench_tokenise.py``);
* :func:`hmac_hex` — Python ``hashlib`` with precomputed inner/outer states,
  used for small batches where starting a DuckDB query costs more than it saves.

Both are checked against the RFC 4231 vectors in the tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: Domains that get tokens. ``canary`` only ever tokenises a fixed string.
DOMAINS: tuple[str, ...] = (
    "id_number",
    "phone",
    "name",
    "name_pinyin",
    "name_dob",
    "address",
    "canary",
)

#: Low-entropy quasi-identifiers: a keyed token would still be reversible by
#: counting (two sexes, ~100 birth years), so they are kept in plain — or
#: dropped — but never tokenised.
REFUSED_DOMAINS: frozenset[str] = frozenset(
    {"sex", "gender", "birth_year", "birth_date", "age", "age_band", "region", "ethnicity"}
)

TOKEN_HEX_CHARS = 32  # first 128 bits of the HMAC
TOKEN_RE = re.compile(r"^k([1-9][0-9]*)_([0-9a-f]{32})$")
#: Finds tokens inside text (for leak scanners and tests).
TOKEN_SEARCH_RE = re.compile(r"\bk[1-9][0-9]*_[0-9a-f]{32}\b")

_HKDF_SALT = b"datahub/pseudonymisation/v1"
_BLOCK = 64  # SHA-256 block size
#: Below this many distinct values the hashlib loop beats a DuckDB round trip.
DUCKDB_THRESHOLD = 5_000


class DomainRefused(ValueError):
    """Raised for a domain that must not be tokenised (or is unknown)."""


def check_domain(domain: str) -> str:
    """Return ``domain`` if it may be tokenised, else raise :class:`DomainRefused`."""
    if domain in REFUSED_DOMAINS:
        raise DomainRefused(
            f"domain {domain!r} is a low-entropy quasi-identifier; it is kept in plain "
            "and never tokenised (a token would be reversible by counting)"
        )
    if domain not in DOMAINS:
        raise DomainRefused(
            f"unknown token domain {domain!r}; expected one of {', '.join(DOMAINS)}"
        )
    return domain


def derive_domain_key(master_key: bytes, domain: str, version: int) -> bytes:
    """HKDF-SHA256(master key) → 32-byte key for one domain of one key version."""
    check_domain(domain)
    info = f"datahub token domain={domain} version={version}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=info).derive(master_key)


@dataclass(frozen=True)
class HmacPads:
    """The two padded keys of RFC 2104 (``K ^ ipad``, ``K ^ opad``)."""

    inner: bytes
    outer: bytes

    @classmethod
    def from_key(cls, key: bytes) -> HmacPads:
        if len(key) > _BLOCK:  # RFC 2104: long keys are hashed first
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        return cls(bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key))

    def __repr__(self) -> str:  # never print key material
        return "HmacPads(<secret>)"


def hmac_hex(key: bytes, messages: Iterable[bytes]) -> list[str]:
    """Full HMAC-SHA256 hex digests of ``messages`` (hashlib, precomputed states)."""
    pads = HmacPads.from_key(key)
    inner0 = hashlib.sha256(pads.inner)
    outer0 = hashlib.sha256(pads.outer)
    icopy, ocopy = inner0.copy, outer0.copy
    out: list[str] = []
    append = out.append
    for m in messages:
        i = icopy()
        i.update(m)
        o = ocopy()
        o.update(i.digest())
        append(o.hexdigest())
    return out


_HMAC_SQL = "SELECT sha256($outer || unhex(sha256($inner || v))) AS h FROM msgs"


def hmac_hex_many(key: bytes, messages: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Full HMAC-SHA256 hex digests computed by DuckDB (RFC 2104 over BLOBs).

    ``messages`` is an Arrow binary or string array (strings are hashed as
    UTF-8); NULLs stay NULL.
    """
    from datahub.warehouse.db import memory  # the one place that opens DuckDB

    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    if not pa.types.is_binary(messages.type):
        messages = pc.cast(messages, pa.binary())
    pads = HmacPads.from_key(key)
    con = memory()
    try:
        msgs = pa.table({"v": messages})  # noqa: F841 - registered by name below
        con.register("msgs", msgs)
        rel = con.sql(_HMAC_SQL, params={"outer": pads.outer, "inner": pads.inner})
        table: pa.Table = rel.to_arrow_table()
    finally:
        con.close()
    return table.column("h").combine_chunks()


def format_tokens(version: int, hex_digests: Sequence[str | None]) -> list[str | None]:
    """``k<version>_<first 32 hex chars>`` for each digest (None stays None)."""
    prefix = f"k{version}_"
    return [None if h is None else prefix + h[:TOKEN_HEX_CHARS] for h in hex_digests]


def token_version(token: str) -> int | None:
    """The key version of a well-formed token, else None."""
    m = TOKEN_RE.match(token)
    return int(m.group(1)) if m else None


def is_token(value: str) -> bool:
    """True for a well-formed ``k<version>_<32 hex>`` token."""
    return TOKEN_RE.match(value) is not None


def tokenise_unique(
    domain_key: bytes, version: int, values: Sequence[str], *, engine: str = "auto"
) -> list[str]:
    """Tokens for already-distinct, already-normalised, non-null ``values``.

    ``engine`` is ``"duckdb"``, ``"hashlib"`` or ``"auto"`` (DuckDB from
    :data:`DUCKDB_THRESHOLD` values on).
    """
    if engine == "auto":
        engine = "duckdb" if len(values) >= DUCKDB_THRESHOLD else "hashlib"
    if engine == "duckdb":
        digests = hmac_hex_many(domain_key, pa.array(values, type=pa.string()))
        prefix = pa.scalar(f"k{version}_")
        short = pc.utf8_slice_codeunits(digests, 0, TOKEN_HEX_CHARS)
        return pc.binary_join_element_wise(prefix, short, "").to_pylist()
    if engine == "hashlib":
        prefix = f"k{version}_"
        return [
            prefix + h[:TOKEN_HEX_CHARS] for h in hmac_hex(domain_key, (v.encode() for v in values))
        ]
    raise ValueError(f"unknown HMAC engine {engine!r}")


def tokenise_series(
    domain_key: bytes, version: int, values: pd.Series, *, engine: str = "auto"
) -> pd.Series:
    """Tokens for a Series of normalised values; NA in → NA out.

    Works on distinct values only (``pd.factorize``): identifiers repeat a lot
    across records, and the HMAC is the expensive part.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    toks = tokenise_unique(domain_key, version, [str(u) for u in uniques], engine=engine)
    lookup = pd.array([*toks, None], dtype="str")
    # code -1 (missing) picks the trailing None
    return pd.Series(lookup[codes], index=values.index, dtype="str")

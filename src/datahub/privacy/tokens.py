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
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
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
_TOKEN_SQL = (
    "SELECT $prefix || substr(sha256($outer || unhex(sha256($inner || v))), 1, 32) AS h FROM msgs"
)


def _as_binary(messages: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(messages, pa.ChunkedArray):
        messages = messages.combine_chunks()
    if pa.types.is_large_string(messages.type) or pa.types.is_large_binary(messages.type):
        return pc.cast(messages, pa.large_binary())  # zero-copy reinterpretation as UTF-8 bytes
    return pc.cast(messages, pa.binary())


_local = threading.local()


def _duckdb_hmac(
    sql: str, key: bytes, messages: pa.Array | pa.ChunkedArray, prefix: str = ""
) -> pa.Array:
    from datahub.warehouse.db import memory  # the one place that opens DuckDB

    pads = HmacPads.from_key(key)
    params: dict[str, object] = {"outer": pads.outer, "inner": pads.inner}
    if "$prefix" in sql:
        params["prefix"] = prefix
    # opening DuckDB costs ~0.1 s: one in-memory connection per thread (and per
    # process: a connection inherited through fork is not reused)
    con = getattr(_local, "con", None)
    if con is None or getattr(_local, "pid", None) != os.getpid():
        con = _local.con = memory()
        _local.pid = os.getpid()
    try:
        msgs = pa.table({"v": _as_binary(messages)})  # noqa: F841 - registered by name below
        con.register("msgs", msgs)
        table: pa.Table = con.sql(sql, params=params).to_arrow_table()
    finally:
        con.unregister("msgs")
    return table.column("h").combine_chunks()


def hmac_hex_many(key: bytes, messages: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Full HMAC-SHA256 hex digests computed by DuckDB (RFC 2104 over BLOBs).

    ``messages`` is an Arrow binary or string array (strings are hashed as
    UTF-8); NULLs stay NULL.
    """
    return _duckdb_hmac(_HMAC_SQL, key, messages)


def tokens_arrow(domain_key: bytes, version: int, values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Tokens for an Arrow string array, computed in DuckDB; NULL in → NULL out."""
    return _duckdb_hmac(_TOKEN_SQL, domain_key, values, f"k{version}_")


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
        return tokens_arrow(
            domain_key, version, pa.array(values, type=pa.large_string())
        ).to_pylist()
    if engine == "hashlib":
        prefix = f"k{version}_"
        return [
            prefix + h[:TOKEN_HEX_CHARS] for h in hmac_hex(domain_key, (v.encode() for v in values))
        ]
    raise ValueError(f"unknown HMAC engine {engine!r}")


_STR_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas 3's default "str"


def _to_str_series(arr: pa.Array, index: pd.Index) -> pd.Series:
    arr = pc.cast(arr, pa.large_string())
    # set_axis, not Series(..., index=): the latter re-aligns by label and a frame whose
    # index is not 0..n-1 (a filtered chunk) would get NA tokens
    return arr.to_pandas(types_mapper={pa.large_string(): _STR_DTYPE}.get).set_axis(index)


def _mostly_distinct(values: pd.Series, sample: int = 20_000) -> bool:
    """True when deduplicating would save little (e.g. ID numbers of a population file)."""
    head = values.iloc[:sample].dropna()
    return len(head) > 0 and head.nunique() / len(head) > 0.8


def tokenise_series(
    domain_key: bytes, version: int, values: pd.Series, *, engine: str = "auto"
) -> pd.Series:
    """Tokens for a Series of normalised values; NA in → NA out (dtype ``str``).

    Large inputs are tokenised in DuckDB over Arrow. When values repeat (names,
    phones of event feeds) only the distinct values are tokenised
    (``pd.factorize``) and mapped back; for mostly-distinct columns the
    factorize costs more than it saves and is skipped.
    """
    if engine == "auto":
        engine = "duckdb" if len(values) >= DUCKDB_THRESHOLD else "hashlib"
    if engine == "duckdb":
        if _mostly_distinct(values):
            arr = pa.array(values, type=pa.large_string(), from_pandas=True)
            return _to_str_series(tokens_arrow(domain_key, version, arr), values.index)
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        toks = tokens_arrow(
            domain_key, version, pa.array(uniques, type=pa.large_string(), from_pandas=True)
        )
        taken = pc.take(toks, pa.array(codes, mask=codes < 0))
        return _to_str_series(taken, values.index)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    toks = tokenise_unique(domain_key, version, [str(u) for u in uniques], engine=engine)
    lookup = pd.array([*toks, None], dtype="str")
    # code -1 (missing) picks the trailing None
    return pd.Series(lookup[codes], index=values.index, dtype="str")

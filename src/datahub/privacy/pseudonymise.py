"""Pseudonymise one feed's frame: identifiers → tokens + flags, originals → vault ciphertexts.

Output columns follow docs/architecture.md ("Pseudonymised columns"). The
frame returned holds no raw identifier; the vault frame holds the AES-SIV
ciphertexts of the normalised originals, one row per distinct (domain, token),
so that the prepare step never needs to open the vault file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datahub.privacy.cipher import VaultCipher
from datahub.privacy.keys import Keyring
from datahub.privacy.normalise import (
    IdResult,
    NameResult,
    name_dob_values,
    normalise_ids,
    normalise_names,
    normalise_phones,
)
from datahub.privacy.tokens import tokenise_series
from datahub.sources.contracts import Column, Feed

VAULT_COLUMNS = ("domain", "token", "ciphertext")
#: Status/kind values that make an identifier value unusable (present but wrong).
INVALID_VALUES: dict[str, frozenset[str]] = {
    "id_number": frozenset({"invalid_checksum", "malformed"}),
    "phone": frozenset({"invalid"}),
    "name": frozenset(),
}


def output_columns(feed: Feed) -> tuple[str, ...]:
    """The pseudonymised frame's columns for ``feed``, in order (no raw identifier)."""
    cols: list[str] = []
    for c in feed.columns:
        cols.extend(_replacement_columns(c))
    for p in feed.persons:
        if p.name and p.id_number:
            cols.extend((f"{p.role}_name_dob_token", f"{p.role}_birth_year", f"{p.role}_sex"))
    return tuple(cols)


def _replacement_columns(c: Column) -> tuple[str, ...]:
    if c.role == "id_number":
        return (f"{c.name}_token", f"{c.name}_status")
    if c.role == "phone":
        return (f"{c.name}_token", f"{c.name}_kind")
    if c.role == "name":
        return (f"{c.name}_token", f"{c.name}_pinyin_token", f"{c.name}_status")
    return (c.name,)


def flag_column(c: Column) -> str | None:
    """The status/kind column replacing identifier column ``c`` (None for other columns)."""
    if c.role == "phone":
        return f"{c.name}_kind"
    if c.role in ("id_number", "name"):
        return f"{c.name}_status"
    return None


@dataclass
class Pseudonymised:
    """A pseudonymised feed frame and the vault entries for its tokens."""

    feed: Feed
    frame: pd.DataFrame
    vault: pd.DataFrame  # columns: domain, token, ciphertext (bytes)
    key_version: int
    flags: dict[str, str] = field(default_factory=dict)  # flag column → identifier role

    def invalid_id_columns(self) -> dict[str, pd.Series]:
        """Per identifier column: a boolean Series, True where a value was present but invalid.

        Keys are the original column names (e.g. ``caller_id_number``); values
        are aligned with :attr:`frame`. Status ``missing`` is not invalid here:
        whether a missing value is a problem is the contract's ``required``.
        """
        out: dict[str, pd.Series] = {}
        for c in self.feed.identifier_columns:
            flag = flag_column(c)
            assert flag is not None and c.role is not None
            out[c.name] = self.frame[flag].isin(INVALID_VALUES[c.role])
        return out

    def missing_required(self) -> dict[str, pd.Series]:
        """Per required identifier column: True where the value is missing."""
        return {
            c.name: self.frame[flag_column(c) or ""].eq("missing")
            for c in self.feed.identifier_columns
            if c.required
        }

    def row_reasons(self) -> pd.Series:
        """One reason string per row (``<column>: <status>; ...``) or NA when all fine."""
        out = pd.Series(pd.NA, index=self.frame.index, dtype="str")
        pieces: list[tuple[pd.Series, pd.Series | str]] = []
        for name, mask in self.invalid_id_columns().items():
            status = self.frame[flag_column(self.feed.column(name)) or ""]
            pieces.append((mask, name + ": " + status))
        for name, mask in self.missing_required().items():
            pieces.append((mask, f"{name}: missing"))
        for mask, piece in pieces:  # vectorised: feeds can have millions of rows
            has = out.notna()
            out = out.mask(mask & ~has, piece)
            out = out.mask(mask & has, out + "; " + piece)
        return out


#: Ciphertexts already sealed in this process, per vault key fingerprint and domain
#: (Arrow arrays of tokens and their ciphertexts): AES-SIV costs ~3 µs a value plus Python
#: overhead, and the same persons recur in every daily file. Bounded (cleared when full).
_SEALED: dict[bytes, dict[str, tuple[pa.Array, pa.Array]]] = {}
_SEALED_MAX = 500_000  # ~150 B an entry in Arrow buffers: ≤ ~75 MB, flat in scale


def _sealed_cache(vault_key: bytes) -> dict[str, tuple[pa.Array, pa.Array]]:
    return _SEALED.setdefault(hashlib.sha256(b"datahub-vault-cache" + vault_key).digest(), {})


def _arrow_strings(s: pd.Series) -> pa.Array:
    arr = pa.array(s.array if isinstance(s.dtype, pd.StringDtype) else s, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.cast(arr, pa.large_string())


class _VaultCollector:
    """Collects distinct (domain, token, normalised value) and seals them.

    Everything stays in Arrow: per domain the distinct tokens are matched
    against the process cache with one hash lookup (``index_in``) and only the
    new ones are encrypted.
    """

    def __init__(self, cipher: VaultCipher, cache: dict[str, tuple[pa.Array, pa.Array]]) -> None:
        self._cipher = cipher
        self._cache = cache
        self._parts: dict[str, list[tuple[pa.Array, pa.Array]]] = {}

    def add(self, domain: str, tokens: pd.Series, values: pd.Series) -> None:
        self._parts.setdefault(domain, []).append((_arrow_strings(tokens), _arrow_strings(values)))

    def _sealed(self, domain: str) -> pa.Table:
        parts = self._parts[domain]
        toks = pa.concat_arrays([t for t, _ in parts])
        vals = pa.concat_arrays([v for _, v in parts])
        both = pc.and_(pc.is_valid(toks), pc.is_valid(vals))
        toks, vals = toks.filter(both), vals.filter(both)
        # one row per distinct token (a token fixes its value: same domain key, same input)
        first = pc.index_in(pc.unique(toks), value_set=toks)
        toks, vals = toks.take(first), vals.take(first)
        cached_toks, cached_cts = self._cache.get(
            domain, (pa.array([], pa.large_string()), pa.array([], pa.binary()))
        )
        pos = pc.index_in(toks, value_set=cached_toks)
        cts = cached_cts.take(pos)  # null where not sealed yet
        todo = pc.is_null(pos)
        n_new = pc.sum(todo).as_py() or 0
        if n_new:
            new_toks = toks.filter(todo)
            sealed = pa.array(
                self._cipher.seal_many(domain, vals.filter(todo).to_pylist()), pa.binary()
            )
            cts = pc.replace_with_mask(cts, todo, sealed)
            if sum(len(t) for t, _ in self._cache.values()) + n_new > _SEALED_MAX:
                self._cache.clear()
                cached_toks, cached_cts = new_toks[:0], sealed[:0]
            self._cache[domain] = (
                pa.concat_arrays([cached_toks, new_toks]),
                pa.concat_arrays([cached_cts, sealed]),
            )
        return pa.table(
            {
                "domain": pa.array([domain] * len(toks), pa.string()),
                "token": pc.cast(toks, pa.string()),
                "ciphertext": cts,
            }
        )

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in VAULT_COLUMNS})
        table = pa.concat_tables([self._sealed(d) for d in self._parts])
        return pd.DataFrame(
            {
                "domain": table.column("domain").to_pandas(types_mapper=_STR_TYPES.get),
                "token": table.column("token").to_pandas(types_mapper=_STR_TYPES.get),
                "ciphertext": table.column("ciphertext").to_pandas(),
            }
        )


_STR_TYPES = {pa.string(): pd.StringDtype("pyarrow", na_value=np.nan)}


def pseudonymise_feed(feed: Feed, frame: pd.DataFrame, keyring: Keyring) -> Pseudonymised:
    """Replace every identifier column of ``feed`` in ``frame`` by tokens and flags.

    ``frame`` holds the feed's columns as read from the file (strings; NA or
    empty for missing). Non-identifier columns are passed through untouched.
    """
    missing_cols = [c.name for c in feed.identifier_columns if c.name not in frame.columns]
    if missing_cols:
        raise ValueError(f"{feed.key}: frame lacks identifier columns {missing_cols}")
    version = keyring.current_version
    keys: dict[str, bytes] = {}

    def tok(domain: str, values: pd.Series) -> pd.Series:
        if domain not in keys:
            keys[domain] = keyring.domain_key(domain, version)
        return tokenise_series(keys[domain], version, values)

    vault = _VaultCollector(VaultCipher(keyring.vault_key), _sealed_cache(keyring.vault_key))
    new: dict[str, pd.Series] = {}
    flags: dict[str, str] = {}
    ids: dict[str, IdResult] = {}
    names: dict[str, NameResult] = {}
    for c in feed.columns:
        if c.name not in frame.columns:
            continue
        col = frame[c.name]
        if c.role == "id_number":
            r = ids[c.name] = normalise_ids(col)
            new[f"{c.name}_token"] = tok("id_number", r.value)
            new[f"{c.name}_status"] = r.status
            vault.add("id_number", new[f"{c.name}_token"], r.value)
        elif c.role == "phone":
            p = normalise_phones(col)
            new[f"{c.name}_token"] = tok("phone", p.value)
            new[f"{c.name}_kind"] = p.kind
            vault.add("phone", new[f"{c.name}_token"], p.value)
        elif c.role == "name":
            n = names[c.name] = normalise_names(col)
            new[f"{c.name}_token"] = tok("name", n.value)
            new[f"{c.name}_pinyin_token"] = tok("name_pinyin", n.pinyin)
            new[f"{c.name}_status"] = n.status
            vault.add("name", new[f"{c.name}_token"], n.value)
            vault.add("name_pinyin", new[f"{c.name}_pinyin_token"], n.pinyin)
        else:
            new[c.name] = col
            continue
        flags[flag_column(c) or ""] = c.role
    for pr in feed.persons:
        if not (pr.name and pr.id_number) or pr.id_number not in ids or pr.name not in names:
            continue
        r, n = ids[pr.id_number], names[pr.name]
        dob = name_dob_values(n.value, r.birth_date)
        new[f"{pr.role}_name_dob_token"] = tok("name_dob", dob)
        new[f"{pr.role}_birth_year"] = r.birth_year
        new[f"{pr.role}_sex"] = r.sex
        vault.add("name_dob", new[f"{pr.role}_name_dob_token"], dob)
    for extra in map(str, frame.columns):
        if extra in feed.column_names:
            continue
        if not extra.startswith("_"):
            # an undeclared column could hold an identifier: never pass it through
            raise ValueError(f"{feed.key}: column {extra!r} is not in the contract")
        new[extra] = frame[extra]  # reader metadata such as _row_number
    out = pd.DataFrame(new, index=frame.index)
    return Pseudonymised(
        feed=feed, frame=out, vault=vault.frame(), key_version=version, flags=flags
    )

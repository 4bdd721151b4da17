"""The re-identification vault: encrypted originals per token, in its own DuckDB file.

Only this module opens ``Paths.vault``. Tables (schema ``main``):

* ``entries(domain, token, ciphertext, added_at)`` — one row per distinct token;
  ``ciphertext`` is the AES-SIV seal of the normalised original (see
  :mod:`datahub.privacy.cipher`);
* ``key_canary(version, canary, vault_check, written_at)`` — the canary token
  of the key version the tokens were made with, and a seal of a fixed string
  under the vault key: a wrong key file is refused before anything is written;
* ``audit_head(seq, hash)`` — the last audit-log entry, so that lines removed
  from the end of the log are detected;
* ``vault_info(vault_id)`` — a random id given when the vault is created: a
  prepare engine remembers which tokens *this* vault holds (a vault deleted and
  made again is another vault).

Re-identification needs a non-empty reason and is logged (also when refused or
not found) in the hash-chained log :mod:`datahub.privacy.audit_log`.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datahub.config import Paths
from datahub.privacy.audit_log import AuditReport, Head, append_entry, verify_audit_log
from datahub.privacy.cipher import VaultCipher
from datahub.privacy.keys import CANARY_MESSAGE, KeyProblem, Keyring, check_canary
from datahub.privacy.leaks import find_in_text
from datahub.privacy.tokens import TOKEN_RE, token_version, tokenise_unique
from datahub.warehouse.db import connect


def _first(rows: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """First row of a fully fetched result (DuckDB refuses new work while a result is open)."""
    return rows[0] if rows else None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    domain VARCHAR NOT NULL, token VARCHAR NOT NULL, ciphertext BLOB NOT NULL,
    added_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS key_canary (
    version INTEGER NOT NULL, canary VARCHAR NOT NULL, vault_check BLOB NOT NULL,
    written_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS audit_head (seq BIGINT NOT NULL, hash VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS vault_info (vault_id UUID NOT NULL);
INSERT INTO vault_info SELECT uuid() WHERE NOT EXISTS (SELECT 1 FROM vault_info);
"""


#: The vault's DuckDB buffer pool: appends stream through it (base-scale ingest peak RSS with
#: loader/vault caps of 512/256 MB: 1.57 GB; with 128/64 MB: 1.15 GB, same run otherwise).
VAULT_MEMORY_LIMIT = "64MB"
#: Entries appended per statement (each statement's distinct-token hash table fits the pool).
APPEND_SLICE_ROWS = 100_000


class ReidentificationError(LookupError):
    """A re-identification request was refused or found nothing (it is still logged)."""


def _vault_check(ring: Keyring) -> bytes:
    return VaultCipher(ring.vault_key).seal("canary", CANARY_MESSAGE.decode())


class Vault:
    """An open vault. Use :func:`open_vault`; the key file is checked on opening."""

    def __init__(self, con: duckdb.DuckDBPyConnection, paths: Paths, keyring: Keyring) -> None:
        self.con = con
        self.paths = paths
        self.keyring = keyring
        self.cipher = VaultCipher(keyring.vault_key)

    # -------------------------------------------------------------- canaries

    def stored_canary(self) -> tuple[int, str, bytes] | None:
        row = _first(
            self.con.execute("SELECT version, canary, vault_check FROM key_canary").fetchall()
        )
        return None if row is None else (int(row[0]), str(row[1]), bytes(row[2]))

    def check_key(self) -> None:
        """Raise :class:`KeyProblem` unless the key file is the one this vault was made with."""
        stored = self.stored_canary()
        if stored is None:
            return
        version, canary, vault_check = stored
        check_canary(self.keyring, canary, where=f"the vault {self.paths.vault}")
        if vault_check != _vault_check(self.keyring):
            raise KeyProblem(
                f"the vault key in {self.keyring.path} is not the one the vault "
                f"{self.paths.vault} was encrypted with; refusing to run"
            )

    def _write_canary(self, version: int) -> None:
        self.con.execute("DELETE FROM key_canary")
        self.con.execute(
            "INSERT INTO key_canary (version, canary, vault_check) VALUES (?, ?, ?)",
            [version, self.keyring.canary(version), _vault_check(self.keyring)],
        )

    # -------------------------------------------------------------- entries

    def vault_id(self) -> str | None:
        """This vault's random id (None for a vault made before ids, opened read-only)."""
        try:
            row = _first(self.con.execute("SELECT vault_id FROM vault_info").fetchall())
        except duckdb.CatalogException:
            return None
        return None if row is None else str(row[0])

    def count(self) -> int:
        row = _first(self.con.execute("SELECT count(*) FROM entries").fetchall())
        return int(row[0]) if row else 0

    def append(self, entries: pd.DataFrame | pa.Table) -> int:
        """Add (domain, token, ciphertext) rows whose token is new; return how many were added.

        Idempotent: tokens already in the vault (or repeated in ``entries``) are
        added once. Every token must be of the key file's current version.
        ``entries`` may be an Arrow table (the loader passes the staged Parquet
        as read, without a round trip through pandas).
        """
        if isinstance(entries, pd.DataFrame):
            entries = pa.Table.from_pandas(
                entries[["domain", "token", "ciphertext"]], preserve_index=False
            )
        if entries.num_rows == 0:
            return 0
        # every token well-formed and of the current version: one pass in Arrow's regex
        # engine (pandas' str.extract over a large batch cost seconds)
        current = self.keyring.current_version
        tokens = pc.cast(entries.column("token"), pa.string())
        well = pc.match_substring_regex(tokens, rf"^k{current}_[0-9a-f]{{32}}$")
        if tokens.null_count or not pc.all(well).as_py():
            parsed = pd.Series(tokens.to_pylist(), dtype="str").str.extract(TOKEN_RE.pattern)[0]
            versions = {None if pd.isna(v) else int(v) for v in parsed.unique()}
            shown = sorted(str(v) for v in versions)
            raise KeyProblem(
                f"vault entries are of key version(s) {', '.join(shown)} but the key file is at "
                f"version {self.keyring.current_version}; prepare the batch again"
            )
        df = entries.select(["domain", "token", "ciphertext"])
        try:
            self.con.execute("BEGIN TRANSACTION")
            if self.stored_canary() is None:
                self._write_canary(self.keyring.current_version)
            before = self.count()
            # in slices: the vault's buffer pool is small (VAULT_MEMORY_LIMIT) and a batch
            # may bring a million new tokens; later slices see the earlier ones' rows
            for start in range(0, df.num_rows, APPEND_SLICE_ROWS):
                self.con.register("new_entries", df.slice(start, APPEND_SLICE_ROWS))
                self.con.execute(
                    """
                    INSERT INTO entries (domain, token, ciphertext)
                    SELECT DISTINCT ON (n.token) n.domain, n.token, n.ciphertext
                    FROM new_entries n
                    WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.token = n.token)
                    """
                )
                self.con.unregister("new_entries")
            added = self.count() - before
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return added

    def tokens(self) -> pd.DataFrame:
        """All (domain, token) pairs (no ciphertexts)."""
        return self.con.execute(
            "SELECT domain, token FROM entries ORDER BY domain, token"
        ).fetchdf()

    # ------------------------------------------------------- re-identification

    def audit_head(self) -> Head | None:
        row = _first(self.con.execute("SELECT seq, hash FROM audit_head").fetchall())
        return None if row is None else Head(int(row[0]), str(row[1]))

    def _log(self, actor: str, reason: str, token: str, outcome: str) -> None:
        head = append_entry(
            self.paths.audit_log, actor=actor, reason=reason, token=token, outcome=outcome
        )
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute("DELETE FROM audit_head")
        self.con.execute("INSERT INTO audit_head VALUES (?, ?)", [head.seq, head.hash])
        self.con.execute("COMMIT")

    def reidentify(self, token: str, reason: str, actor: str | None = None) -> str:
        """The normalised original behind ``token``. Needs a reason; every call is logged.

        Raises :class:`ReidentificationError` (after logging) when the reason is
        empty, the token is malformed or unknown.
        """
        who = (actor or getpass.getuser()).strip() or "unknown"
        why = " ".join((reason or "").split())
        token = token.strip()
        logged_token = token if TOKEN_RE.match(token) else "<malformed>"  # never log raw input
        if not why:
            self._log(who, "", logged_token, "refused_no_reason")
            raise ReidentificationError("re-identification needs a reason (--reason)")
        if find_in_text(why):
            # the log is kept for years and read by auditors: no identifiers in it
            self._log(
                who,
                "<withheld: contained an identifier>",
                logged_token,
                "refused_identifier_in_reason",
            )
            raise ReidentificationError("the reason must not contain ID or phone numbers")
        if logged_token == "<malformed>":
            self._log(who, why, logged_token, "malformed_token")
            raise ReidentificationError("not a token: expected k<version>_<32 hex characters>")
        row = _first(
            self.con.execute(
                "SELECT domain, ciphertext FROM entries WHERE token = ?", [token]
            ).fetchall()
        )
        if row is None:
            self._log(who, why, token, "not_found")
            raise ReidentificationError(f"token {token} is not in the vault")
        try:
            value = self.cipher.open(str(row[0]), bytes(row[1]))
        except ValueError:
            self._log(who, why, token, "decrypt_failed")
            raise ReidentificationError(
                f"token {token}: the vault entry does not decrypt"
            ) from None
        self._log(who, why, token, f"ok:{row[0]}")
        return value

    def verify_audit_log(self) -> AuditReport:
        """Verify the log's hash chain and its head against the vault's record."""
        return verify_audit_log(self.paths.audit_log, self.audit_head())

    # ---------------------------------------------------------------- rotation

    def rotation_mapping(self, new_ring: Keyring, new_version: int) -> pd.DataFrame:
        """(domain, old_token, new_token, ciphertext) for every entry not yet of ``new_version``."""
        df = self.con.execute("SELECT domain, token, ciphertext FROM entries").fetchdf()
        old = df[df["token"].map(token_version) != new_version]
        parts = []
        for domain, group in old.groupby("domain", sort=True):
            originals = [self.cipher.open(str(domain), bytes(ct)) for ct in group["ciphertext"]]
            key = new_ring.domain_key(str(domain), new_version)
            new_tokens = tokenise_unique(key, new_version, originals)
            parts.append(
                pd.DataFrame(
                    {
                        "domain": group["domain"].to_numpy(),
                        "old_token": group["token"].to_numpy(),
                        "new_token": new_tokens,
                        "ciphertext": group["ciphertext"].to_numpy(),
                    }
                )
            )
        if not parts:
            return pd.DataFrame(columns=["domain", "old_token", "new_token", "ciphertext"])
        return pd.concat(parts, ignore_index=True)

    def apply_rotation(self, mapping: pd.DataFrame, new_ring: Keyring, new_version: int) -> None:
        """Replace old tokens by new ones and write the new canary, in one transaction."""
        self.con.register("rot_map", mapping[["old_token", "new_token"]])
        try:
            self.con.execute("BEGIN TRANSACTION")
            self.con.execute(
                "UPDATE entries SET token = m.new_token FROM rot_map m WHERE entries.token = m.old_token"
            )
            left = _first(
                self.con.execute(
                    "SELECT count(*) FROM entries WHERE NOT starts_with(token, ?)",
                    [f"k{new_version}_"],
                ).fetchall()
            )
            if left and left[0]:
                raise RuntimeError(f"{left[0]} vault tokens were not re-tokenised; rolled back")
            self.keyring = new_ring
            self._write_canary(new_version)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister("rot_map")

    def close(self) -> None:
        self.con.close()


@contextmanager
def open_vault(
    paths: Paths, keyring: Keyring, *, check: bool = True, read_only: bool = False
) -> Iterator[Vault]:
    """Open (creating if needed, unless read-only) the vault and check the key against its canary."""
    con = connect(paths.vault, read_only=read_only, memory_limit=VAULT_MEMORY_LIMIT)
    try:
        if not read_only:
            con.execute(_SCHEMA)
        vault = Vault(con, paths, keyring)
        if check:
            vault.check_key()
        yield vault
    finally:
        con.close()


def read_audit_head(paths: Paths) -> Head | None:
    """The audit head recorded in the vault (read-only; no key needed), or None."""
    if not Path(paths.vault).exists():
        return None
    con = connect(paths.vault, read_only=True)
    try:
        try:
            row = _first(con.execute("SELECT seq, hash FROM audit_head").fetchall())
        except duckdb.CatalogException:
            return None
        return None if row is None else Head(int(row[0]), str(row[1]))
    finally:
        con.close()


def append_entries(paths: Paths, keyring: Keyring, entries: pd.DataFrame | pa.Table) -> int:
    """Open the vault, check the key, append ``entries``; return how many were new."""
    with open_vault(paths, keyring) as vault:
        return vault.append(entries)

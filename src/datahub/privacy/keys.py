"""The key file: master keys per version, the current version and the vault key.

The key file is JSON kept outside the repository (default
``DATAHUB_HOME/keys/master.key``, mode 0600). Where it is, in order:

1. ``$DATAHUB_KEY_FILE``;
2. inside an Airflow task: the connection ``datahub_keys`` whose extra is
   ``{"key_file": "/path"}`` (looked up lazily; Airflow is never imported at
   module import);
3. ``Paths.key_file``.

Layout::

    {"format": 1, "current_version": 1, "pending_version": null,
     "versions": {"1": {"master_key": "<base64 32 bytes>", "created_at": "..."}},
     "vault_key": "<base64 64 bytes>"}

A missing, unreadable, group/world-readable or wrong key raises
:class:`KeyProblem` before anything is written. "Wrong" is detected with
canaries: the warehouse and the vault each store the token of a fixed string
under the ``canary`` domain key of their version, and :func:`check_canary`
compares it with the key file's.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datahub.config import ENV_KEY_FILE, Paths
from datahub.privacy.tokens import (
    HmacPads,
    check_domain,
    derive_domain_key,
    hmac_hex,
    token_version,
)

KEY_FILE_FORMAT = 1
MASTER_KEY_BYTES = 32
VAULT_KEY_BYTES = 64  # AES-256-SIV takes two 256-bit keys
AIRFLOW_CONN_ID = "datahub_keys"
CANARY_MESSAGE = (
    b"datahub canary: if this token differs, the key is not the one the data was made with"
)


class KeyProblem(KeyError):
    """The key file is missing, unreadable, badly permissioned or not the right key."""

    def __str__(self) -> str:  # KeyError would repr-quote the message
        return str(self.args[0]) if self.args else "key problem"


def _in_airflow_task() -> bool:
    """True when running inside an Airflow task (the task runner is loaded and talking)."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    if runner is not None and getattr(runner, "SUPERVISOR_COMMS", None) is not None:
        return True
    return bool(os.environ.get("AIRFLOW_CTX_DAG_ID"))


def _airflow_key_file() -> Path | None:
    """The path named by the Airflow connection ``datahub_keys``, if defined."""
    try:
        from airflow.sdk import Connection

        conn = Connection.get(AIRFLOW_CONN_ID)
        path = conn.extra_dejson.get("key_file") if conn is not None else None
    except Exception:  # connection not defined / no API server: fall back to the default
        return None
    return Path(path).expanduser().resolve() if path else None


def resolve_key_file(paths: Paths) -> Path:
    """Where the key file is: $DATAHUB_KEY_FILE, Airflow connection (in tasks), default."""
    if os.environ.get(ENV_KEY_FILE):
        return paths.key_file
    if _in_airflow_task():
        found = _airflow_key_file()
        if found is not None:
            return found
    return paths.key_file


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, expected: int, what: str, path: Path) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise KeyProblem(f"key file {path}: {what} is not valid base64") from exc
    if len(data) != expected:
        raise KeyProblem(f"key file {path}: {what} must be {expected} bytes, found {len(data)}")
    return data


@dataclass(frozen=True)
class Keyring:
    """Loaded keys. Never printed: key material is excluded from ``repr``."""

    path: Path
    current_version: int
    masters: Mapping[int, bytes] = field(repr=False)
    vault_key: bytes = field(repr=False)
    pending_version: int | None = None

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self.masters))

    def _master(self, version: int) -> bytes:
        try:
            return self.masters[version]
        except KeyError:
            raise KeyProblem(
                f"key file {self.path} has no key version {version} "
                f"(versions: {', '.join(map(str, self.versions))})"
            ) from None

    def domain_key(self, domain: str, version: int | None = None) -> bytes:
        """The HKDF-derived HMAC key of ``domain`` for ``version`` (default: current)."""
        v = self.current_version if version is None else version
        return derive_domain_key(self._master(v), check_domain(domain), v)

    def fingerprint(self, version: int | None = None) -> str:
        """A short public identifier of a master key (HMAC of a label; reveals nothing)."""
        v = self.current_version if version is None else version
        return hmac_hex(self._master(v), [b"datahub key fingerprint"])[0][:16]

    def vault_fingerprint(self) -> str:
        return hmac_hex(self.vault_key, [b"datahub vault key fingerprint"])[0][:16]

    def canary(self, version: int | None = None) -> str:
        """The canary token of ``version``: stored by the warehouse and the vault."""
        v = self.current_version if version is None else version
        digest = hmac_hex(self.domain_key("canary", v), [CANARY_MESSAGE])[0]
        return f"k{v}_{digest[:32]}"

    def pads(self, domain: str, version: int | None = None) -> HmacPads:
        return HmacPads.from_key(self.domain_key(domain, version))


def _check_permissions(path: Path) -> None:
    mode = path.stat().st_mode
    if stat.S_IMODE(mode) & 0o077:
        raise KeyProblem(
            f"key file {path} is accessible by group/others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )


def _parse(path: Path, raw: dict[str, Any]) -> Keyring:
    if raw.get("format") != KEY_FILE_FORMAT:
        raise KeyProblem(f"key file {path}: unsupported format {raw.get('format')!r}")
    try:
        current = int(raw["current_version"])
        versions = raw["versions"]
        masters = {
            int(v): _unb64(entry["master_key"], MASTER_KEY_BYTES, f"master key v{v}", path)
            for v, entry in versions.items()
        }
        vault_key = _unb64(raw["vault_key"], VAULT_KEY_BYTES, "vault key", path)
        pending = raw.get("pending_version")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, KeyProblem):
            raise
        raise KeyProblem(
            f"key file {path} is incomplete or malformed ({type(exc).__name__})"
        ) from None
    if current not in masters:
        raise KeyProblem(f"key file {path}: current version {current} has no master key")
    return Keyring(path, current, masters, vault_key, int(pending) if pending else None)


def load_keyring(paths: Paths, key_file: Path | None = None) -> Keyring:
    """Load and check the key file, or raise :class:`KeyProblem` saying what to do."""
    path = key_file or resolve_key_file(paths)
    if not path.exists():
        raise KeyProblem(
            f"no key file at {path}; create one with `datahub keys init` "
            f"(or point {ENV_KEY_FILE} / the Airflow connection {AIRFLOW_CONN_ID!r} at it)"
        )
    _check_permissions(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeyProblem(f"key file {path} is not readable: {exc.strerror}") from None
    except ValueError:
        raise KeyProblem(f"key file {path} is not valid JSON") from None
    if not isinstance(raw, dict):
        raise KeyProblem(f"key file {path} is not a JSON object")
    return _parse(path, raw)


def _serialise(ring: Keyring) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return {
        "format": KEY_FILE_FORMAT,
        "current_version": ring.current_version,
        "pending_version": ring.pending_version,
        "versions": {
            str(v): {"master_key": _b64(k), "saved_at": now}
            for v, k in sorted(ring.masters.items())
        },
        "vault_key": _b64(ring.vault_key),
    }


def write_keyring(ring: Keyring, path: Path, *, overwrite: bool) -> None:
    """Write the key file atomically with mode 0600 (folder 0700)."""
    if path.exists() and not overwrite:
        raise KeyProblem(f"key file {path} already exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_serialise(ring), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def new_keyring(path: Path) -> Keyring:
    """A fresh keyring with version 1 and a new vault key (nothing written)."""
    return Keyring(
        path=path,
        current_version=1,
        masters={1: secrets.token_bytes(MASTER_KEY_BYTES)},
        vault_key=secrets.token_bytes(VAULT_KEY_BYTES),
    )


def init_keys(paths: Paths, key_file: Path | None = None) -> Keyring:
    """Create a new key file; refuses to overwrite an existing one."""
    path = key_file or resolve_key_file(paths)
    ring = new_keyring(path)
    write_keyring(ring, path, overwrite=False)
    return ring


def ensure_dev_keys(paths: Paths, *, announce: bool = True) -> Keyring:
    """Dev convenience: load the key file, creating it (and saying where) on first run.

    "First run" means no warehouse and no vault exist yet. A missing key next to
    existing data is an error, never a reason to mint a new key: tokens made
    under a fresh key would silently fail to join the existing ones.
    """
    path = resolve_key_file(paths)
    if not path.exists():
        existing = [
            p
            for p in (paths.warehouse, paths.build, paths.build_previous, paths.vault)
            if p.exists()
        ]
        if existing:
            raise KeyProblem(
                f"no key file at {path}, but {', '.join(str(p) for p in existing)} already "
                "exist: restore the key file (or point DATAHUB_KEY_FILE at it) instead of "
                "creating a new one"
            )
        ring = init_keys(paths, path)
        if announce:
            print(f"created a development key file at {path} (mode 0600; keep it out of git)")
        return ring
    return load_keyring(paths, path)


def add_version(ring: Keyring) -> Keyring:
    """A keyring with a new master key version marked pending (current unchanged)."""
    if ring.pending_version is not None:
        return ring  # an interrupted rotation resumes with the same pending key
    new_v = max(ring.masters) + 1
    masters = {**ring.masters, new_v: secrets.token_bytes(MASTER_KEY_BYTES)}
    return Keyring(ring.path, ring.current_version, masters, ring.vault_key, new_v)


def promote_pending(ring: Keyring) -> Keyring:
    """A keyring whose current version is the pending one; older master keys are dropped.

    Once every token is re-computed nothing needs the old key, and keeping it would
    let anyone holding the key file link old copies (exports, backups) to new data.
    """
    if ring.pending_version is None:
        return ring
    v = ring.pending_version
    return Keyring(ring.path, v, {v: ring.masters[v]}, ring.vault_key, None)


def check_canary(
    ring: Keyring, stored: str | None, *, where: str, version: int | None = None
) -> None:
    """Compare a stored canary token with the key file's; raise :class:`KeyProblem` on mismatch.

    ``stored`` None means the store has no canary yet (new store): nothing to compare.
    """
    if stored is None:
        return
    v = version if version is not None else ring.current_version
    stored_version = token_version(stored)
    if stored_version is not None and stored_version != v:
        raise KeyProblem(
            f"{where} holds tokens of key version {stored_version} but the key file "
            f"{ring.path} is at version {v}; finish or redo the rotation (`datahub keys rotate`)"
        )
    if stored_version is None or v not in ring.masters or ring.canary(v) != stored:
        raise KeyProblem(
            f"the key file {ring.path} is not the key {where} was made with (canary mismatch); "
            "refusing to run so that no inconsistent tokens are written"
        )

"""Key rotation: new master key version, every token re-computed, old tokens gone.

Order (each step idempotent, so an interrupted rotation is resumed by running
it again with the same pending key):

1. add version n+1 to the key file as *pending* (current stays n);
2. build the old → new token mapping from the vault (decrypt originals,
   HMAC under the new domain keys);
3. re-tokenise the warehouse, then the build file and the previous build file,
   each in one transaction (``warehouse.retokenise``);
4. re-tokenise the vault and its canary in one transaction;
5. make n+1 the current version in the key file and drop the old master key.

Finally, if a published snapshot exists, it is published again from the
re-tokenised build file (``warehouse.build.publish``, atomic), so no old token
remains there either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datahub.config import Paths
from datahub.privacy.keys import (
    KeyProblem,
    Keyring,
    add_version,
    check_canary,
    load_keyring,
    promote_pending,
    write_keyring,
)
from datahub.privacy.tokens import token_version
from datahub.privacy.vault import open_vault
from datahub.warehouse.retokenise import RetokeniseReport, retokenise_warehouse


@dataclass
class RotationReport:
    """Outcome of :func:`rotate_keys`."""

    old_version: int
    new_version: int
    vault_tokens: int
    warehouse: RetokeniseReport | None  # None when no warehouse exists yet
    resumed: bool
    build: RetokeniseReport | None = None  # None when nothing was built yet
    republished: Path | None = None  # the snapshot published again, if there was one


def _republish(paths: Paths) -> Path | None:
    if not (paths.published.exists() and paths.build.exists()):
        return None
    from datahub.warehouse.build import publish

    return publish(paths).path


def rotate_keys(paths: Paths, *, republish: bool = True) -> RotationReport:
    """Rotate to a new key version and re-tokenise the vault and the warehouse.

    With ``republish`` an existing published snapshot is rebuilt afterwards.
    """
    ring = load_keyring(paths)
    resumed = ring.pending_version is not None
    pending: Keyring = add_version(ring)
    if not resumed:
        write_keyring(pending, pending.path, overwrite=True)
    new_version = pending.pending_version
    assert new_version is not None
    with open_vault(paths, pending, check=False) as vault:
        stored = vault.stored_canary()
        if stored is not None:
            version = token_version(stored[1])
            if version not in (ring.current_version, new_version):
                raise KeyProblem(
                    f"the vault is at key version {version}, the key file at {ring.current_version}"
                )
            check_canary(pending, stored[1], where="the vault", version=version)
        mapping = vault.rotation_mapping(pending, new_version)
        warehouse = retokenise_warehouse(paths.warehouse, mapping, pending, new_version)
        build = retokenise_warehouse(paths.build, mapping, pending, new_version)
        retokenise_warehouse(paths.build_previous, mapping, pending, new_version)
        vault.apply_rotation(mapping, pending, new_version)
    write_keyring(promote_pending(pending), pending.path, overwrite=True)
    published = _republish(paths) if republish else None
    return RotationReport(
        ring.current_version,
        new_version,
        len(mapping),
        warehouse,
        resumed,
        build=build,
        republished=published,
    )

"""Runtime locations. Every piece of state lives under ``DATAHUB_HOME``.

Nothing here touches the disk at import time; callers ask for a :class:`Paths`
and create what they need.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_HOME = "DATAHUB_HOME"
ENV_KEY_FILE = "DATAHUB_KEY_FILE"
DEFAULT_HOME = ".datahub"

#: The repository's committed sample feeds (used when no --sources is given).
REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SOURCES = REPO_ROOT / "sample_sources"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"


def datahub_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the state folder: explicit argument, else $DATAHUB_HOME, else ./.datahub."""
    if explicit is not None:
        return Path(explicit).resolve()
    return Path(os.environ.get(ENV_HOME) or DEFAULT_HOME).resolve()


@dataclass(frozen=True)
class Paths:
    """Well-known files and folders below one DATAHUB_HOME."""

    home: Path

    @classmethod
    def from_env(cls, explicit: str | os.PathLike[str] | None = None) -> Paths:
        return cls(datahub_home(explicit))

    @property
    def warehouse(self) -> Path:
        """The working warehouse: only the loader writes it."""
        return self.home / "warehouse.duckdb"

    @property
    def build(self) -> Path:
        """The build file: staging, integrated and marts, made afresh by every build.

        Kept apart from the warehouse (raw, quarantine, audit) so that publishing
        is a copy of this file, and so that nothing of the raw layer can reach the
        published snapshot, not even in DuckDB's free blocks.
        """
        return self.home / "build.duckdb"

    @property
    def build_previous(self) -> Path:
        """The build file of the build before: read-only, for carrying person keys forward."""
        return self.home / "build.previous.duckdb"

    @property
    def published(self) -> Path:
        """The published snapshot analysts open read-only."""
        return self.home / "published" / "datahub.duckdb"

    @property
    def vault(self) -> Path:
        """Re-identification vault: encrypted originals, its own DuckDB file."""
        return self.home / "vault" / "vault.duckdb"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def key_file(self) -> Path:
        """Master key file; $DATAHUB_KEY_FILE overrides the default location."""
        override = os.environ.get(ENV_KEY_FILE)
        return Path(override).resolve() if override else self.keys_dir / "master.key"

    @property
    def staging(self) -> Path:
        """Pseudonymised Parquet handed from prepare tasks to the loader."""
        return self.home / "staging"

    @property
    def data_docs(self) -> Path:
        return self.home / "data_docs"

    @property
    def gx_results(self) -> Path:
        return self.home / "gx"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def audit_log(self) -> Path:
        """Hash-chained re-identification log."""
        return self.home / "vault" / "reidentification.log.jsonl"

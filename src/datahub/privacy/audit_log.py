"""Tamper-evident re-identification log (JSON lines, hash-chained).

Each line is one entry: ``seq``, ``time``, ``actor``, ``reason``, ``token``,
``outcome``, ``prev_hash`` and ``hash = sha256(prev_hash + canonical entry)``,
where the canonical entry is the JSON of every field but ``hash`` with sorted
keys. Editing, deleting or reordering lines breaks the chain at a line that
:func:`verify_audit_log` names; deleting lines at the end is caught by
comparing with the head (last ``seq`` and ``hash``) the vault stores.

The log never holds an original value: only tokens (or ``<malformed>`` when
what was asked for is not a token) and outcomes.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
ENTRY_FIELDS = ("seq", "time", "actor", "reason", "token", "outcome", "prev_hash")


def canonical(entry: dict[str, Any]) -> str:
    """The canonical JSON of an entry without its ``hash``."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: dict[str, Any]) -> str:
    """``sha256(prev_hash + canonical entry)`` as hex."""
    return hashlib.sha256((entry["prev_hash"] + canonical(entry)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Head:
    """The last entry's sequence number and hash (0 and the genesis hash for an empty log)."""

    seq: int
    hash: str


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise writers of one log (several CLI calls may run at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _last_line(path: Path) -> str | None:
    if not path.exists():
        return None
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return lines[-1] if lines else None


def read_head(path: Path) -> Head:
    """The head of the log as written in the file (not verified)."""
    last = _last_line(path)
    if last is None:
        return Head(0, GENESIS_HASH)
    entry = json.loads(last)
    return Head(int(entry["seq"]), str(entry["hash"]))


def append_entry(path: Path, *, actor: str, reason: str, token: str, outcome: str) -> Head:
    """Append one entry (fsynced) and return the new head."""
    with _locked(path):
        head = read_head(path)
        entry: dict[str, Any] = {
            "seq": head.seq + 1,
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "reason": reason,
            "token": token,
            "outcome": outcome,
            "prev_hash": head.hash,
        }
        entry["hash"] = entry_hash(entry)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return Head(entry["seq"], entry["hash"])


@dataclass
class AuditReport:
    """Result of :func:`verify_audit_log`: entries checked and problems by line."""

    path: Path
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_audit_log(path: Path, expected_head: Head | None = None) -> AuditReport:
    """Check the hash chain; report the first line where it breaks, and the head.

    ``expected_head`` (kept by the vault) detects lines deleted from the end.
    """
    report = AuditReport(path)
    if not path.exists():
        if expected_head is not None and expected_head.seq > 0:
            report.problems.append(
                f"{path} is missing but the vault recorded {expected_head.seq} entries"
            )
        return report
    prev = GENESIS_HASH
    seq = 0
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            missing = [f for f in (*ENTRY_FIELDS, "hash") if f not in entry]
        except ValueError:
            report.problems.append(f"line {lineno}: not valid JSON")
            return report
        if missing:
            report.problems.append(f"line {lineno}: missing fields {', '.join(missing)}")
            return report
        report.entries += 1
        if entry["hash"] != entry_hash(entry):
            report.problems.append(
                f"line {lineno}: entry was modified (hash does not match its content)"
            )
            return report
        if entry["prev_hash"] != prev or entry["seq"] != seq + 1:
            report.problems.append(
                f"line {lineno}: chain broken (expected entry {seq + 1} after hash {prev[:12]}…, "
                f"found entry {entry['seq']}); an entry before it was deleted or entries were reordered"
            )
            return report
        prev, seq = entry["hash"], entry["seq"]
    if expected_head is not None and (expected_head.seq, expected_head.hash) != (seq, prev):
        report.problems.append(
            f"log ends at entry {seq} but the vault recorded entry {expected_head.seq} as the last: "
            "entries were removed from the end (or the log was replaced)"
        )
    return report

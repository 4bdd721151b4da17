"""The DuckDB floor: the fastest plain load of the same CSV files, for comparison.

``CREATE TABLE … AS SELECT * FROM read_csv(…)`` into a DuckDB file, identifier
columns typed VARCHAR (so ID numbers keep their leading zeros and trailing X),
everything else sniffed. DuckDB cannot decode GBK (its ``encoding`` option
covers UTF-8, UTF-16 and Latin-1 only without the ICU encodings extension, and
extensions cannot be downloaded here); for GBK feeds the floor is measured on a
UTF-8 transcoded copy and flagged, the transcoding itself not timed.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from datahub.sources.contracts import Feed


def feed_files(sources: Path, feed: Feed) -> list[Path]:
    """The feed's files below ``sources`` (every date), sorted."""
    folder = sources / feed.department
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if feed.file_pattern.match(p.name))


def _transcode(files: list[Path], encoding: str, out_dir: Path) -> list[Path]:
    out = []
    for f in files:
        target = out_dir / f.name
        with (
            f.open("r", encoding=encoding, newline="") as src,
            target.open("w", encoding="utf-8", newline="") as dst,
        ):
            shutil.copyfileobj(src, dst, 1 << 20)
        out.append(target)
    return out


def _identifier_headers(first: Path, feed: Feed, encoding: str) -> dict[str, str]:
    """Header spellings (contract name or Chinese label) of the identifier columns → VARCHAR."""
    with first.open("r", encoding=encoding, newline="") as fh:
        header = next(csv.reader(fh), [])
    wanted = {c.name for c in feed.columns if c.role} | {c.label for c in feed.columns if c.role}
    return {h: "VARCHAR" for h in header if h.strip() in wanted}


def _load(files: list[Path], feed: Feed, db: Path, encoding: str = "utf-8-sig") -> tuple[int, int]:
    """CTAS all files into one table; return (rows, columns)."""
    types = _identifier_headers(files[0], feed, encoding)
    con = duckdb.connect(str(db))
    try:
        if types:
            con.execute(
                "CREATE TABLE floor AS SELECT * FROM read_csv(?, header = true, types = ?)",
                [[str(f) for f in files], types],
            )
        else:  # a feed without identifier columns: everything sniffed
            con.execute(
                "CREATE TABLE floor AS SELECT * FROM read_csv(?, header = true)",
                [[str(f) for f in files]],
            )
        rows = con.execute("SELECT count(*) FROM floor").fetchone()
        cols = len(con.execute("DESCRIBE floor").fetchall())
    finally:
        con.close()
    return int(rows[0]) if rows else 0, cols


def floor_feed(sources: Path, feed: Feed) -> dict[str, Any]:
    """Measure the DuckDB floor of one feed (run inside a fresh child process)."""
    files = feed_files(sources, feed)
    result: dict[str, Any] = {"feed": feed.key, "files": len(files), "encoding": feed.encoding}
    if not files:
        return {**result, "rows": 0, "seconds": 0.0}
    with tempfile.TemporaryDirectory(prefix="datahub-floor-") as tmp:
        db = Path(tmp) / "floor.duckdb"
        source_files = files
        if feed.encoding.lower() == "gbk":
            # Try it first, so the note states what DuckDB really did with GBK bytes.
            try:
                _load(files, feed, Path(tmp) / "gbk_try.duckdb", "gbk")
                result["gbk_direct"] = "loaded (bytes not valid UTF-8 were not detected)"
            except duckdb.Error as exc:
                result["gbk_direct"] = f"failed: {type(exc).__name__}"
            source_files = _transcode(files, "gbk", Path(tmp))
            result["floor_on"] = "utf-8 transcoded copy (transcoding not timed)"
        start = time.perf_counter()
        rows, cols = _load(source_files, feed, db)
        result.update(seconds=time.perf_counter() - start, rows=rows, columns=cols)
    return result

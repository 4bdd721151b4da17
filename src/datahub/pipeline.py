"""The pipeline as plain Python, called by the CLI and by the Airflow tasks alike.

Ingestion (this section) handles one feed file in two steps:

* :func:`prepare` — read (contract) → normalise/type → pseudonymise →
  validate (GX) → ``DATAHUB_HOME/staging/<batch_id>/`` (the chunk engines of
  :mod:`datahub.prepare`). It never opens the warehouse, so any number of
  prepares can run on any workers.
* :func:`load` — the only writer: one DuckDB transaction per batch
  (see :mod:`datahub.warehouse.loader`).

Reference codes for the ``unknown_code`` checks come from the government
``divisions``/``addresses`` snapshot *in the same sources folder* (the newest
one dated on or before the file, else the oldest): prepare reads that CSV,
never the warehouse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from datahub.config import EXPECTATIONS_DIR, SAMPLE_SOURCES, Paths
from datahub.sources.contracts import DEPARTMENTS, FEEDS, FEEDS_BY_KEY, Feed, feed_for_file

if TYPE_CHECKING:  # pragma: no cover
    from datahub.privacy.keys import Keyring
    from datahub.quality.checks import References
    from datahub.warehouse.loader import LoadOutcome

# =============================================================== ingestion


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def identify(path: Path, department: str | None = None) -> tuple[Feed, str]:
    """The feed and date stamp of a landing file (department defaults to its folder name)."""
    dept = department or path.parent.name
    if dept not in DEPARTMENTS:
        raise ValueError(
            f"cannot tell the department of {path.name}: folder {dept!r} is not one of {', '.join(DEPARTMENTS)}"
        )
    return feed_for_file(dept, path.name)


def _stamp_key(stamp: str) -> str:
    return stamp + "01" if len(stamp) == 6 else stamp


def _snapshot_for(root: Path, feed_name: str, stamp: str) -> Path | None:
    gov = root / "government"
    if not gov.is_dir():
        return None
    feed = FEEDS_BY_KEY[f"government.{feed_name}"]
    found = sorted(
        (m.group(1), p) for p in gov.iterdir() if (m := feed.file_pattern.match(p.name)) is not None
    )
    if not found:
        return None
    key = _stamp_key(stamp)
    earlier = [p for s, p in found if s <= key]
    return earlier[-1] if earlier else found[0][1]


@lru_cache(maxsize=16)
def _codes(path: Path, mtime: float, feed_key: str, column: str) -> frozenset[str]:
    import pyarrow.compute as pc

    from datahub.sources.parse import _clean_one
    from datahub.sources.reader import iter_tables, read_header

    feed = FEEDS_BY_KEY[feed_key]
    out: set[str] = set()
    for chunk in iter_tables(path, feed, read_header(path, feed)):
        # distinct raw cells first (codes repeat), then cleaned as every cell is
        for raw in pc.unique(chunk.column(column)).drop_null().to_pylist():
            code = _clean_one(raw)
            if code is not None:
                out.add(code)
    return frozenset(out)


def reference_sets(root: Path, stamp: str) -> References:
    """Division/grid/address code sets from the government snapshot in ``root`` (see module doc)."""
    from datahub.quality.checks import References
    from datahub.sources.reader import FileRejected

    div = _snapshot_for(root, "divisions", stamp)
    addr = _snapshot_for(root, "addresses", stamp)
    division = grid = address = None
    with contextlib.suppress(FileRejected, OSError):
        if div is not None:
            division = _codes(div, div.stat().st_mtime, "government.divisions", "division_code")
            # every division code: a grid row whose level cell is blank is still a grid
            grid = division
    with contextlib.suppress(FileRejected, OSError):
        if addr is not None:
            address = _codes(addr, addr.stat().st_mtime, "government.addresses", "address_code")
    source = ", ".join(p.name for p in (div, addr) if p is not None)
    return References(division=division, address=address, grid=grid, source=source)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@lru_cache(maxsize=32)
def _suite(table: str) -> dict[str, Any]:
    from datahub.quality.suites import load_suite

    feed = next(f for f in FEEDS if f.table == table)
    return load_suite(feed, EXPECTATIONS_DIR)


def prepare(
    path: Path,
    *,
    paths: Paths,
    keyring: Keyring,
    department: str | None = None,
    sources_root: Path | None = None,
    now: dt.datetime | None = None,
    chunk_rows: int | None = None,
    engine: str = "sql",
    previous_rows: Callable[[], int | None] | None = None,
    vault_id: str | None = None,
) -> Path:
    """Read, pseudonymise and validate one feed file into a staged batch folder.

    Returns the batch folder. A file the contract rejects (binary, wrong header,
    failed batch expectation) still gets a folder whose ``result.json`` says
    ``rejected`` with the reason, so that the loader can record it in the ledger.
    Never opens the warehouse. ``engine`` is ``"sql"`` (DuckDB, the default) or
    ``"reference"`` (the pandas path the SQL engine is tested against); see
    :mod:`datahub.prepare`. ``previous_rows`` gives the row count of the feed's
    last loaded batch for the row-count gate (default: the loader's state file,
    read when the gate is checked). ``vault_id`` is for a caller that loads in
    this process and reports committed batches (``run_sources``): the batch's
    vault rows then leave out tokens that vault is known to hold.
    """
    from datahub.prepare import SQL_CHUNK_ROWS, ReferenceChunkEngine, prepare_rows, sql_engine
    from datahub.quality import staging as st
    from datahub.quality.checks import future_limit
    from datahub.quality.suites import GATE_MIN_ROWS, REASONS
    from datahub.sources.reader import DEFAULT_CHUNK_ROWS, FileRejected

    if engine not in ("sql", "reference"):
        raise ValueError(f"unknown prepare engine {engine!r}; expected sql or reference")
    path = Path(path).resolve()
    feed, stamp = identify(path, department)
    started = _now()
    now = now or started
    digest = file_hash(path)
    batch_id = f"{feed.table}-{stamp}-{digest[:10]}-{secrets.token_hex(3)}"
    folder = paths.staging / batch_id
    tmp = paths.staging / f".{batch_id}.tmp"
    tmp.mkdir(parents=True, exist_ok=False)
    result = st.BatchResult(
        batch_id=batch_id,
        department=feed.department,
        feed=feed.name,
        table=feed.table,
        source_file=path.name,
        source_path=str(path),
        content_hash=digest,
        stamp=stamp,
        status="prepared",
        started_at=started.isoformat(),
    )
    try:
        try:
            prepare_rows(
                path,
                feed,
                result,
                tmp,
                engine=sql_engine(keyring) if engine == "sql" else ReferenceChunkEngine(keyring),
                suite=_suite(feed.table),
                refs=reference_sets(sources_root or path.parent.parent, stamp),
                limit=future_limit(stamp, now),
                chunk_rows=chunk_rows
                or (SQL_CHUNK_ROWS if engine == "sql" else DEFAULT_CHUNK_ROWS),
                previous_rows=previous_rows or (lambda: st.previous_rows(paths.home, feed)),
                run_time=started,
                vault_id=vault_id,
            )
        except FileRejected as exc:
            result.status = "rejected"
            result.message = f"{path.name}: {exc.message}"
            result.failed_expectations = [exc.reason]
            result.rows_rejected = result.rows_read
            result.rows_accepted = result.rows_quarantined = 0
        if result.status == "rejected":
            for name in (st.ACCEPTED, st.QUARANTINE, st.VAULT):
                (tmp / name).unlink(missing_ok=True)
        elif result.rows_read and result.rows_accepted == 0 and result.rows_read < GATE_MIN_ROWS:
            result.warnings.append("every row of this file was quarantined")
        result.reasons = {r: result.reasons[r] for r in REASONS if r in result.reasons}
        result.finished_at = _now().isoformat()
        result.write(tmp)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load(
    batch_dir: Path, *, paths: Paths, keyring: Keyring, con: Any = None, vault: Any = None
) -> LoadOutcome:
    """Load one prepared batch into the warehouse (one transaction); see :mod:`datahub.warehouse.loader`.

    ``con``/``vault`` let a caller loading many batches keep both files open.
    """
    from datahub.warehouse.loader import load_batch

    return load_batch(Path(batch_dir), paths=paths, keyring=keyring, con=con, vault=vault)


# ------------------------------------------------------------- file plans


def _file_order(feed: Feed, stamp: str) -> tuple[int, str, int, int]:
    dept = DEPARTMENTS.index(feed.department)
    pos = FEEDS.index(feed)
    if feed.kind == "snapshot":  # government's code tables before everything else
        return (0 if feed.department == "government" else 1, _stamp_key(stamp), dept, pos)
    return (2, _stamp_key(stamp), dept, pos)


def list_feed_files(
    sources: Path,
    departments: tuple[str, ...] = DEPARTMENTS,
    feeds: tuple[str, ...] | None = None,
) -> list[Path]:
    """Every feed file of a sources folder: reference snapshots first, then events by date.

    Snapshots load in date order with government first (the code tables other
    feeds refer to), events by date then department and feed order. Files
    that match no contract pattern are ignored (``_truth/``, READMEs).
    ``feeds`` (keys such as ``police.incidents``) keeps only those feeds' files.
    """
    unknown = sorted(set(feeds or ()) - set(FEEDS_BY_KEY))
    if unknown:
        raise ValueError(f"unknown feed(s) {', '.join(unknown)}; expected e.g. police.incidents")
    found: list[tuple[tuple[int, str, int, int], Path]] = []
    for dept in departments:
        folder = sources / dept
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            try:
                feed, stamp = feed_for_file(dept, p.name)
            except ValueError:
                continue
            if feeds is None or feed.key in feeds:
                found.append((_file_order(feed, stamp), p))
    return [p for _, p in sorted(found)]


def files_for_day(sources: Path, department: str, day: dt.date) -> list[Path]:
    """Files an Airflow run for ``day`` ingests for one department.

    * event_day feeds: the file stamped with that day;
    * event_month feeds: on the 1st of a month, the file of the *previous*
      month (complete by then);
    * snapshots: the newest snapshot dated on or before the day (re-running a
      day re-offers the same snapshot, which the loader then skips as a
      duplicate by content hash).
    """
    out: list[Path] = []
    for p in list_feed_files(sources, (department,)):
        feed, stamp = feed_for_file(department, p.name)
        if feed.kind == "event_day" and stamp == day.strftime("%Y%m%d"):
            out.append(p)
        elif feed.kind == "event_month" and day.day == 1:
            prev = (day.replace(day=1) - dt.timedelta(days=1)).strftime("%Y%m")
            if stamp == prev:
                out.append(p)
    snaps: dict[str, tuple[str, Path]] = {}
    for p in list_feed_files(sources, (department,)):
        feed, stamp = feed_for_file(department, p.name)
        newer = feed.name not in snaps or snaps[feed.name][0] < stamp
        if feed.kind == "snapshot" and stamp <= day.strftime("%Y%m%d") and newer:
            snaps[feed.name] = (stamp, p)
    snapshots = [p for _, p in snaps.values()]
    return sorted(snapshots, key=lambda p: _file_order(*feed_for_file(department, p.name))) + out


# --------------------------------------------------------------- whole runs


@dataclass
class FileOutcome:
    """One file's end state after prepare + load (what `datahub run` prints)."""

    path: Path
    feed: str
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_rejected: int = 0
    message: str = ""
    batch_id: str = ""


def ingest_file(
    path: Path,
    *,
    paths: Paths,
    keyring: Keyring,
    department: str | None = None,
    sources_root: Path | None = None,
    con: Any = None,
    vault: Any = None,
    now: dt.datetime | None = None,
) -> FileOutcome:
    """prepare + load of one file in this process. Batch rejections are returned, not raised."""
    batch = prepare(
        path,
        paths=paths,
        keyring=keyring,
        department=department,
        sources_root=sources_root,
        now=now,
    )
    return load_outcome(path, batch, paths=paths, keyring=keyring, con=con, vault=vault)


def load_outcome(
    path: Path, batch: Path, *, paths: Paths, keyring: Keyring, con: Any = None, vault: Any = None
) -> FileOutcome:
    """Load a prepared batch of ``path``; a batch rejection becomes the outcome, not an error."""
    from datahub.warehouse.loader import BatchRejected

    try:
        out = load(batch, paths=paths, keyring=keyring, con=con, vault=vault)
    except BatchRejected as exc:
        out = exc.outcome
    return FileOutcome(
        path=path,
        feed=f"{out.department}.{out.feed}",
        status=out.status,
        rows_read=out.rows_read,
        rows_loaded=out.rows_loaded,
        rows_quarantined=out.rows_quarantined,
        rows_rejected=out.rows_rejected,
        message=out.message,
        batch_id=out.batch_id,
    )


def run_sources(
    sources: Path = SAMPLE_SOURCES,
    *,
    paths: Paths,
    keyring: Keyring,
    departments: tuple[str, ...] = DEPARTMENTS,
    progress: Callable[[int, int, FileOutcome], None] | None = None,
    build_docs: bool = True,
    workers: int = 1,
    feeds: tuple[str, ...] | None = None,
) -> list[FileOutcome]:
    """Ingest every feed file of a sources folder (snapshots first, then events by date).

    ``feeds`` limits the run to those feeds (the other files of the folder still
    serve as reference tables for the code checks).

    With ``workers`` > 1 the per-file prepare (read → normalise → pseudonymise →
    validate → staged Parquet) runs in that many worker processes while this
    process, the only writer, loads the batches strictly in file order — the
    same split the Airflow DAGs make between any worker and the ``warehouse``
    queue. The result is the same as with one worker.
    """
    from datahub.privacy.vault import open_vault
    from datahub.warehouse.loader import open_warehouse

    files = list_feed_files(sources, departments, feeds)
    outcomes: list[FileOutcome] = []

    def report(o: FileOutcome) -> None:
        outcomes.append(o)
        if progress is not None:
            progress(len(outcomes), len(files), o)

    with contextlib.ExitStack() as stack:
        batches = (
            _prepared_in_pool(
                stack, files, paths=paths, keyring=keyring, sources=sources, workers=workers
            )
            if workers > 1
            else None
        )
        con = stack.enter_context(open_warehouse(paths))
        vault = stack.enter_context(open_vault(paths, keyring))
        loads = stack.enter_context(_OrderedLoads(paths, keyring, con, vault))
        vault_id = vault.vault_id()  # the loads below report each committed batch (note_vaulted)
        for f in files:
            if batches is None:
                # the row-count gate reads the feed's last loaded batch: its load may still
                # run while this file is prepared, up to the gate's check
                batch = prepare(
                    f,
                    paths=paths,
                    keyring=keyring,
                    sources_root=sources,
                    previous_rows=loads.previous_rows_of(identify(f)[0]),
                    vault_id=vault_id,
                )
            else:
                batch = next(batches)
            loads.submit(f, batch)
            for o in loads.finished():
                report(o)
        for o in loads.drain():
            report(o)
    if build_docs:
        build_data_docs(paths)
    return outcomes


class _OrderedLoads:
    """Loads prepared batches in submission order in one background thread.

    The next file's prepare then runs while this thread loads (DuckDB releases
    the GIL, and an insert keeps about one core busy). Loads stay strictly in
    file order, through the one warehouse connection and the one vault.
    """

    def __init__(self, paths: Paths, keyring: Keyring, con: Any, vault: Any) -> None:
        from concurrent.futures import Future, ThreadPoolExecutor

        from datahub.prepare import note_vaulted

        def load_one(f: Path, b: Path) -> FileOutcome:
            out = load_outcome(f, b, paths=paths, keyring=keyring, con=con, vault=vault)
            if out.status == "loaded":  # committed: the next files need not send its tokens
                note_vaulted(keyring, out.batch_id)
            return out

        self._load = load_one
        self._home = paths.home
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datahub-load")
        self._queue: list[tuple[str, Future[FileOutcome]]] = []

    def submit(self, path: Path, batch: Path) -> None:
        self._queue.append((identify(path)[0].key, self._pool.submit(self._load, path, batch)))

    def wait_for(self, feed_key: str) -> None:
        """Block until every submitted batch of ``feed_key`` is loaded."""
        for key, fut in list(self._queue):
            if key == feed_key:
                fut.result()

    def previous_rows_of(self, feed: Feed) -> Callable[[], int | None]:
        """The row-count gate's reference for ``feed``: waits for its submitted loads."""
        from datahub.quality import staging as st

        def previous_rows() -> int | None:
            self.wait_for(feed.key)
            return st.previous_rows(self._home, feed)

        return previous_rows

    def finished(self) -> Iterator[FileOutcome]:
        """Outcomes of the loads done so far, in order (stops at the first still running)."""
        while self._queue and self._queue[0][1].done():
            yield self._queue.pop(0)[1].result()

    def drain(self) -> Iterator[FileOutcome]:
        while self._queue:
            yield self._queue.pop(0)[1].result()

    def __enter__(self) -> _OrderedLoads:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _prepared_in_pool(
    stack: contextlib.ExitStack,
    files: list[Path],
    *,
    paths: Paths,
    keyring: Keyring,
    sources: Path,
    workers: int,
) -> Iterator[Path]:
    """Submit every file's prepare to a process pool; yield the batch folders in file order.

    Workers come from a forkserver that has imported GX once (a fork of this
    process could inherit DuckDB and Arrow threads). Each worker loads the key
    file itself: key material never crosses the process boundary. On error or
    interruption the queued prepares are cancelled.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["datahub.pipeline", "datahub.quality.gx_runner"])
    pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers, mp_context=ctx))
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    futures = [
        pool.submit(_prepare_job, str(f), paths, str(keyring.path), str(sources)) for f in files
    ]

    def ordered() -> Iterator[Path]:
        for fut in futures:
            yield Path(fut.result())

    return ordered()


_worker_keyrings: dict[tuple[str, str], Keyring] = {}


def _prepare_job(path: str, paths: Paths, key_file: str, sources: str) -> str:
    """Process-pool entry point: :func:`prepare` one file, return its batch folder."""
    from datahub.privacy.keys import load_keyring
    from datahub.quality.gx_runner import quiet_gx_logging

    quiet_gx_logging()
    cache_key = (str(paths.home), key_file)
    keyring = _worker_keyrings.get(cache_key)
    if keyring is None:
        keyring = _worker_keyrings[cache_key] = load_keyring(paths, Path(key_file))
    return str(prepare(Path(path), paths=paths, keyring=keyring, sources_root=Path(sources)))


def build_data_docs(paths: Paths) -> Path:
    """Build GX Data Docs (DATAHUB_HOME/data_docs) from every stored validation result."""
    from datahub.quality.gx_runner import build_data_docs as _build
    from datahub.quality.suites import load_suite

    suites = [load_suite(f, EXPECTATIONS_DIR) for f in FEEDS]
    return _build(paths.gx_results / "validations", paths.data_docs, suites)


def summarise(outcomes: list[FileOutcome]) -> pd.DataFrame:
    """Rows per feed: files, read, loaded, quarantined, rejected (for `datahub demo`)."""
    if not outcomes:
        return pd.DataFrame(columns=["feed", "files", "read", "loaded", "quarantined", "rejected"])
    df = pd.DataFrame(
        {
            "feed": [o.feed for o in outcomes],
            "files": 1,
            "read": [o.rows_read for o in outcomes],
            "loaded": [o.rows_loaded for o in outcomes],
            "quarantined": [o.rows_quarantined for o in outcomes],
            "rejected": [o.rows_rejected for o in outcomes],
        }
    )
    return df.groupby("feed", sort=False, as_index=False).sum()


def demo(
    paths: Paths,
    sources: Path = SAMPLE_SOURCES,
    progress: Callable[[int, int, FileOutcome], None] | None = None,
) -> tuple[pd.DataFrame, Path]:
    """Ensure dev keys and ingest the sample sources; returns the per-feed summary and the Data Docs index."""
    from datahub.privacy.keys import ensure_dev_keys

    keyring = ensure_dev_keys(paths)
    outcomes = run_sources(sources, paths=paths, keyring=keyring, progress=progress)
    return summarise(outcomes), paths.data_docs / "index.html"


@dataclass(frozen=True)
class PruneReport:
    """Staged batch folders removed (or, in a dry run, removable) and those kept."""

    removed: list[str]
    kept: list[str]
    bytes_freed: int

    def summary(self, *, dry_run: bool = False) -> str:
        """One line for logs and the CLI (counts and sizes only)."""
        verb = "would remove" if dry_run else "removed"
        return (
            f"{verb} {len(self.removed)} staged batch folder(s), "
            f"{self.bytes_freed / 2**20:.1f} MB; kept {len(self.kept)} "
            "(not settled in audit.batch_ledger)"
        )


def prune_staged(paths: Paths, *, dry_run: bool = False) -> PruneReport:
    """Remove staged batch folders whose batch the ledger records as settled.

    Staged Parquet is only the hand-over from prepare to load; once the ledger
    says a batch is loaded, rejected, a duplicate file or superseded, the
    warehouse and the vault hold everything it carried. Batches not in the
    ledger yet (waiting for their load) or ``failed`` are kept, and so are
    half-written ``.tmp`` folders, which a running prepare may still own.
    """
    from datahub.warehouse.loader import settled_batches

    settled = settled_batches(paths)
    removed: list[str] = []
    kept: list[str] = []
    freed = 0
    for folder in staged_batches(paths):
        if folder.name not in settled:
            kept.append(folder.name)
            continue
        freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        if not dry_run:
            shutil.rmtree(folder)
        removed.append(folder.name)
    return PruneReport(removed, kept, freed)


def staged_batches(paths: Paths) -> Iterator[Path]:
    """Complete staged batch folders (those with result.json)."""
    if paths.staging.is_dir():
        for p in sorted(paths.staging.iterdir()):
            if (p / "result.json").exists():
                yield p


# ============================================================ warehouse build
# (owned by the warehouse team: models → linkage → marts → mart gates → publish)


def ingest_sources_for_build(paths: Paths, sources: Path) -> list[FileOutcome]:
    """Ingest a sources folder before a build (``datahub build --sources``); no Data Docs."""
    from datahub.privacy.keys import ensure_dev_keys

    return run_sources(sources, paths=paths, keyring=ensure_dev_keys(paths), build_docs=False)


def build_warehouse(paths: Paths, *, publish: bool = True) -> dict[str, Any]:
    """Models, person linkage, marts, mart gates and (unless disabled) the published snapshot.

    Raises :class:`datahub.warehouse.mart_gates.MartGateFailed` — and publishes
    nothing — when a mart gate fails. Returns a counts-only summary.
    """
    from datahub.warehouse.build import build, summary

    return summary(build(paths, do_publish=publish))


def publish_warehouse(paths: Paths) -> dict[str, Any]:
    """Re-publish the snapshot from the working warehouse (gates are re-run first)."""
    from datahub.warehouse.build import check_marts, publish

    check_marts(paths)
    result = publish(paths)
    return {"published": str(result.path), "run_id": result.run_id, "tables": result.tables}


def publish_extract_file(
    paths: Paths, jurisdiction: str, out: Path, threshold: int = 5
) -> dict[str, Any]:
    """Jurisdiction extract of the published snapshot (only that division and below)."""
    from datahub.warehouse.publish import publish_extract

    result = publish_extract(paths.published, jurisdiction, out, threshold=threshold)
    return {"extract": str(result.path), "jurisdiction": jurisdiction, "tables": result.tables}


def linkage_score(paths: Paths, sources: Path) -> dict[str, Any]:
    """Score the published person cross-reference against ``<sources>/_truth`` (auditors only)."""
    from datahub.linkage.score import read_truth, score_linkage
    from datahub.warehouse.db import connect

    target = paths.published if paths.published.exists() else paths.build
    con = connect(target, read_only=True)
    try:
        xref = con.execute("SELECT * FROM integrated.person_xref").df()
    finally:
        con.close()
    return score_linkage(xref, read_truth(sources)).as_dict()


DEMO_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "One-minute dispatch and 135 arrival compliance by station (peak vs off season)",
        "SELECT station, season, sum(n_incidents) AS incidents, "
        "round(sum(n_dispatched_60s) / sum(n_dispatched), 3) AS dispatch_60s_rate, "
        "round(sum(n_arrived_on_target) / sum(n_arrived), 3) AS arrival_on_target_rate "
        "FROM mart_dispatch GROUP BY ALL ORDER BY station, season",
    ),
    (
        "Top 5 sensor blind spots (incidents per sensor in service)",
        "SELECT blind_spot_rank, township_name, village_name, grid_name, n_incidents, "
        "n_video + n_face + n_vehicle AS sensors, round(incidents_per_sensor, 1) AS per_sensor "
        "FROM mart_sensor_blind_spots ORDER BY blind_spot_rank LIMIT 5",
    ),
    (
        "民转刑 early warning: persons with repeated disputes also in police incidents, by township",
        "SELECT d.township_name, count(*) AS persons, sum(w.dispute_count) AS disputes, "
        "sum(w.police_incident_count) AS incidents FROM mart_dispute_early_warning AS w "
        "LEFT JOIN integrated.dim_division AS d ON d.division_code = w.township_code "
        "GROUP BY ALL ORDER BY persons DESC",
    ),
)


def demo_queries(paths: Paths) -> list[tuple[str, str, pd.DataFrame]]:
    """Run the example analyst queries on the published snapshot."""
    from datahub.warehouse.catalog import query

    return [(title, sql, query(paths.published, sql)) for title, sql in DEMO_QUERIES]

"""Prepare one feed file: read → clean/type → pseudonymise → check → staged batch.

:func:`prepare_rows` streams a file in chunks through a *chunk engine* into the
staged batch folder the loader reads (see :mod:`datahub.quality.staging`).
Two engines compute the same :class:`ChunkOutcome`:

* :class:`SqlChunkEngine` (production) — one in-memory DuckDB per process runs
  cleaning, typing, identifier normalisation, HMAC tokens, check flags,
  expectation masks and row reasons as one set-based query over the reader's
  Arrow chunk. Python handles only what is per *distinct* value and new to the
  process: odd ID/phone spellings, names and their pinyin, and the AES-SIV seal
  of each identifier value.
* :class:`ReferenceChunkEngine` — the pandas path (``datahub.sources.parse``,
  ``datahub.privacy.pseudonymise``, ``datahub.quality.checks``), kept as the
  reference: ``tests/integration/test_prepare_engines.py`` runs both over the
  sample feeds, defect fixtures and random files and requires equal batches.

Either way GX validates every chunk (:class:`~datahub.quality.gx_runner.FileValidation`)
and the batch fails if GX's count of any row-level expectation differs from
the engine's mask. Only pseudonymised columns and flags ever reach GX. GX and
the Parquet writers run one chunk behind the engine in a helper thread.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datahub.quality import staging as st
from datahub.sources.contracts import Column, Feed

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from datahub.privacy.keys import Keyring
    from datahub.quality.checks import References
    from datahub.quality.gx_runner import FileValidation

#: Rows per chunk of the SQL engine: DuckDB's fixed cost per query is paid per chunk, the
#: chunk bounds the memory. Base-scale ingest (4.3 M rows), peak RSS / CPU seconds:
#: 50 k 1.28 GB / 107 s, 75 k 1.35 GB / 91 s, 100 k 1.59 GB / 93 s, 200 k 2.0 GB.
SQL_CHUNK_ROWS = 75_000
#: Rows per record batch of the engine's streamed query result.
STREAM_BATCH_ROWS = 20_000
#: ``name_dob`` seals a process keeps (~100 B each; the seals of ID numbers, phones and
#: names live in the identifier caches): persons recur in every daily file and sealing
#: costs ~1.5 µs a value in Python. When full, the older half is dropped.
SEALED_MAX = 500_000
#: Distinct raw values per identifier role a process keeps with their normalised form and
#: token (~150 B each). When full, the older half is dropped: memory stays flat however
#: many persons a feed has, at the cost of normalising returning ones again.
CACHE_MAX = 400_000
#: Files prepared and not yet loaded whose vault rows an engine remembers (see
#: ``SqlChunkEngine.vault_committed``); older ones are forgotten (their tokens are sent again).
PENDING_BATCHES = 16
#: Staged Parquet compression: the files only live until the loader has read them.
STAGING_COMPRESSION = "lz4"

ROW_NUMBER, TRUNCATED, OVERFLOW, DUPLICATE = (
    "_row_number",
    "_truncated",
    "_overflow",
    "_duplicate_row",
)


@dataclass
class ChunkOutcome:
    """What one chunk of a file became."""

    accepted: pa.Table  # staging.accepted_schema
    quarantine: pa.Table  # staging.quarantine_schema
    vault: pa.Table  # staging.VAULT_SCHEMA: the chunk's tokens with their seals
    checks: pd.DataFrame  # the validation frame (all rows) or the columns GX reads of it
    expectation_counts: dict[str, int]  # checks.expectation_key → rows failing it
    reason_counts: dict[str, int]  # reason → rows with it
    rows: int
    failed: int


class ChunkEngine(Protocol):
    """Turns reader chunks of one file into :class:`ChunkOutcome` s."""

    def start_file(
        self, feed: Feed, suite: dict[str, Any], refs: References, vault_id: str | None = None
    ) -> None:
        """Begin a file whose batch goes to the vault ``vault_id`` (None: not known)."""

    def process(self, chunk: pa.Table, limit: pd.Timestamp) -> ChunkOutcome: ...

    def finish_file(self, batch_id: str) -> None:
        """The file's chunks are done; its staged batch is ``batch_id``."""


# ====================================================================== orchestration


@dataclass
class _Writers:
    folder: Path
    writers: dict[str, pq.ParquetWriter] = field(default_factory=dict)

    def write(self, name: str, table: pa.Table) -> None:
        w = self.writers.get(name)
        if w is None:
            w = self.writers[name] = pq.ParquetWriter(
                self.folder / name, table.schema, compression=STAGING_COMPRESSION
            )
        if table.num_rows:
            w.write_table(table)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def prepare_rows(
    path: Path,
    feed: Feed,
    result: st.BatchResult,
    folder: Path,
    *,
    engine: ChunkEngine,
    suite: dict[str, Any],
    refs: References,
    limit: pd.Timestamp,
    chunk_rows: int,
    previous_rows: Callable[[], int | None],
    run_time: dt.datetime,
    vault_id: str | None = None,
) -> None:
    """Stream ``path`` through ``engine`` into ``folder`` and fill ``result``.

    ``previous_rows`` returns the row count of the feed's last loaded batch (the
    row-count gate's reference). It is called once, when the gate is checked —
    after the last chunk, or with the first one of a one-chunk file — so that a
    caller may still be loading the previous batch while this file is prepared.

    ``vault_id`` names the vault the batch will be loaded into, when the caller
    knows it and tells the engine which batches are committed (see
    :meth:`SqlChunkEngine.vault_committed`); the staged vault rows then leave out
    tokens that vault already holds.

    Raises :class:`~datahub.sources.reader.FileRejected` for a file that cannot be
    read against its contract; a failed batch expectation sets ``result.status``
    to ``rejected``.
    """
    from datahub.quality.gx_runner import FileValidation
    from datahub.quality.suites import CHECK_COLUMNS, GATE_MIN_ROWS, validation_columns
    from datahub.sources.reader import FileRejected, iter_tables, read_header

    header = read_header(path, feed)
    result.encoding = header.encoding
    result.warnings.extend(header.warnings)
    if refs.division is None or refs.address is None:
        result.warnings.append(
            "no government divisions/addresses snapshot found: code checks skipped"
        )
    if header.empty:
        if header.size_bytes == 0:
            raise FileRejected("empty_file", "empty file (0 bytes, no header); nothing to load")
        result.message = f"{path.name}: header only, no data rows"
    validation = FileValidation(feed.table, suite)
    columns = [*validation_columns(feed), ROW_NUMBER, *CHECK_COLUMNS]
    acc_schema, q_schema = st.accepted_schema(feed), st.quarantine_schema(feed)
    writers = _Writers(folder)

    @cache  # the gate's reference is read once, when first needed
    def bounds() -> tuple[int, int]:
        return st.row_count_bounds(feed, previous_rows())

    engine.start_file(feed, suite, refs, vault_id)

    def finish_chunk(out: ChunkOutcome, single: bool) -> None:
        # GX and the Parquet writers, one chunk behind the engine (see _Behind)
        validation.add_chunk(
            out.checks,
            whole_file_bounds=bounds() if single else None,
            row_counts=out.expectation_counts,
            columns=columns,
        )
        writers.write(st.ACCEPTED, out.accepted)
        writers.write(st.QUARANTINE, out.quarantine)
        writers.write(st.VAULT, out.vault)
        for reason, n in out.reason_counts.items():
            result.reasons[reason] = result.reasons.get(reason, 0) + n
        result.rows_read += out.rows
        result.rows_quarantined += out.failed
        result.rows_accepted += out.rows - out.failed

    try:
        with _Behind(finish_chunk) as behind:
            for chunk, single in _with_single_flag(
                iter_tables(path, feed, header, chunk_rows=chunk_rows)
            ):
                behind.submit(engine.process(chunk, limit), single)
        writers.write(st.ACCEPTED, acc_schema.empty_table())
        writers.write(st.QUARANTINE, q_schema.empty_table())
        writers.write(st.VAULT, st.VAULT_SCHEMA.empty_table())
        engine.finish_file(result.batch_id)
    finally:
        writers.close()
        # Arrow's allocator keeps freed chunks for reuse; a long run holds the peak otherwise
        pa.default_memory_pool().release_unused()
    validation.finish(result.rows_read, *bounds())
    st.atomic_write_text(
        folder / st.VALIDATION,
        json.dumps(
            validation.to_json(batch_id=result.batch_id, feed_key=feed.key, run_time=run_time),
            ensure_ascii=False,
            default=str,
        ),
    )
    _batch_verdict(path, result, validation, GATE_MIN_ROWS)


class _Behind:
    """Runs ``fn`` on each submitted chunk in one background thread, in order, one chunk behind.

    GX and the Parquet writers then work on chunk *n* while the engine computes
    chunk *n + 1* (DuckDB and Arrow release the GIL while they run). At most one
    chunk waits, so memory holds two chunks at most. An error in ``fn`` is
    raised here, at the next submit or on exit.
    """

    def __init__(self, fn: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._fn = fn
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare-behind")
        self._pending: Any = None

    def submit(self, *args: Any) -> None:
        self._wait()
        self._pending = self._pool.submit(self._fn, *args)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> _Behind:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._wait()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _batch_verdict(
    path: Path, result: st.BatchResult, validation: FileValidation, gate_min_rows: int
) -> None:
    failed_batch = [
        t
        for t in validation.failed_batch_expectations
        if not (t.exp["kwargs"].get("column") == "_row_failed" and result.rows_read < gate_min_rows)
    ]
    if failed_batch:
        result.status = "rejected"
        result.failed_expectations = [_describe(t) for t in failed_batch]
        result.message = f"{path.name}: batch expectation failed: " + "; ".join(
            result.failed_expectations
        )
        result.rows_rejected = result.rows_read
        result.rows_accepted = result.rows_quarantined = 0


def _with_single_flag(chunks: Iterator[pa.Table]) -> Iterator[tuple[pa.Table, bool]]:
    """Yield (chunk, the file is this one chunk) — one GX run suffices for small files."""
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if second is None:
        yield first, True
        return
    yield first, False
    yield second, False
    for c in chunks:
        yield c, False


def _describe(t: Any) -> str:
    kw = t.exp["kwargs"]
    if t.exp["type"] == "expect_table_row_count_to_be_between":
        return f"expect_table_row_count_to_be_between({kw.get('min_value')}..{kw.get('max_value')}, observed {t.observed_value})"
    if kw.get("column") == "_row_failed":
        return (
            f"expect_column_values_to_be_in_set(_row_failed, mostly={kw.get('mostly')}): "
            f"{t.unexpected_count} of {t.element_count} rows failed row checks"
        )
    target = kw.get("column") or kw.get("column_list")
    return f"{t.exp['type']}({target})"


# ====================================================================== SQL engine

_PARAM = re.compile(r"\$([a-z_]+)")


class _TokenColumn(NamedTuple):
    """A token column of the pseudonymised frame."""

    domain: str
    name: str  # e.g. caller_id_number_token
    value: str  # the engine's column of the normalised value (sealed for the vault)
    source: str | None  # the cache column it is read from (None: hashed per row)


@dataclass(frozen=True)
class FeedSql:
    """The SQL of one feed for a suite and the reference kinds available."""

    feed: Feed
    suite: dict[str, Any]
    refs_present: frozenset[str]

    @cached_property
    def row_expectations(self) -> list[dict[str, Any]]:
        return [e for e in self.suite["expectations"] if e["meta"].get("level") == "row"]

    @cached_property
    def discover(self) -> str:
        """(role, value) of the chunk's identifier values not in their role's cache yet."""
        from datahub.privacy.sql import IDENTIFIER_CACHES
        from datahub.sources.sql import clean_sql, literal, quote

        parts = []
        for c in self.feed.identifier_columns:
            assert c.role is not None
            table, _ = IDENTIFIER_CACHES[c.role]
            # a LEFT JOIN, not NOT EXISTS (a MARK join): half the time on a 75 k-row chunk
            # against a 400 k-row cache (8.5 vs 18 ms)
            parts.append(
                f"SELECT DISTINCT {literal(c.role)} AS role, d.v "
                f"FROM (SELECT {clean_sql(quote(c.name))} AS v FROM chunk) AS d "
                f"LEFT JOIN {table} AS k ON k.raw = d.v WHERE d.v IS NOT NULL AND k.raw IS NULL"
            )
        return " UNION ALL ".join(parts)

    @cached_property
    def token_columns(self) -> list[_TokenColumn]:
        """Every token column the feed makes: its domain, vault value and where it comes from."""
        from datahub.privacy.pseudonymise import output_columns

        out = []
        for name in output_columns(self.feed):
            if name.endswith("_name_dob_token"):
                role = name.removesuffix("_name_dob_token")
                out.append(_TokenColumn("name_dob", name, "nd__" + role, None))
            elif name.endswith("_pinyin_token"):
                base = name.removesuffix("_pinyin_token")
                out.append(_TokenColumn("name_pinyin", name, "p__" + base, "kp__" + base))
            elif name.endswith("_token") and name not in self.feed.column_names:
                col = self.feed.column(name.removesuffix("_token"))
                out.append(_TokenColumn(col.role or "", name, "v__" + col.name, "k__" + col.name))
        return out

    @cached_property
    def reasons(self) -> dict[str, str]:
        """Reason code → its column in :attr:`select` (``_r<j>``), in priority order."""
        from datahub.quality.sql import reason_sql

        return {r: f"_r{j}" for j, r in enumerate(reason_sql(self.suite))}

    @cached_property
    def select(self) -> str:
        """The chunk's rows with every output, mask and reason.

        Columns: the pseudonymised frame (``output_columns``), the cleaned text
        of typed plain columns for quarantined rows (``t__<col>``), normalised
        identifier values for the vault (``v__``/``p__``/``nd__``), the check
        columns, one mask per row-level expectation (``_m<i>``), one flag per
        reason (``_r<j>``), ``_row_failed`` and, for failed rows, ``_reasons``.
        """
        from datahub.privacy.pseudonymise import output_columns
        from datahub.privacy.sql import name_dob_sql, token_sql
        from datahub.quality.sql import mask_sql, reason_sql, reasons_text_sql
        from datahub.sources.sql import clean_sql, quote

        feed = self.feed
        q = quote
        cleaned = [f"{clean_sql(q(c.name))} AS {q('t__' + c.name)}" for c in feed.columns]
        joins: list[str] = []
        norm: list[str] = []
        bad, unknown, future = [OVERFLOW], [], []
        for c in feed.columns:
            if c.role is None:
                typed, checks = self._plain(c)
                norm.append(f"{typed} AS {q(c.name)}")
                bad += checks["bad"]
                unknown += checks["unknown"]
                future += checks["future"]
            else:
                exprs, join = _identifier_sql(c)
                norm += exprs
                joins.append(join)
        out: list[str] = []
        persons = {f"{p.role}_name_dob_token": p for p in feed.persons if p.name and p.id_number}
        tokens = {t.name: t for t in self.token_columns}
        for name in output_columns(feed):
            if name in feed.column_names:
                out.append(q(name))
            elif name in persons:  # hashed per row: the pair of name and birth date
                p = persons[name]
                nd = name_dob_sql(q(f"v__{p.name}"), q(f"b__{p.id_number}"))
                out += [
                    f"{nd} AS {q(tokens[name].value)}",
                    f"{token_sql('name_dob', nd)} AS {q(name)}",
                ]
            elif name in tokens:  # tokens of identifier columns come from the caches
                t = tokens[name]
                out += [f"{q(t.source or '')} AS {q(name)}", q(t.value)]
            else:
                out.append(f"{_flag_sql(feed, name)} AS {q(name)}")
        text = [q("t__" + c) for c in self.text_columns]
        out += [q("r__" + c.name) for c in feed.identifier_columns]
        masks = [f"{mask_sql(e)} AS {q(f'_m{i}')}" for i, e in enumerate(self.row_expectations)]
        conditions = reason_sql(self.suite)
        flags = [f"{conditions[r]} AS {col}" for r, col in self.reasons.items()]
        failed = " OR ".join(self.reasons.values()) or "false"
        for_failed = [f"CASE WHEN _row_failed THEN {t} END AS {t}" for t in text]
        reasons_text = reasons_text_sql(self.reasons)
        return f"""
WITH source AS (SELECT * FROM chunk),
cleaned AS (
    SELECT {", ".join(cleaned)}, {ROW_NUMBER}, {TRUNCATED}, {OVERFLOW}, {DUPLICATE} FROM source
),
normalised AS (
    SELECT cleaned.*, {", ".join(norm)} FROM cleaned {" ".join(joins)}
),
pseudonymised AS (
    SELECT {", ".join([*out, *text])}, {ROW_NUMBER}, {TRUNCATED}, {DUPLICATE},
        ({" OR ".join(bad)}) AS _bad_value,
        ({" OR ".join(unknown) or "false"}) AS _unknown_code,
        ({" OR ".join(future) or "false"}) AS _future_date
    FROM normalised
),
checked AS (
    SELECT *{"".join(", " + m for m in masks)} FROM pseudonymised
),
reasoned AS (
    SELECT *{"".join(", " + f for f in flags)} FROM checked
),
final AS (
    SELECT *, ({failed}) AS _row_failed FROM reasoned
)
SELECT * {"EXCLUDE (" + ", ".join(text) + ")" if text else ""}{"".join(", " + f for f in for_failed)},
    CASE WHEN _row_failed THEN {reasons_text} END AS _reasons
FROM final
"""

    @cached_property
    def text_columns(self) -> list[str]:
        """Typed plain columns: quarantine keeps their cleaned text beside the typed value."""
        return [c.name for c in self.feed.columns if c.role is None and c.type != "str"]

    @cached_property
    def select_params(self) -> frozenset[str]:
        """Names of the query parameters :attr:`select` uses."""
        return frozenset(_PARAM.findall(self.select))

    def _plain(self, c: Column) -> tuple[str, dict[str, list[str]]]:
        """Typed SQL of a plain column, and its contributions to the check flags.

        The checks read the typed column by name (it exists by then), so that
        DuckDB parses each cell once.
        """
        from datahub.sources.sql import bad_sql, quote, typed_sql

        t, typed = quote("t__" + c.name), quote(c.name)
        checks: dict[str, list[str]] = {"bad": [], "unknown": [], "future": []}
        if c.type != "str":
            checks["bad"].append(bad_sql(c, t, typed))
        if c.references is not None and c.references in self.refs_present:
            ref = "ref_address" if c.references == "address" else "ref_division"
            checks["unknown"].append(f"coalesce({t} NOT IN (SELECT code FROM {ref}), false)")
        if c.type in ("date", "datetime"):
            checks["future"].append(f"coalesce(CAST({typed} AS TIMESTAMP) > $limit, false)")
        elif c.type == "month":
            checks["future"].append(f"coalesce({typed} > $limit_month, false)")
        return typed_sql(c, t), checks

    @cached_property
    def gx_columns(self) -> list[str]:
        """The validation-frame columns some expectation reads (its shape aside)."""
        cols: list[str] = []
        for e in self.suite["expectations"]:
            kw = e["kwargs"]
            for c in [kw.get("column"), kw.get("column_A"), kw.get("column_B")] + list(
                kw.get("column_list", [])
            ):
                if c is not None and c not in cols:
                    cols.append(c)
        return cols


def _identifier_sql(c: Column) -> tuple[list[str], str]:
    """What identifier column ``c`` becomes, from its role's cache joined on the cleaned text.

    ``v__`` normalised value, ``s__`` status/kind, ``k__`` token, ``r__`` the cache
    row (its seals are the vault's); IDs also ``b__`` birth date and ``x__`` sex,
    names ``p__`` pinyin and ``kp__`` pinyin token.
    """
    from datahub.privacy.sql import IDENTIFIER_CACHES
    from datahub.sources.sql import quote

    q = quote
    assert c.role is not None
    table, _ = IDENTIFIER_CACHES[c.role]
    t, m = q("t__" + c.name), q("m__" + c.name)
    out = {"v__": f"{m}.value", "k__": f"{m}.token", "r__": f"{m}.rid"}
    if c.role == "name":
        out["s__"] = f"CASE WHEN {m}.value IS NULL THEN 'missing' ELSE 'valid' END"
        out |= {"p__": f"{m}.pinyin", "kp__": f"{m}.pinyin_token"}
    elif c.role == "id_number":
        out["s__"] = f"coalesce({m}.status, 'missing')"
        out |= {"b__": f"{m}.birth", "x__": f"{m}.sex"}
    else:
        out["s__"] = f"coalesce({m}.kind, 'missing')"
    exprs = [f"{e} AS {q(prefix + c.name)}" for prefix, e in out.items()]
    return exprs, f"LEFT JOIN {table} AS {m} ON {m}.raw = {t}"


def _flag_sql(feed: Feed, name: str) -> str:
    """SQL of a status/kind/birth-year/sex output column from the normalised columns."""
    from datahub.sources.sql import quote

    for suffix in ("_status", "_kind"):
        base = name.removesuffix(suffix)
        if name.endswith(suffix) and base in feed.column_names:
            return quote("s__" + base)
    for p in feed.persons:
        if p.id_number and name == f"{p.role}_sex":
            return quote("x__" + p.id_number)
        if p.id_number and name == f"{p.role}_birth_year":
            return f"CAST(year({quote('b__' + p.id_number)}) AS BIGINT)"
    raise KeyError(f"{feed.key}: {name} is not an output column")


class SqlChunkEngine:
    """The production engine: one in-memory DuckDB (see the module doc).

    Its database keeps, across the files a process prepares, what each distinct
    raw identifier value became (the caches ``ids``, ``phones``, ``names`` of
    :data:`datahub.privacy.sql.IDENTIFIER_CACHES`: normalised value, flags,
    tokens and the AES-SIV seals of the values) and the seals of ``name_dob``
    values (``sealed``); persons recur in every daily file. Both are bounded
    (:data:`CACHE_MAX`, :data:`SEALED_MAX`).
    The only class of the prepare step that talks to DuckDB.
    """

    def __init__(self, keyring: Keyring) -> None:
        from datahub.privacy.cipher import VaultCipher
        from datahub.privacy.sql import IDENTIFIER_CACHES, cache_ddl
        from datahub.warehouse.db import memory

        self.cipher = VaultCipher(keyring.vault_key)
        self.params = _token_params(keyring)
        self.con: duckdb.DuckDBPyConnection = memory()
        # the caches hold raw identifiers: never let DuckDB spill them to temp files
        self.con.execute("SET temp_directory = ''")
        for role in IDENTIFIER_CACHES:
            self.con.execute(cache_ddl(role))
        self.con.execute("CREATE TABLE sealed (token VARCHAR, ciphertext BLOB, seq BIGINT)")
        self._seq = 0
        self._rid = 0  # the next cache row id
        # per role, the cache rows whose tokens this file has sent to the vault: a bitmap by
        # row id, and the ids chunk by chunk (for vault_committed)
        self._file_sent: dict[str, np.ndarray] = {}
        self._file_rids: dict[str, list[np.ndarray]] = {}
        # what the loader of this process has committed to the vault (see vault_committed)
        self._vault_lock = threading.Lock()
        # (vault id, role) → bitmap by row id; batch id → (vault id, its _file_rids)
        self._vaulted: dict[tuple[str | None, str], np.ndarray] = {}
        self._pending: dict[str, tuple[str | None, dict[str, np.ndarray]]] = {}
        self._vault_id: str | None = None
        self._sql: dict[tuple[str, str, frozenset[str]], FeedSql] = {}
        self._current: FeedSql | None = None
        self._refs: References | None = None
        self._seen = np.empty(0, dtype=np.uint64)
        self._threads = int(self.con.sql("SELECT current_setting('threads')").fetchall()[0][0])

    def close(self) -> None:
        self.con.close()

    # --------------------------------------------------------------- per file

    def start_file(
        self, feed: Feed, suite: dict[str, Any], refs: References, vault_id: str | None = None
    ) -> None:
        if refs is not self._refs:
            for kind in ("division", "address"):
                codes = refs.codes(kind)
                self.con.register(
                    f"ref_{kind}",
                    pa.table({"code": pa.array(sorted(codes or ()), pa.string())}),
                )
            self._refs = refs
        present = frozenset(k for k in ("division", "address", "grid") if refs.codes(k) is not None)
        key = (feed.key, json.dumps(suite, sort_keys=True), present)
        if key not in self._sql:
            self._sql[key] = FeedSql(feed, suite, present)
        self._current = self._sql[key]
        self._seen = np.empty(0, dtype=np.uint64)
        self._file_sent = {}
        self._file_rids = {}
        self._vault_id = vault_id
        self.con.execute("CREATE OR REPLACE TEMP TABLE file_tokens (token VARCHAR)")

    def finish_file(self, batch_id: str) -> None:
        with self._vault_lock:
            if self._vault_id is None:
                return
            self._pending[batch_id] = (
                self._vault_id,
                {role: np.concatenate(parts) for role, parts in self._file_rids.items()},
            )
            while len(self._pending) > PENDING_BATCHES:  # never loaded here (rejected, elsewhere)
                del self._pending[next(iter(self._pending))]

    def vault_committed(self, batch_id: str) -> None:
        """The loader committed ``batch_id``'s vault rows: later files need not send them again.

        Only a loader in this process can say so (``run_sources`` does, and names
        the vault in :meth:`start_file`); a file whose vault is not named, or a batch
        loaded elsewhere, leaves every file sending all its tokens, as is always safe.
        What is known is kept per vault id: another vault (another home, or this one
        deleted and made again) starts from nothing.
        """
        with self._vault_lock:
            vault_id, sent = self._pending.pop(batch_id, (None, {}))
            for role, rids in sent.items():
                if not len(rids):
                    continue
                known = self._vaulted.get((vault_id, role))
                size, top = (0 if known is None else len(known)), int(rids.max())
                if known is None or top >= size:
                    known = _grown(known, max(top + 1, 2 * size))
                known[rids] = True
                self._vaulted[(vault_id, role)] = known

    # -------------------------------------------------------------- per chunk

    def process(self, chunk: pa.Table, limit: pd.Timestamp) -> ChunkOutcome:
        """Everything one reader chunk becomes (see :class:`ChunkOutcome`)."""
        from datahub.quality.checks import expectation_key
        from datahub.sources.sql import quote

        fs = self._current
        assert fs is not None, "start_file first"
        con = self.con
        # one record batch per DuckDB thread: the query runs on every core (a 75 k-row
        # incidents chunk: 0.28 s in one batch, 0.16 s in two on 2 cores) and hands the
        # rows back out of file order, which _in_row_order restores (~18 ms)
        chunk = pa.Table.from_batches(
            chunk.combine_chunks().to_batches(
                max_chunksize=max(1, -(-chunk.num_rows // self._threads))
            )
        )
        con.register("chunk", chunk)
        try:
            hashes = _in_row_order(
                con.sql(
                    f"SELECT {ROW_NUMBER}, "
                    f"hash({', '.join(quote(c) for c in fs.feed.column_names)}) AS h FROM chunk"
                ).to_arrow_table()
            )
            dup = self._duplicates(hashes.column("h").to_numpy())
            con.register("chunk", chunk.append_column(DUPLICATE, pa.array(dup)))
            self._learn(fs)
            params = {
                **self.params,
                "limit": limit.to_pydatetime(),
                "limit_month": limit.strftime("%Y-%m"),
            }
            # streamed batch by batch: DuckDB never holds the whole result a second time
            reader = con.sql(
                fs.select, params={k: params[k] for k in fs.select_params}
            ).to_arrow_reader(STREAM_BATCH_ROWS)
            result = pa.Table.from_batches(reader, reader.schema)
        finally:
            con.unregister("chunk")
        result = _in_row_order(result)
        failed = result.column("_row_failed")
        n_failed = int(pc.sum(failed).as_py() or 0)
        counts = {
            name: int(pc.sum(result.column(name)).as_py() or 0)
            for name in [f"_m{i}" for i in range(len(fs.row_expectations))]
            + list(fs.reasons.values())
        }
        return ChunkOutcome(
            accepted=_accepted(result, failed, n_failed, st.accepted_schema(fs.feed)),
            quarantine=self._quarantine(fs, result.filter(failed)),
            vault=self._seal(fs, result),
            checks=_gx_frame(result.select(fs.gx_columns)),
            expectation_counts={
                expectation_key(e): counts[f"_m{i}"] for i, e in enumerate(fs.row_expectations)
            },
            reason_counts={r: counts[col] for r, col in fs.reasons.items() if counts[col]},
            rows=result.num_rows,
            failed=n_failed,
        )

    def _duplicates(self, hashes: np.ndarray) -> np.ndarray:
        """True for a row whose raw cells hash like an earlier row's of the file."""
        _, first = np.unique(hashes, return_index=True)
        dup = np.ones(len(hashes), dtype=bool)
        dup[first] = False
        new = hashes[first]  # sorted: np.unique's order
        if len(self._seen):
            pos = np.searchsorted(self._seen, hashes).clip(max=len(self._seen) - 1)
            dup |= self._seen[pos] == hashes
            pos = np.searchsorted(self._seen, new)
            new = new[self._seen[pos.clip(max=len(self._seen) - 1)] != new]
            self._seen = np.insert(self._seen, np.searchsorted(self._seen, new), new)
        else:
            self._seen = new
        return dup

    def _learn(self, fs: FeedSql) -> None:
        """Put the chunk's identifier values that no cache holds yet into their caches.

        Each new row is sealed for the vault here, once per process (the seals of a
        cache row are what every later file sends to the vault).
        """
        from datahub.privacy.sql import IDENTIFIER_CACHES, fast, learn_select_sql, slow_table

        if not fs.discover:
            return
        self._seq += 1
        for table, _ in IDENTIFIER_CACHES.values():
            _evict_older_half(self.con, table, CACHE_MAX)
        found = self.con.sql(fs.discover).to_arrow_table()
        for role, (table, _) in IDENTIFIER_CACHES.items():
            new = pc.unique(found.filter(pc.equal(found.column("role"), role)).column("v"))
            if not len(new):
                continue
            pattern = fast(role)
            odd = (
                new
                if pattern is None
                else new.filter(pc.invert(pc.match_substring_regex(new, pattern)))
            )
            self.con.register("_new", pa.table({"raw": new}))
            self.con.register("_slow", slow_table(role, sorted(odd.to_pylist())))
            try:
                sql = learn_select_sql(role)
                learned = self.con.sql(sql, params=self._params_of(sql)).to_arrow_table()
            finally:
                self.con.unregister("_new")
                self.con.unregister("_slow")
            self.con.register("_learned", self._with_seals(role, learned))
            try:
                self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _learned")
            finally:
                self.con.unregister("_learned")

    def _with_seals(self, role: str, learned: pa.Table) -> pa.Table:
        """``learned`` cache rows with their seals, row ids and insert number."""
        from datahub.privacy.sql import CACHE_SEALS

        for column, (domain, source, _) in CACHE_SEALS[role].items():
            values = learned.column(source).combine_chunks()
            present = pc.is_valid(values)
            seals = self.cipher.seal_many(domain, values.drop_null().to_pylist())
            sealed = pa.array(seals, pa.binary())
            if len(sealed) < learned.num_rows:  # nulls stay null
                sealed = pc.replace_with_mask(
                    pa.nulls(learned.num_rows, pa.binary()), present, sealed
                )
            learned = learned.append_column(column, sealed)
        n = learned.num_rows
        rids = pa.array(np.arange(self._rid, self._rid + n, dtype=np.int64))
        self._rid += n
        return learned.append_column("rid", rids).append_column(
            "seq", pa.array(np.full(n, self._seq, dtype=np.int64))
        )

    def _params_of(self, sql: str) -> dict[str, object]:
        params = {**self.params, "seq": self._seq}
        return {k: params[k] for k in set(_PARAM.findall(sql))}

    def _quarantine(self, fs: FeedSql, failed: pa.Table) -> pa.Table:
        schema = st.quarantine_schema(fs.feed)
        text = set(fs.text_columns)
        arrays = []
        for f in schema:
            if f.name in text:  # quarantine keeps the cleaned text of typed plain columns
                arrays.append(failed.column("t__" + f.name))
            elif f.name == "_reason":
                arrays.append(pc.split_pattern(failed.column("_reasons"), ";", max_splits=1))
                arrays[-1] = pc.list_element(arrays[-1], 0)
            else:
                arrays.append(failed.column(f.name))
        return _conform(pa.Table.from_arrays(arrays, names=schema.names), schema)

    def _seal(self, fs: FeedSql, result: pa.Table) -> pa.Table:
        """Vault rows of the chunk's tokens: each (domain, token, seal) once per file.

        Tokens of identifier columns come with their seals from the cache rows the
        chunk used (``r__`` columns), looked up by row id; a file sends a cache row
        once, and not at all once this process's loader has committed it to the
        vault (:meth:`vault_committed`). ``name_dob`` tokens (per row, not cached)
        are sealed here, each value once per process (table ``sealed``).
        """
        from datahub.privacy.sql import CACHE_SEALS, IDENTIFIER_CACHES
        from datahub.sources.sql import literal

        parts = []
        by_role: dict[str, list[str]] = {}
        for c in fs.feed.identifier_columns:
            assert c.role is not None
            by_role.setdefault(c.role, []).append("r__" + c.name)
        for role, columns in by_role.items():
            rids = np.concatenate(
                [result.column(col).drop_null().to_numpy().astype(np.int64) for col in columns]
            )
            sent = self._file_sent.get(role)
            if sent is None or len(sent) < self._rid:  # a bitmap by row id: no sorting per chunk
                sent = self._file_sent[role] = _grown(sent, self._rid)
            rids = rids[~sent[rids]]
            with self._vault_lock:
                known = self._vaulted.get((self._vault_id, role))
                if known is not None and len(rids):
                    inside = rids < len(known)
                    rids = rids[~(inside & known[np.where(inside, rids, 0)])]
            rids = np.unique(rids)
            sent[rids] = True
            self._file_rids.setdefault(role, []).append(rids)
            if not len(rids):
                continue
            table, _ = IDENTIFIER_CACHES[role]
            selects = [
                f"SELECT {literal(domain)} AS domain, {token} AS token, {seal} AS ciphertext "
                f"FROM {table} SEMI JOIN _rids USING (rid) WHERE {token} IS NOT NULL"
                for seal, (domain, _, token) in CACHE_SEALS[role].items()
            ]
            self.con.register("_rids", pa.table({"rid": pa.array(rids, pa.int64())}))
            try:
                parts.append(self.con.sql(" UNION ALL ".join(selects)).to_arrow_table())
            finally:
                self.con.unregister("_rids")
        per_row = [t for t in fs.token_columns if t.domain == "name_dob"]
        if per_row:
            parts.append(self._seal_per_row(per_row, result))
        if not parts:
            return st.VAULT_SCHEMA.empty_table()
        return pa.concat_tables([_conform(t, st.VAULT_SCHEMA) for t in parts])

    def _seal_per_row(self, columns: list[_TokenColumn], result: pa.Table) -> pa.Table:
        """Vault rows of token columns hashed per row (``name_dob``), each token once per file."""
        from datahub.sources.sql import literal, quote

        con = self.con
        _evict_older_half(con, "sealed", SEALED_MAX)
        union = " UNION ALL ".join(
            f"SELECT {literal(d)} AS domain, {quote(t)} AS token, {quote(v)} AS value "
            f"FROM cur WHERE {quote(t)} IS NOT NULL"
            for d, t, v, _ in columns
        )
        con.register("cur", result.select(sorted({c for t in columns for c in (t.name, t.value)})))
        try:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE cur_vault AS SELECT DISTINCT domain, token, value "
                f"FROM ({union}) ANTI JOIN file_tokens USING (token)"
            )
        finally:
            con.unregister("cur")
        new = con.sql("SELECT domain, token, value FROM cur_vault ANTI JOIN sealed USING (token)")
        new_table = new.to_arrow_table()
        if new_table.num_rows:
            parts = []
            for domain in sorted(set(new_table.column("domain").to_pylist())):
                rows = new_table.filter(pc.equal(new_table.column("domain"), domain))
                seals = self.cipher.seal_many(domain, rows.column("value").to_pylist())
                parts.append(
                    pa.table(
                        {"token": rows.column("token"), "ciphertext": pa.array(seals, pa.binary())}
                    )
                )
            con.register("_new_sealed", pa.concat_tables(parts))
            con.execute(
                "INSERT INTO sealed SELECT token, ciphertext, $seq FROM _new_sealed",
                {"seq": self._seq},
            )
            con.unregister("_new_sealed")
        vault = con.sql(
            "SELECT v.domain, v.token, s.ciphertext FROM cur_vault AS v JOIN sealed AS s USING (token)"
        ).to_arrow_table()
        con.execute("INSERT INTO file_tokens SELECT token FROM cur_vault")
        return vault


def _grown(bitmap: np.ndarray | None, size: int) -> np.ndarray:
    """A bool bitmap of ``size`` entries that starts with ``bitmap``'s (False after)."""
    out = np.zeros(size, dtype=bool)
    if bitmap is not None:
        out[: len(bitmap)] = bitmap
    return out


def _in_row_order(table: pa.Table) -> pa.Table:
    """``table`` in ``_row_number`` order (sorted only if DuckDB did not keep the order)."""
    numbers = table.column(ROW_NUMBER).to_numpy()
    if len(numbers) > 1 and not bool((numbers[1:] > numbers[:-1]).all()):
        return table.take(pa.array(np.argsort(numbers, kind="stable")))
    return table


def engine_identity(keyring: Keyring) -> tuple[int, str, str, int]:
    """What an engine's caches depend on: process, key fingerprints, key version."""
    return (
        os.getpid(),
        keyring.fingerprint(),
        keyring.vault_fingerprint(),
        keyring.current_version,
    )


_engines: dict[tuple[int, str, str, int], SqlChunkEngine] = {}


def sql_engine(keyring: Keyring) -> SqlChunkEngine:
    """This process's engine for ``keyring`` (made on first use; a fork makes its own)."""
    key = engine_identity(keyring)
    engine = _engines.get(key)
    if engine is None:
        for stale in [k for k in _engines if k[0] != key[0] or k[1:] != key[1:]]:
            if stale[0] == key[0]:
                _engines.pop(stale).close()
            else:
                _engines.pop(stale)  # inherited through fork: never touch its DuckDB
        engine = _engines[key] = SqlChunkEngine(keyring)
    return engine


def note_vaulted(keyring: Keyring, batch_id: str) -> None:
    """Tell this process's engine (if any) that ``batch_id``'s vault rows are committed."""
    engine = _engines.get(engine_identity(keyring))
    if engine is not None:
        engine.vault_committed(batch_id)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _evict_older_half(con: duckdb.DuckDBPyConnection, table: str, limit: int) -> None:
    """Keep a cache under ``limit`` rows: drop the rows of its older inserts (half or more)."""
    if _count(con, table) > limit:
        con.execute(
            f"DELETE FROM {table} WHERE seq <= (SELECT quantile_disc(seq, 0.5) FROM {table})"
        )


def _token_params(keyring: Keyring) -> dict[str, object]:
    from datahub.privacy.sql import token_params
    from datahub.privacy.tokens import DOMAINS

    version = keyring.current_version
    return token_params(
        {d: keyring.domain_key(d, version) for d in DOMAINS if d != "canary"}, version
    )


def _accepted(
    result: pa.Table, failed: pa.ChunkedArray, n_failed: int, schema: pa.Schema
) -> pa.Table:
    """The rows that passed, in ``schema`` (columns picked before filtering: fewer copies)."""
    table = _conform(result, schema)
    return table.filter(pc.invert(failed)) if n_failed else table


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns and types (DuckDB's Arrow types vary)."""
    return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)


_PANDAS_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def _gx_frame(table: pa.Table) -> pd.DataFrame:
    """The columns GX reads, as the reference engine types them (str, Int64, datetime64)."""
    data: dict[str, pd.Series] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            data[name] = col.cast(pa.large_string()).to_pandas(
                types_mapper={pa.large_string(): _PANDAS_STR}.get
            )
        elif pa.types.is_integer(t):
            data[name] = col.to_pandas(types_mapper={t: pd.Int64Dtype()}.get)
        elif pa.types.is_date(t):
            data[name] = pd.Series(col.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False))
        else:
            data[name] = col.to_pandas()
    return pd.DataFrame(data, copy=False)


# ================================================================ reference engine


class ReferenceChunkEngine:
    """The pandas reference engine (the code path before the SQL engine)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def start_file(
        self, feed: Feed, suite: dict[str, Any], refs: References, vault_id: str | None = None
    ) -> None:
        from datahub.quality.checks import FileState

        self.feed, self.suite, self.refs = feed, suite, refs
        self.state = FileState()

    def finish_file(self, batch_id: str) -> None:
        pass  # every file sends all its tokens to the vault

    def process(self, chunk: pa.Table, limit: pd.Timestamp) -> ChunkOutcome:
        from datahub.privacy.pseudonymise import pseudonymise_feed
        from datahub.quality.checks import add_check_columns, reason_masks, row_reasons
        from datahub.sources.parse import raw_strings, type_chunk
        from datahub.sources.reader import table_to_frame

        feed = self.feed
        frame = table_to_frame(chunk)
        acc_schema, q_schema = st.accepted_schema(feed), st.quarantine_schema(feed)
        ident_cols = [
            f.name
            for f in q_schema
            if f.name not in feed.column_names and not f.name.startswith("_")
        ]
        typed = type_chunk(feed, frame)
        pseudo = pseudonymise_feed(feed, typed.frame, self.keyring)
        vframe = add_check_columns(
            feed, pseudo.frame, typed, frame, refs=self.refs, limit=limit, state=self.state
        )
        counts: dict[str, int] = {}
        masks = reason_masks(self.suite, vframe, counts)
        failed = (
            pd.concat(list(masks.values()), axis=1).any(axis=1)
            if masks
            else pd.Series(False, index=vframe.index)
        )
        vframe["_row_failed"] = failed.to_numpy(dtype=bool)
        reasons = row_reasons(masks, vframe.index)
        ok = ~failed
        q = raw_strings(feed, frame.loc[failed])
        for c in ident_cols:
            q[c] = pseudo.frame.loc[failed, c]
        q[ROW_NUMBER] = frame.loc[failed, ROW_NUMBER]
        q["_reasons"] = reasons[failed]
        q["_reason"] = reasons[failed].str.split(";").str[0]
        return ChunkOutcome(
            accepted=st.to_arrow(pseudo.frame.loc[ok, [f.name for f in acc_schema]], acc_schema),
            quarantine=st.to_arrow(q, q_schema),
            vault=pa.Table.from_pandas(pseudo.vault, schema=st.VAULT_SCHEMA, preserve_index=False),
            checks=vframe,
            expectation_counts=counts,
            reason_counts={r: int(m.sum()) for r, m in masks.items() if int(m.sum())},
            rows=len(frame),
            failed=int(failed.sum()),
        )

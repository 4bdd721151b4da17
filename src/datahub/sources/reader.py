"""Read department feed files against their contract.

A feed file is decoded (UTF-8, UTF-8 with BOM or GBK/GB18030, detected here),
its header is checked against :mod:`datahub.sources.contracts`, and its data
rows are streamed in chunks of strings. Nothing is typed or judged here except
the file's *structure*:

* a header that misses or renames a contract column rejects the whole file
  (:class:`FileRejected`, naming the columns); an extra column is reported and
  ignored;
* a data row with fewer fields than the header (a truncated export, usually
  the last line) is kept and flagged ``_truncated``; a row with more fields is
  flagged ``_overflow`` and its non-identifier fields are blanked, because a
  shifted field could put a raw identifier into a plain column;
* 0-byte and header-only files read as empty (``FileHeader.empty``);
* binary content or bytes that decode in no supported encoding reject the file.

Data rows are parsed by Arrow when a byte scan of the file proves that Arrow's
parse equals the :mod:`csv` reference reader's (see "Arrow fast path" below);
otherwise the reference reader reads the file. The chunks are identical.

Row numbers (``_row_number``) are the 1-based data row in the file, the same
numbering as the generator's ground truth. Blank lines are not data rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import mmap
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from datahub.sources.contracts import Feed

#: Bytes sampled to detect the encoding and binary content.
SAMPLE_BYTES = 1 << 20
#: Data rows per chunk: bounds peak memory for multi-million-row files (measured on the 4.3 M-row
#: benchmark ingest: peak RSS 1.94 GB with 100 000, 1.73 GB with 50 000; one more GX call a chunk).
DEFAULT_CHUNK_ROWS = 50_000
#: Structural flag columns added to every chunk.
ROW_NUMBER = "_row_number"
TRUNCATED = "_truncated"
OVERFLOW = "_overflow"

csv.field_size_limit(1 << 24)
log = logging.getLogger(__name__)


class FileRejected(Exception):
    """The whole file cannot be read against its contract.

    ``reason`` is a short code (``not_text``, ``undecodable``, ``header_mismatch``);
    the message says what is wrong in words an operator can act on. Messages
    name columns and encodings, never cell values.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class FileHeader:
    """What the reader learnt from a file before streaming its rows."""

    encoding: str  # python codec name: utf-8, utf-8-sig or gb18030
    columns: tuple[str, ...]  # contract column names, in file order (extras excluded)
    extra_columns: tuple[str, ...] = ()
    empty: bool = False  # 0 bytes or header only
    size_bytes: int = 0
    line_ending: str = "\n"
    warnings: tuple[str, ...] = field(default_factory=tuple)


def detect_encoding(sample: bytes, *, complete: bool) -> str:
    """Return the codec of a byte sample: ``utf-8-sig``, ``utf-8`` or ``gb18030``.

    ``complete`` says whether the sample is the whole file (a sample cut in the
    middle of a multi-byte character is not an error then). Raises
    :class:`FileRejected` for binary content.
    """
    if sample.startswith(codecs.BOM_UTF8):
        _decode_or_none(sample[len(codecs.BOM_UTF8) :], "utf-8", complete)
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRejected("not_text", "file is UTF-16 encoded; export as UTF-8 or GBK")
    if b"\x00" in sample:
        raise FileRejected("not_text", "file is binary (contains NUL bytes), not a CSV text file")
    for codec in ("utf-8", "gb18030"):
        text = _decode_or_none(sample, codec, complete)
        if text is not None:
            if _control_ratio(text) > 0.01:
                raise FileRejected(
                    "not_text", "file is binary (control characters), not a CSV text file"
                )
            return codec
    raise FileRejected(
        "not_text",
        "file is neither UTF-8 nor GBK/GB18030 text (undecodable bytes); not a CSV text file",
    )


def _decode_or_none(sample: bytes, codec: str, complete: bool) -> str | None:
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    try:
        return decoder.decode(sample, final=complete)
    except UnicodeDecodeError:
        return None


#: C0 control characters other than tab, CR and LF (binary content shows them).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    # one regex pass in C instead of a Python loop over every character of the sample
    return len(_CONTROL.findall(text)) / len(text)


def _header_name_map(feed: Feed) -> dict[str, str]:
    """Header spellings accepted for each contract column: its name and its Chinese label."""
    mapping: dict[str, str] = {}
    for col in feed.columns:
        mapping[col.name] = col.name
        mapping[col.label] = col.name
    return mapping


def check_header(feed: Feed, header: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Map a file's header to contract columns.

    Returns (contract names in file order with ``""`` for extra columns, extra
    column headers). Raises :class:`FileRejected` naming the missing columns
    and the unexpected ones (a renamed column shows up as both).
    """
    names = _header_name_map(feed)
    mapped: list[str] = []
    extras: list[str] = []
    for raw in header:
        h = raw.strip().lstrip("\ufeff")
        name = names.get(h)
        if name is None or name in mapped:
            extras.append(h)
            mapped.append("")
        else:
            mapped.append(name)
    missing = [c for c in feed.column_names if c not in mapped]
    if missing:
        detail = f"missing column(s) {', '.join(missing)}"
        if extras:
            detail += f"; unexpected column(s) {', '.join(extras)} (renamed?)"
        raise FileRejected(
            "header_mismatch",
            f"header does not match the {feed.key} contract: {detail}; "
            f"expected {', '.join(feed.column_names)}",
        )
    return tuple(mapped), tuple(extras)


def read_header(path: Path, feed: Feed) -> FileHeader:
    """Detect encoding and check the header, without reading the data rows."""
    size = path.stat().st_size
    if size == 0:
        return FileHeader("utf-8", (), (), empty=True, size_bytes=0)
    with path.open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    encoding = detect_encoding(sample, complete=size <= SAMPLE_BYTES)
    text = sample.decode(encoding, errors="ignore")
    line_ending = "\r\n" if "\r\n" in text[:4096] else "\n"
    reader = csv.reader(io.StringIO(text, newline=""))  # same line splitting as iter_chunks
    header = next(reader, [])
    if not any(h.strip() for h in header):
        if text.strip():
            raise FileRejected(
                "header_mismatch", f"first line is blank; expected the {feed.key} header"
            )
        return FileHeader(encoding, (), (), empty=True, size_bytes=size, line_ending=line_ending)
    mapped, extras = check_header(feed, header)
    warnings: tuple[str, ...] = ()
    if extras:
        warnings = (f"extra column(s) ignored: {', '.join(extras)}",)
    has_rows = any(row for row in reader)
    if size > SAMPLE_BYTES:
        has_rows = True
    return FileHeader(
        encoding,
        tuple(m for m in mapped if m),
        extras,
        empty=not has_rows,
        size_bytes=size,
        line_ending=line_ending,
        warnings=warnings,
    )


def iter_tables(
    path: Path, feed: Feed, header: FileHeader, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pa.Table]:
    """Stream a file's data rows as Arrow tables of strings.

    Each chunk has one ``string`` column per contract column (null where the
    row has no such field), plus ``_row_number`` (int64), ``_truncated`` and
    ``_overflow`` (bool); chunks hold ``chunk_rows`` rows, the last one fewer.
    Raises :class:`FileRejected` when bytes deep in the file do not decode in
    the detected encoding.

    Files that a byte scan proves safe are parsed by Arrow (see
    :func:`_scan_for_arrow`); anything else, or any Arrow surprise before the
    first chunk, goes through the :mod:`csv` reference reader. Both give the
    same chunks; ``READ_PATHS`` counts which one served each file.
    """
    if header.empty:
        return
    scan = _scan_for_arrow(path, header.encoding)
    if isinstance(scan, str):
        yield from _python_fallback(path, feed, header, chunk_rows, scan)
        return
    fast = _iter_tables_arrow(path, feed, scan, chunk_rows)
    try:
        first = next(fast, None)
    except (pa.ArrowException, _NotEquivalent) as exc:
        # nothing has been yielded yet: the reference reader takes the whole file
        yield from _python_fallback(path, feed, header, chunk_rows, f"arrow: {type(exc).__name__}")
        return
    READ_PATHS["arrow"] += 1
    if first is None:
        return
    yield first
    try:
        yield from fast
    except (pa.ArrowException, _NotEquivalent) as exc:
        # the scan rules this out (unless the file changes while being read); a
        # half-yielded file must not be finished by the other reader
        raise RuntimeError(
            f"{path.name}: Arrow reader failed after the first chunk ({type(exc).__name__}); "
            "the file may have changed while being read"
        ) from None


def iter_chunks(
    path: Path, feed: Feed, header: FileHeader, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """:func:`iter_tables` as pandas DataFrames: object columns of ``str``/``None``.

    The form the pandas reference path (``datahub.sources.parse``,
    ``datahub.privacy.pseudonymise``) and the reference reader work in.
    """
    for table in iter_tables(path, feed, header, chunk_rows=chunk_rows):
        yield table_to_frame(table)


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """A reader chunk as the reference reader's DataFrame (object strings, int64, bool)."""
    data: dict[str, pd.Series] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if name in (ROW_NUMBER, TRUNCATED, OVERFLOW):
            data[name] = pd.Series(col.to_numpy(), copy=False)
        else:  # dtype object: pandas would infer its "str" dtype from the strings
            data[name] = pd.Series(_to_object(col.combine_chunks()), dtype=object, copy=False)
    return pd.DataFrame(data, copy=False)


def frame_to_table(frame: pd.DataFrame) -> pa.Table:
    """The reference reader's DataFrame as a reader chunk (inverse of :func:`table_to_frame`)."""
    arrays = []
    for name in frame.columns:
        values = frame[name].to_numpy()
        if name == ROW_NUMBER:
            arrays.append(pa.array(values, pa.int64()))
        elif name in (TRUNCATED, OVERFLOW):
            arrays.append(pa.array(values, pa.bool_()))
        else:
            arrays.append(pa.array(values, pa.string(), from_pandas=True))
    return pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])


def _python_fallback(
    path: Path, feed: Feed, header: FileHeader, chunk_rows: int, why: str
) -> Iterator[pa.Table]:
    log.debug("%s: csv reference reader (%s)", path.name, why)
    READ_PATHS["python"] += 1
    for frame in _iter_chunks_python(path, feed, header, chunk_rows=chunk_rows):
        yield frame_to_table(frame)


def _iter_chunks_python(
    path: Path, feed: Feed, header: FileHeader, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Reference reader: :mod:`csv` row by row (the fallback of :func:`iter_chunks`).

    Kept as written before the Arrow path existed: it defines the output the
    fast path must reproduce exactly (tests compare the two).
    """
    if header.empty:
        return
    identifier_cols = {c.name for c in feed.identifier_columns}
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=header.encoding, errors="strict", newline="")
        reader = csv.reader(text)
        file_header = _next_row(reader, 0)
        mapped, _ = check_header(feed, file_header or [])
        width = len(mapped)
        keep = [(i, name) for i, name in enumerate(mapped) if name]
        out_cols = [name for _, name in keep]
        rows: list[list[str | None]] = []
        numbers: list[int] = []
        truncated: list[bool] = []
        overflow: list[bool] = []
        n = 0
        while True:
            try:
                row = _next_row(reader, n)
            except _CutQuote:
                # EOF inside a quoted field: the export was cut mid-row.
                n += 1
                rows.append([None] * len(keep))
                numbers.append(n)
                truncated.append(True)
                overflow.append(False)
                break
            if row is None:
                break
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            n += 1
            short = len(row) < width
            long = len(row) > width
            values: list[str | None] = [row[i] if i < len(row) else None for i, _ in keep]
            if long:
                values = [
                    v if name in identifier_cols else None
                    for v, (_, name) in zip(values, keep, strict=True)
                ]
            rows.append(values)
            numbers.append(n)
            truncated.append(short)
            overflow.append(long)
            if len(rows) >= chunk_rows:
                yield _frame(out_cols, rows, numbers, truncated, overflow)
                rows, numbers, truncated, overflow = [], [], [], []
        if rows:
            yield _frame(out_cols, rows, numbers, truncated, overflow)


class _CutQuote(Exception):
    pass


def _next_row(reader: Iterator[list[str]], rows_so_far: int) -> list[str] | None:
    try:
        return next(reader)
    except StopIteration:
        return None
    except UnicodeDecodeError as exc:
        raise FileRejected(
            "undecodable",
            f"bytes after data row {rows_so_far} are not valid {exc.encoding}; "
            "the file mixes encodings or is corrupt",
        ) from None
    except csv.Error as exc:
        if "end of data" in str(exc) or "EOF" in str(exc):
            raise _CutQuote from None
        raise FileRejected(
            "not_text", f"CSV syntax error after data row {rows_so_far}: {exc}"
        ) from None


def _frame(
    cols: list[str],
    rows: list[list[str | None]],
    numbers: list[int],
    truncated: list[bool],
    overflow: list[bool],
) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=cols, dtype=object)
    df[ROW_NUMBER] = pd.array(numbers, dtype="int64")
    df[TRUNCATED] = pd.array(truncated, dtype="bool")
    df[OVERFLOW] = pd.array(overflow, dtype="bool")
    return df


def file_ends_with_newline(path: Path) -> bool:
    """True when the file's last byte ends a line (a cut export usually does not)."""
    size = path.stat().st_size
    if size == 0:
        return True
    with path.open("rb") as fh:
        fh.seek(size - 1)
        return fh.read(1) in (b"\n", b"\r")


# --- Arrow fast path -------------------------------------------------------------------------
#
# Why it is exactly equivalent to the csv reference reader. The reference splits the decoded
# text into lines at ``\n``, ``\r\n`` and ``\r`` and parses them with the excel dialect, not
# strict. Arrow (``newlines_in_values=False``, ``ignore_empty_lines``, double quotes, no
# escape) splits at the same line breaks, skips the same empty lines (the reference skips
# their ``[]``) and, on every line that does not end inside an open quoted value, parses the
# same fields: a quote opens a value only at a field's start, a doubled quote inside one is a
# quote, a quote elsewhere is kept, text after the closing quote is appended. A line that
# ends inside an open quote (a value with a line break, a cut quote at EOF) makes the
# reference read on into the next line; the scan below finds such lines before anything is
# yielded and the whole file then goes to the reference reader. Rows whose field count is
# not the header's are handed over by Arrow's ``invalid_row_handler`` with their text and
# 1-based index among the non-empty lines (the header is 1); they are parsed with ``csv``
# and merged back at that index. ``tests/unit/test_reader_fast.py`` compares both readers
# on every sample file, on defect fixtures and on random files.

#: Which reader served each file ("arrow" or "python"); tests and benchmarks read it.
READ_PATHS: Counter[str] = Counter()
#: Arrow's CSV block; a row must fit in one block.
ARROW_BLOCK_BYTES = 1 << 20
#: Bytes per piece of the pre-scan's decoding and quote checks.
SCAN_BYTES = 8 << 20
#: The scan proves every line shorter than twice this (UTF-8 may grow GBK text by half,
#: so lines stay well inside an Arrow block and far below ``csv.field_size_limit``).
LINE_WINDOW = ARROW_BLOCK_BYTES // 4
#: GB18030 encoding of U+FEFF: Python keeps it in the text, Arrow would drop it as a BOM.
_GB18030_BOM = b"\x84\x31\x95\x33"
_CODECS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "gb18030": "gb18030"}
_ARROW_CODECS = {"utf-8": "utf8", "utf-8-sig": "utf8", "gb18030": "gb18030"}


class _NotEquivalent(Exception):
    """The Arrow path met something it cannot prove equal to the reference reader."""


@dataclass(frozen=True)
class _Scan:
    """What the pre-scan proved about a file the Arrow path may read."""

    offset: int  # bytes before the header (a UTF-8 BOM)
    arrow_encoding: str
    header: list[str]  # the header row, as the reference reader parses it
    has_quotes: bool


def _scan_for_arrow(path: Path, encoding: str) -> _Scan | str:
    """Check the whole file for what the Arrow path cannot reproduce; a reason when unsafe.

    Works on the memory-mapped bytes: line breaks, quotes, commas and NUL are single
    bytes that never occur inside a multi-byte character of UTF-8 or GB18030, so byte
    searches are exact and pieces cut after a line break decode on their own. Checks:
    the first line is a non-empty header, not a second BOM; no NUL; no line as long as
    ``2 * LINE_WINDOW``; every byte decodes strictly; no line ends inside a quote.
    """
    codec = _CODECS.get(encoding)
    if codec is None:
        return f"encoding {encoding}"
    if path.stat().st_size == 0:
        return "empty file"
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        offset = 0
        if encoding == "utf-8-sig" and mm[: len(codecs.BOM_UTF8)] == codecs.BOM_UTF8:
            offset = len(codecs.BOM_UTF8)
        first = _first_line(mm, offset)
        if isinstance(first, str):
            return first
        if mm.find(b"\x00", offset) >= 0:
            return "NUL byte"
        # a line of 2 * LINE_WINDOW bytes would contain a whole aligned window without a break
        for start in range(offset, len(mm) - LINE_WINDOW + 1, LINE_WINDOW):
            stop = start + LINE_WINDOW
            if mm.find(b"\n", start, stop) < 0 and mm.find(b"\r", start, stop) < 0:
                return "line too long"
        has_quotes = mm.find(b'"', offset) >= 0
        with memoryview(mm) as view:
            for piece in _line_pieces(mm, view, offset):
                if not _decodes(piece, codec):
                    return "undecodable"
                if has_quotes and not _quotes_close_on_their_line(piece):
                    return "quoted value open at a line end"
    try:
        header = _parse_line(first.decode(codec))
    except (UnicodeDecodeError, _NotEquivalent):
        return "header"
    return _Scan(offset, _ARROW_CODECS[encoding], header, has_quotes)


def _first_line(mm: mmap.mmap, offset: int) -> bytes | str:
    """The header line's bytes, or why the Arrow path must not read the file."""
    if mm[offset : offset + 1] in (b"", b"\r", b"\n"):
        return "blank first line"
    if mm[offset : offset + 4].startswith((codecs.BOM_UTF8, _GB18030_BOM)):
        return "byte order mark inside the text"
    ends = [i for i in (mm.find(b"\n", offset), mm.find(b"\r", offset)) if i >= 0]
    if not ends:
        return "header only"  # Arrow cannot infer the columns of an unterminated single line
    return mm[offset : min(ends)]


def _line_pieces(mm: mmap.mmap, view: memoryview, offset: int) -> Iterator[memoryview]:
    """Zero-copy pieces of about ``SCAN_BYTES``, each ending after a line break."""
    start = offset
    while start < len(mm):
        stop = min(start + SCAN_BYTES, len(mm))
        if stop < len(mm):
            # lines are shorter than 2 * LINE_WINDOW (checked before), so a break is near
            cut = max(mm.rfind(b"\n", start, stop), mm.rfind(b"\r", start, stop))
            stop = cut + 1 if cut >= start else len(mm)
        with view[start:stop] as piece:
            yield piece
        start = stop


def _decodes(piece: memoryview, codec: str) -> bool:
    if codec == "utf-8":
        # Arrow's validator accepts exactly the well-formed UTF-8 that Python's strict
        # decoder does, without building a str of the piece
        offsets = pa.py_buffer(np.array([0, len(piece)], dtype=np.int32))
        try:
            pa.StringArray.from_buffers(1, offsets, pa.py_buffer(piece)).validate(full=True)
        except pa.ArrowInvalid:
            return False
        return True
    try:
        str(piece, codec)
    except UnicodeDecodeError:
        return False
    return True


def _quotes_close_on_their_line(piece: memoryview) -> bool:
    """True when no line with a quote ends inside a quoted value.

    csv reads the lines with quotes one after another: a line left open swallows the
    next one, so fewer rows than lines come out (a final empty line catches the last
    one). Latin-1 keeps every byte as one character, and only ASCII bytes matter to
    the csv grammar.
    """
    data = piece.tobytes()
    if b'"' not in data:
        return True
    lines = [line.decode("latin-1") for line in data.splitlines() if b'"' in line]
    try:
        rows = sum(1 for _ in csv.reader([*lines, ""]))
    except csv.Error:
        return False
    return rows == len(lines) + 1


def _parse_line(line: str) -> list[str]:
    """One line as the reference reader parses it; raises if it is not a whole row."""
    if '"' not in line:
        return line.split(",")
    try:
        rows = list(csv.reader([line, ""]))
    except csv.Error:
        raise _NotEquivalent from None
    if len(rows) != 2:
        raise _NotEquivalent  # the line ends inside a quoted value
    return rows[0]


@dataclass(frozen=True)
class _Layout:
    """Column layout of one file: header width, kept columns, identifier columns."""

    width: int
    keep: list[tuple[int, str]]
    identifiers: frozenset[str]

    def row_values(self, row: list[str]) -> tuple[list[str | None], bool, bool] | None:
        """The reference reader's treatment of one parsed row; ``None`` for a blank row."""
        if not row or (len(row) == 1 and not row[0].strip()):
            return None
        long = len(row) > self.width
        values: list[str | None] = [row[i] if i < len(row) else None for i, _ in self.keep]
        if long:
            values = [
                v if name in self.identifiers else None
                for v, (_, name) in zip(values, self.keep, strict=True)
            ]
        return values, len(row) < self.width, long


def _iter_tables_arrow(path: Path, feed: Feed, scan: _Scan, chunk_rows: int) -> Iterator[pa.Table]:
    mapped, _ = check_header(feed, scan.header)
    width = len(mapped)
    if width < 2:
        raise _NotEquivalent  # a one-field row cannot be told from a blank line by count
    layout = _Layout(
        width,
        [(i, name) for i, name in enumerate(mapped) if name],
        frozenset(c.name for c in feed.identifier_columns),
    )
    odd_rows: list[tuple[int, str]] = []  # (index among non-empty lines, 0 = header; text)

    def on_invalid(row: pacsv.InvalidRow) -> str:
        if row.number is None:
            return "error"  # cannot place it: Arrow raises, the reference reader takes over
        odd_rows.append((row.number - 1, row.text))
        return "skip"

    merger = _Merger(layout, odd_rows)
    # the reference cuts a chunk once it holds chunk_rows rows: 0 or less means 1
    out = _ChunkBuilder([name for _, name in layout.keep], max(chunk_rows, 1))
    with pa.OSFile(str(path)) as src:
        src.seek(scan.offset)
        reader = pacsv.open_csv(
            src,
            read_options=pacsv.ReadOptions(
                use_threads=False,
                block_size=ARROW_BLOCK_BYTES,
                autogenerate_column_names=True,
                encoding=scan.arrow_encoding,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=",",
                quote_char='"' if scan.has_quotes else False,
                double_quote=True,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=True,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)},
                include_columns=[f"f{i}" for i, _ in layout.keep],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=False,  # the scan validated every byte
            ),
        )
        for batch in reader:
            if batch.num_rows:
                yield from out.add(*merger.batch(batch))
    yield from out.add(*merger.finish())
    yield from out.flush()


_Rows = tuple[list[pa.Array], np.ndarray, np.ndarray]  # kept columns, truncated, overflow


class _Merger:
    """Puts Arrow's well-formed rows and the handler's odd rows back in file order.

    Positions count non-empty lines from 0 (the header). The i-th odd row sits at
    ``pos_i``, so ``pos_i - i`` well-formed rows precede it, and well-formed row ``r``
    (0 = header) sits at ``r + #{i : pos_i - i <= r}``.
    """

    def __init__(self, layout: _Layout, odd_rows: list[tuple[int, str]]) -> None:
        self.layout = layout
        self.odd_rows = odd_rows
        self.valid_seen = 0  # well-formed rows consumed, header included
        self.next_pos = 0  # position of the next row not yet merged
        self.cursor = 0  # odd rows merged so far

    def batch(self, batch: pa.RecordBatch) -> _Rows:
        m = batch.num_rows
        ranks = np.arange(self.valid_seen, self.valid_seen + m, dtype=np.int64)
        positions = ranks + self.cursor
        pending = self.odd_rows[self.cursor :]
        if pending:
            before = np.array(
                [pos - i for i, (pos, _) in enumerate(pending, start=self.cursor)], dtype=np.int64
            )
            if pending[0][0] < self.next_pos or np.any(np.diff(before) < 0):
                raise _NotEquivalent  # odd rows not reported in file order
            positions += np.searchsorted(before, ranks, side="right")
        end = int(positions[-1])
        k = 0
        while self.cursor + k < len(self.odd_rows) and self.odd_rows[self.cursor + k][0] < end:
            k += 1
        odd = self.odd_rows[self.cursor : self.cursor + k]
        if int(positions[0]) < self.next_pos or end - self.next_pos + 1 != m + k:
            raise _NotEquivalent  # positions do not tile the file: Arrow numbers rows otherwise
        if self.valid_seen == 0 and int(positions[0]) != 0:
            raise _NotEquivalent
        cols = [batch.column(j) for j in range(len(self.layout.keep))]
        rows = self._assemble(cols, positions - self.next_pos, odd, m + k)
        self.valid_seen += m
        self.cursor += k
        self.next_pos = end + 1
        return rows

    def finish(self) -> _Rows:
        """Odd rows after the last well-formed one (e.g. a truncated last line)."""
        odd = self.odd_rows[self.cursor :]
        if self.valid_seen == 0:
            raise _NotEquivalent  # Arrow never delivered the header line
        if [pos for pos, _ in odd] != list(range(self.next_pos, self.next_pos + len(odd))):
            raise _NotEquivalent
        empty = [pa.array([], pa.string()) for _ in self.layout.keep]
        rows = self._assemble(empty, np.empty(0, dtype=np.int64), odd, len(odd))
        self.cursor += len(odd)
        self.next_pos += len(odd)
        return rows

    def _assemble(
        self, cols: list[pa.Array], slots: np.ndarray, odd: list[tuple[int, str]], span: int
    ) -> _Rows:
        """Rows ``next_pos .. next_pos + span - 1``: well-formed at ``slots``, odd at theirs."""
        truncated = np.zeros(span, dtype=bool)
        overflow = np.zeros(span, dtype=bool)
        drop = np.zeros(span, dtype=bool)
        if self.valid_seen == 0:
            drop[0] = True  # the header line
        if odd:
            # each slot takes its value from the well-formed column (index < len) or from the
            # odd rows appended after it; one take per column puts them in file order
            source = np.empty(span, dtype=np.int64)
            source[slots] = np.arange(len(slots), dtype=np.int64)
            extra: list[list[str | None]] = [[] for _ in cols]
            for pos, text in odd:
                slot = pos - self.next_pos
                treated = self.layout.row_values(_parse_line(text))
                if treated is None:
                    drop[slot] = True
                    values: list[str | None] = [None] * len(cols)
                else:
                    values, truncated[slot], overflow[slot] = treated
                source[slot] = len(slots) + len(extra[0])
                for e, v in zip(extra, values, strict=True):
                    e.append(v)
            order = pa.array(source)
            cols = [
                pa.concat_arrays([c, pa.array(e, pa.string())]).take(order)
                for c, e in zip(cols, extra, strict=True)
            ]
        if drop.any():
            kept = ~drop
            mask = pa.array(kept)
            return [c.filter(mask) for c in cols], truncated[kept], overflow[kept]
        return cols, truncated, overflow


def _to_object(arr: pa.Array) -> np.ndarray:
    """Arrow strings as an object array of ``str`` and ``None``.

    A repetitive column (categories, stations, codes) is dictionary-encoded first so
    each distinct Python string is built once, not once per row; for a column of
    mostly distinct values (numbers, times) that detour costs more than it saves.
    """
    enc = pc.dictionary_encode(arr)
    if len(enc.dictionary) * 4 > len(arr):
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
    # the last word stands for null cells (dictionary_encode leaves their index null)
    words = np.empty(len(enc.dictionary) + 1, dtype=object)
    words[:-1] = enc.dictionary.to_numpy(zero_copy_only=False)
    index = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
    return words[index]


class _ChunkBuilder:
    """Cuts merged rows into Arrow tables of exactly ``chunk_rows`` rows, numbering them."""

    def __init__(self, names: list[str], chunk_rows: int) -> None:
        self.names = names
        self.chunk_rows = chunk_rows
        self.parts: list[_Rows] = []
        self.pending = 0
        self.numbered = 0

    def add(
        self, cols: list[pa.Array], truncated: np.ndarray, overflow: np.ndarray
    ) -> Iterator[pa.Table]:
        if len(truncated):
            self.parts.append((cols, truncated, overflow))
            self.pending += len(truncated)
        while self.pending >= self.chunk_rows:
            yield self._cut(self.chunk_rows)

    def flush(self) -> Iterator[pa.Table]:
        if self.pending:
            yield self._cut(self.pending)

    def _cut(self, n: int) -> pa.Table:
        pieces: list[_Rows] = []
        filled = 0
        while filled < n:
            cols, trunc, over = self.parts[0]
            take = min(n - filled, len(trunc))
            pieces.append(([c.slice(0, take) for c in cols], trunc[:take], over[:take]))
            filled += take
            if take == len(trunc):
                self.parts.pop(0)
            else:
                self.parts[0] = ([c.slice(take) for c in cols], trunc[take:], over[take:])
        self.pending -= n
        columns: list[pa.Array | pa.ChunkedArray] = [
            pa.chunked_array([p[0][j] for p in pieces], pa.string()) for j in range(len(self.names))
        ]
        columns.append(pa.array(np.arange(self.numbered + 1, self.numbered + n + 1)))
        columns.append(pa.array(np.concatenate([p[1] for p in pieces])))
        columns.append(pa.array(np.concatenate([p[2] for p in pieces])))
        self.numbered += n
        return pa.Table.from_arrays(columns, names=[*self.names, ROW_NUMBER, TRUNCATED, OVERFLOW])

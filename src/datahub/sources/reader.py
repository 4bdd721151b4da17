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

Row numbers (``_row_number``) are the 1-based data row in the file, the same
numbering as the generator's ground truth. Blank lines are not data rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from datahub.sources.contracts import Feed

#: Bytes sampled to detect the encoding and binary content.
SAMPLE_BYTES = 1 << 20
#: Data rows per chunk: bounds peak memory for multi-million-row files.
DEFAULT_CHUNK_ROWS = 100_000
#: Structural flag columns added to every chunk.
ROW_NUMBER = "_row_number"
TRUNCATED = "_truncated"
OVERFLOW = "_overflow"

csv.field_size_limit(1 << 24)


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
    reader = csv.reader(io.StringIO(text))
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


def iter_chunks(
    path: Path, feed: Feed, header: FileHeader, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Stream a file's data rows as DataFrames of strings.

    Each chunk has one object column per contract column (``None`` where the
    row has no such field), plus ``_row_number`` (int64), ``_truncated`` and
    ``_overflow`` (bool). Raises :class:`FileRejected` when bytes deep in the
    file do not decode in the detected encoding.
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

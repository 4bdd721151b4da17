"""Leak scanner: raw identifiers in DuckDB files and text outputs (HTML, JSON, logs).

Numbers count only when not glued to other letters or digits: keys and codes
such as ``P0001361234017A5C`` or ``J5111812024…`` contain digit runs that are not
identifiers (an identifier glued to a Latin letter is therefore not reported).

Detectors (applied after removing well-formed tokens ``k<v>_<32 hex>`` and
hex digests of 32+ characters, so files full of tokens or content hashes do not
false-positive):

* ``id18`` — 17 digits + digit/X/x, not inside a longer digit run, with a real
  province code, a real birth date and a correct check character;
* ``id15`` — 15 digits, real province code and 19YYMMDD date (1905 or later);
* ``mobile`` — 11 digits with a carrier prefix, not inside a longer digit run;
* ``source_value`` — exact names / ID numbers / phones collected from the
  identifier columns of source feed files (``--sources DIR``), which also
  catches invalid IDs and names no pattern can describe.

Findings give kind, count and at most one masked example, never a full value.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from datahub.identifiers import ALL_MOBILE_PREFIXES, is_valid_id15, is_valid_id18
from datahub.privacy.tokens import TOKEN_SEARCH_RE

#: First two digits of resident ID numbers (provinces, HK/Macau/Taiwan).
PROVINCES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
        "83",
    ]
)
TEXT_SUFFIXES = frozenset(
    {
        ".html",
        ".htm",
        ".json",
        ".jsonl",
        ".log",
        ".txt",
        ".csv",
        ".md",
        ".xml",
        ".yaml",
        ".yml",
        ".out",
        ".err",
    }
)
DUCKDB_SUFFIXES = frozenset({".duckdb", ".db"})

_ID18 = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_ID15 = re.compile(r"(?<![0-9A-Za-z])\d{15}(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])\d{7,18}[Xx]?(?![0-9A-Za-z])")
#: sha256/md5 digests (content hashes, audit-log hashes): their digit runs are not identifiers
_HEX_DIGEST = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-f]{32,}(?![0-9A-Za-z]))[0-9]*[a-f][0-9a-f]*")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff·]{2,}")


def mask(value: str, kind: str) -> str:
    """A masked example: ``5111**********123X``, ``138****5678``, ``张*``."""
    if kind in ("id18", "id15") or len(value) >= 15:
        return value[:4] + "*" * (len(value) - 8) + value[-4:]
    if value.isdigit() and len(value) >= 7:
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    return value[:1] + "*" * max(len(value) - 1, 1)


@dataclass
class SourceValues:
    """Distinct identifier values taken from source feed files."""

    names: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)  # ID numbers and phones, as digits (+X)
    #: reference codes (division / grid / address): 15-digit grid codes look like old IDs
    codes: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.names) + len(self.numbers)


def find_in_text(
    text: str, sources: SourceValues | None = None, codes: frozenset[str] | set[str] = frozenset()
) -> Counter[tuple[str, str]]:
    """Count identifiers in ``text``: Counter of (kind, value).

    ``codes`` are known reference codes (grid, division) that are not reported as
    15-digit IDs even though they have the same shape.
    """
    text = TOKEN_SEARCH_RE.sub(" ", text)
    text = _HEX_DIGEST.sub(" ", text)
    if sources is not None and sources.codes:
        codes = set(codes) | sources.codes
    found: Counter[tuple[str, str]] = Counter()
    for m in _ID18.finditer(text):
        v = m.group().upper()
        if v[:2] in PROVINCES and is_valid_id18(v):
            found["id18", v] += 1
    for m in _ID15.finditer(text):
        v = m.group()
        # 15-digit codes such as grid codes (511181 001001 001) read as born 1900:
        # holders of old IDs were born after 1904, which removes those false positives
        if v[:2] in PROVINCES and v[6:8] >= "05" and v not in codes and is_valid_id15(v):
            found["id15", v] += 1
    for m in _MOBILE.finditer(text):
        if m.group()[:3] in ALL_MOBILE_PREFIXES:
            found["mobile", m.group()] += 1
    if sources:
        seen = {v for _, v in found}
        for m in _DIGIT_RUN.finditer(text):
            v = m.group().upper()
            if v in sources.numbers and v not in seen:
                found["source_value", v] += 1
        for m in _CJK_RUN.finditer(text):
            if m.group() in sources.names:
                found["source_value", m.group()] += 1
        stripped = text.strip()
        if stripped in sources.names and not _CJK_RUN.fullmatch(stripped):
            found["source_value", stripped] += 1  # a whole cell holding a latin-script name
    return found


@dataclass
class Finding:
    """Identifiers of one kind at one location (a file, or ``db::schema.table.column``)."""

    location: str
    kind: str
    count: int
    example: str  # masked

    def __str__(self) -> str:
        return f"{self.location}: {self.count} × {self.kind} (e.g. {self.example})"


@dataclass
class LeakReport:
    """All findings plus locations scanned and locations that could not be scanned."""

    findings: list[Finding] = field(default_factory=list)
    scanned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: 15-digit reference codes seen in ``*_code`` columns (not reported as old IDs)
    codes: set[str] = field(default_factory=set)

    @property
    def clean(self) -> bool:
        return not self.findings


def _findings(location: str, found: Counter[tuple[str, str]]) -> list[Finding]:
    by_kind: dict[str, tuple[int, str]] = {}
    for (kind, value), n in sorted(found.items()):
        count, example = by_kind.get(kind, (0, mask(value, kind)))
        by_kind[kind] = (count + n, example)
    return [Finding(location, k, c, e) for k, (c, e) in sorted(by_kind.items())]


def scan_duckdb(
    path: Path, sources: SourceValues | None = None, codes: set[str] | None = None
) -> LeakReport:
    """Scan every VARCHAR column of every base table in every schema (opened read-only).

    15-digit values of ``*_code`` columns (grid and division codes) are collected
    first and not reported as old 15-digit IDs anywhere in the file.
    """
    import duckdb

    from datahub.warehouse.db import connect

    report = LeakReport()
    try:
        con = connect(path, read_only=True)
    except (duckdb.Error, OSError) as exc:
        report.errors.append(
            f"{path}: cannot open read-only ({type(exc).__name__}; is a writer running?)"
        )
        return report
    try:
        cols = con.execute(
            """
            SELECT c.table_schema, c.table_name, c.column_name
            FROM information_schema.columns c
            JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)
            WHERE c.data_type = 'VARCHAR' AND t.table_type = 'BASE TABLE'
              AND c.table_catalog = current_database()
            ORDER BY 1, 2, 3
            """
        ).fetchall()
        q = lambda n: '"' + str(n).replace('"', '""') + '"'  # noqa: E731
        known = set(codes or ())
        for schema, table, column in cols:
            if str(column).endswith("_code"):
                known.update(
                    str(r[0])
                    for r in con.execute(
                        f"SELECT DISTINCT {q(column)} FROM {q(schema)}.{q(table)} "
                        f"WHERE length({q(column)}) = 15"
                    ).fetchall()
                )
        report.codes = known
        # only values with a digit run or CJK text can hold what we look for
        pre = r"[0-9]{7}|[\x{3400}-\x{9fff}]" if sources else "[0-9]{11}"
        for schema, table, column in cols:
            loc = f"{path}::{schema}.{table}.{column}"
            rows = con.execute(
                f"SELECT {q(column)} AS v, count(*) AS n FROM {q(schema)}.{q(table)} "
                f"WHERE regexp_matches({q(column)}, ?) OR {q(column)} IN (SELECT unnest(?::VARCHAR[])) "
                "GROUP BY 1",
                [pre, sorted(sources.names) if sources else []],
            ).fetchall()
            found: Counter[tuple[str, str]] = Counter()
            for value, n in rows:
                for key, c in find_in_text(str(value), sources, known).items():
                    found[key] += c * int(n)
            report.findings.extend(_findings(loc, found))
            report.scanned.append(loc)
    finally:
        con.close()
    return report


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    for codec in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def scan_text_file(
    path: Path, sources: SourceValues | None = None, codes: set[str] | None = None
) -> LeakReport:
    """Scan one HTML / JSON / log / text file."""
    report = LeakReport(scanned=[str(path)])
    try:
        text = _read_text(path)
    except OSError as exc:
        report.errors.append(f"{path}: not readable ({exc.strerror})")
        return report
    report.findings.extend(_findings(str(path), find_in_text(text, sources, codes or set())))
    return report


def _walk(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for p in sorted(path.rglob("*")):
        if p.is_file():
            yield p


def scan_paths(paths: Iterable[Path], sources: SourceValues | None = None) -> LeakReport:
    """Scan files and folders (recursively): DuckDB files by content, text files by pattern.

    DuckDB files are scanned first: the reference codes they hold (grid codes
    look like old 15-digit IDs) are then not reported in text files either.
    """
    total = LeakReport()
    files = [p for root in paths if root.exists() for p in _walk(root)]
    dbs = [p for p in files if p.suffix.lower() in DUCKDB_SUFFIXES]
    texts = [p for p in files if p.suffix.lower() in TEXT_SUFFIXES]
    for p in dbs:
        part = scan_duckdb(p, sources, total.codes)
        total.codes |= part.codes
        total.findings += part.findings
        total.scanned += part.scanned
        total.errors += part.errors
    for p in texts:
        part = scan_text_file(p, sources, total.codes)
        total.findings += part.findings
        total.scanned += part.scanned
        total.errors += part.errors
    return total


def collect_source_values(sources_dir: Path) -> SourceValues:
    """Distinct raw names, ID numbers and phones from the feed files below ``sources_dir``.

    Values are collected both as written and in digits-only form, so that a
    reformatted copy (dashes removed) is still found.
    """
    from datahub.sources.contracts import DEPARTMENTS, feed_for_file
    from datahub.sources.reader import FileRejected, iter_chunks, read_header

    out = SourceValues()
    for dept in DEPARTMENTS:
        folder = sources_dir / dept
        if not folder.is_dir():
            continue
        for f in sorted(folder.glob("*.csv")):
            try:
                feed, _ = feed_for_file(dept, f.name)
                header = read_header(f, feed)
                chunks = list(iter_chunks(f, feed, header))
            except (ValueError, FileRejected):
                continue  # not a feed file, or unreadable: the ingestion report covers it
            for chunk in chunks:
                for c in feed.columns:
                    if c.name not in chunk.columns:
                        continue
                    if c.role is None:
                        if c.references or c.name.endswith("_code"):
                            out.codes.update(str(v) for v in chunk[c.name].dropna().unique())
                        continue
                    for v in chunk[c.name].dropna().unique():
                        s = str(v).strip()
                        if not s:
                            continue
                        if c.role == "name":
                            out.names.add(" ".join(s.split()))
                        else:
                            digits = re.sub(r"[^0-9Xx]", "", s).upper()
                            if len(digits) >= 7:
                                out.numbers.add(digits)
    return out

"""Write rendered feeds as department files and the ground truth under ``_truth/``."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datahub.generate.inject import Rendered
from datahub.generate.world import World
from datahub.sources.contracts import Feed

TRUTH_DIR = "_truth"
RECORDS_HEADER = ("file", "row_number", "role", "person_id", "defects")


@dataclass(frozen=True)
class WrittenFile:
    path: str  # relative to the output folder, posix
    feed: str
    stamp: str
    rows: int
    bytes: int
    sha256: str
    encoding: str
    line_ending: str


def csv_bytes(
    header: Sequence[str], rows: Iterable[Sequence[str]], encoding: str, line_ending: str
) -> bytes:
    """CSV text as a department exports it (minimal quoting)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=line_ending)
    w.writerow(header)
    w.writerows(rows)
    try:
        return buf.getvalue().encode(encoding)
    except UnicodeEncodeError as exc:  # only synthetic text here, safe to name the character
        raise ValueError(
            f"value not representable in {encoding}: {exc.object[exc.start : exc.end]!r}"
        ) from exc


def feed_stamps(feed: Feed, world: World) -> list[str]:
    """Every file stamp a feed has over the window."""
    cfg = world.config
    if feed.kind == "event_day":
        return [d.strftime("%Y%m%d") for d in cfg.days]
    if feed.kind == "event_month":
        return cfg.months
    return [cfg.end.strftime("%Y%m%d")]


def write_feed(
    out: Path, r: Rendered, world: World, records: list[np.ndarray]
) -> list[WrittenFile]:
    """Write one feed's files; append its ground-truth rows to ``records``."""
    feed = r.draft.feed
    folder = out / feed.department
    folder.mkdir(parents=True, exist_ok=True)
    header = feed.column_names
    stamps = r.stamps.astype(str)
    columns = [r.columns[c] for c in header]
    written: list[WrittenFile] = []
    known = feed_stamps(feed, world)
    unknown = set(np.unique(stamps)) - set(known)
    if unknown:
        raise AssertionError(f"{feed.key}: rows outside the window: {sorted(unknown)[:3]}")
    role = feed.persons[0].role if feed.persons else ""
    pid = world.persons.pid
    for stamp in known:
        lo = int(np.searchsorted(stamps, stamp, side="left"))
        hi = int(np.searchsorted(stamps, stamp, side="right"))
        data = csv_bytes(
            header, zip(*(c[lo:hi] for c in columns), strict=True), feed.encoding, feed.line_ending
        )
        name = feed.file_name(stamp)
        (folder / name).write_bytes(data)
        rel = f"{feed.department}/{name}"
        written.append(
            WrittenFile(
                rel,
                feed.key,
                stamp,
                hi - lo,
                len(data),
                hashlib.sha256(data).hexdigest(),
                feed.encoding,
                "CRLF" if feed.line_ending == "\r\n" else "LF",
            )
        )
        n = hi - lo
        person = r.person[lo:hi]
        records.append(
            np.column_stack(
                [
                    np.full(n, rel, dtype=object),
                    np.arange(1, n + 1).astype(str).astype(object),
                    np.full(n, role if role else "", dtype=object),
                    np.where(person >= 0, pid[np.maximum(person, 0)], "").astype(object),
                    r.labels[lo:hi],
                ]
            )
        )
    return written


def write_truth(
    out: Path, world: World, records: list[np.ndarray], manifest: dict[str, object]
) -> None:
    """``_truth/``: persons.csv, addresses.csv, records.csv and manifest.json (UTF-8, LF)."""
    truth = out / TRUTH_DIR
    truth.mkdir(parents=True, exist_ok=True)
    p = world.persons
    a = world.addresses
    hh_no = np.where(
        (p.household >= 0) & (p.kind == "registered"),
        np.array([f"H511181{h + 1:07d}" for h in p.household], dtype=object),
        "",
    )
    ptype = {"registered": "户籍", "migrant": "流动", "foreign": "境外", "visitor": "非本地"}
    person_rows = zip(
        p.pid,
        p.name,
        p.surname,
        np.where(p.male, "M", "F"),
        np.datetime_as_string(p.birth, unit="D"),
        p.id18,
        p.id15,
        p.mobile,
        p.landline,
        [ptype[k] for k in p.kind],
        p.region,
        np.where(p.home >= 0, a.code[np.maximum(p.home, 0)], ""),
        world.person_grid,
        hh_no,
        p.relation,
        p.migrant_reason,
        [("" if np.isnat(x) else str(x)) for x in p.arrived_on],
        p.key_category,
        p.conflict_prone.astype(int),
        p.hardship.astype(int),
        p.lives_alone.astype(int),
        strict=True,
    )
    header = (
        "person_id",
        "name",
        "surname",
        "sex",
        "birth_date",
        "id_number",
        "id15",
        "mobile",
        "landline",
        "population_type",
        "id_region",
        "home_address_code",
        "home_grid_code",
        "household_no",
        "relation",
        "migrant_reason",
        "arrived_on",
        "key_person_category",
        "conflict_prone",
        "hardship",
        "lives_alone",
    )
    (truth / "persons.csv").write_bytes(csv_bytes(header, person_rows, "utf-8", "\n"))
    addr_rows = zip(
        a.code, a.kind, a.area_class, a.in_use.astype(int), a.grid, a.station, strict=True
    )
    (truth / "addresses.csv").write_bytes(
        csv_bytes(
            ("address_code", "kind", "area_class", "in_use", "grid_code", "station"),
            addr_rows,
            "utf-8",
            "\n",
        )
    )
    rec = np.concatenate(records) if records else np.empty((0, 5), dtype=object)
    (truth / "records.csv").write_bytes(csv_bytes(RECORDS_HEADER, rec.tolist(), "utf-8", "\n"))
    (truth / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )

"""The synthetic feed generator: determinism, encodings, contracts and ground truth."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
from collections import Counter
from pathlib import Path

import pytest

from datahub.generate import DEFECTS, GenerateConfig, expected_reason, generate
from datahub.identifiers import id15_to_id18, is_valid_id15, is_valid_id18
from datahub.sources.contracts import (
    DATE_FORMATS,
    DATETIME_FORMATS,
    DEPARTMENT_ENCODING,
    DEPARTMENTS,
    FEEDS,
    FEEDS_BY_KEY,
    MONTH_FORMATS,
    Feed,
    feed_for_file,
)

START, END = dt.date(2026, 6, 20), dt.date(2026, 7, 10)


def _read(path: Path, feed: Feed) -> tuple[list[str], list[list[str]]]:
    text = path.read_bytes().decode(feed.encoding)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    # a high defect scale so that every label occurs often enough to check its rate
    generate(out, GenerateConfig(persons=1500, seed=11, start=START, end=END, defect_scale=3.0))
    return out


@pytest.fixture(scope="module")
def records(sample: Path) -> dict[tuple[str, int], dict[str, str]]:
    with (sample / "_truth" / "records.csv").open(encoding="utf-8", newline="") as f:
        return {(r["file"], int(r["row_number"])): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def persons(sample: Path) -> dict[str, dict[str, str]]:
    with (sample / "_truth" / "persons.csv").open(encoding="utf-8", newline="") as f:
        return {r["person_id"]: r for r in csv.DictReader(f)}


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path) -> None:
    cfg = GenerateConfig(persons=300, seed=5, start=START, end=END)
    generate(tmp_path / "a", cfg)
    generate(tmp_path / "b", cfg)
    generate(tmp_path / "c", GenerateConfig(persons=300, seed=6, start=START, end=END))
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    changed = [k for k in a if a[k] != c[k]]
    assert "_truth/persons.csv" in changed
    assert "police/incidents_20260701.csv" in changed


def test_files_follow_contract_naming_and_window(sample: Path) -> None:
    days = [
        (START + dt.timedelta(days=i)).strftime("%Y%m%d") for i in range((END - START).days + 1)
    ]
    for feed in FEEDS:
        names = sorted(p.name for p in (sample / feed.department).glob(f"{feed.name}_*.csv"))
        names = [n for n in names if feed.file_pattern.match(n)]
        if feed.kind == "event_day":
            assert names == [feed.file_name(d) for d in days]
        elif feed.kind == "event_month":
            assert names == [feed.file_name("202606"), feed.file_name("202607")]
        else:
            assert names == [feed.file_name("20260710")]
        for n in names:
            assert feed_for_file(feed.department, n) == (feed, n.split("_")[-1][:-4])
    assert not list(sample.glob("*/_truth*"))  # truth never inside a department folder


def test_encodings_and_line_endings(sample: Path) -> None:
    for dept in DEPARTMENTS:
        encoding, line_ending = DEPARTMENT_ENCODING[dept]
        files = sorted((sample / dept).glob("*.csv"))
        assert files
        for path in files:
            data = path.read_bytes()
            assert data.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig"), path.name
            text = data.decode(encoding)
            if line_ending == "\r\n":
                assert text.count("\r\n") == text.count("\n") > 0, path.name
            else:
                assert "\r" not in text, path.name
    # GBK is really GBK: community files hold Chinese text that is not valid UTF-8
    raw = (sample / "community" / "visits_202607.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "走访" in raw.decode("gbk") or "关爱" in raw.decode("gbk")


def test_manifest_matches_files(sample: Path) -> None:
    manifest = json.loads((sample / "_truth" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 11 and manifest["persons"] == 1500
    assert manifest["window"] == {"start": "2026-06-20", "end": "2026-07-10"}
    for f in manifest["files"]:
        data = (sample / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        assert f["encoding"] == DEPARTMENT_ENCODING[f["path"].split("/")[0]][0]
        feed = FEEDS_BY_KEY[f["feed"]]
        assert len(_read(sample / f["path"], feed)[1]) == f["rows"]


def _parse(value: str, formats: tuple[str, ...]) -> dt.datetime | None:
    for fmt in formats:
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


_FORMATS = {"datetime": DATETIME_FORMATS, "date": DATE_FORMATS, "month": MONTH_FORMATS}


def _stamp_date(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp if len(stamp) == 8 else stamp + "01", "%Y%m%d")


def test_every_row_has_truth_consistent_with_its_content(
    sample: Path, records: dict[tuple[str, int], dict[str, str]], persons: dict[str, dict[str, str]]
) -> None:
    """Labels say exactly what is wrong; unlabelled values are the person's true values."""
    addresses = set()
    grids = set()
    seen_rows = 0
    for feed in FEEDS:
        role = feed.persons[0].role if feed.persons else ""
        ref = feed.persons[0] if feed.persons else None
        for path in sorted((sample / feed.department).glob(f"{feed.name}_*.csv")):
            if not feed.file_pattern.match(path.name):
                continue
            header, rows = _read(path, feed)
            assert tuple(header) == feed.column_names
            stamp = _stamp_date(path.stem.split("_")[-1])
            earlier: set[tuple[str, ...]] = set()
            rel = f"{feed.department}/{path.name}"
            for n, row in enumerate(rows, start=1):
                seen_rows += 1
                rec = records[(rel, n)]
                labels = set(filter(None, rec["defects"].split(";")))
                assert labels <= DEFECTS.keys()
                assert rec["role"] == role
                v = dict(zip(header, row, strict=True))
                if feed.key == "government.addresses":
                    addresses.add(v["address_code"])
                if feed.key == "government.divisions" and v["level"] == "网格":
                    grids.add(v["division_code"])
                # duplicates
                assert (tuple(row) in earlier) == ("duplicate_row" in labels), (rel, n)
                earlier.add(tuple(row))
                # required values
                blank_required = [c.name for c in feed.columns if c.required and v[c.name] == ""]
                assert bool(blank_required) == ("missing_required" in labels), (rel, n)
                # allowed values never broken by a defect
                for c in feed.columns:
                    if c.allowed and v[c.name]:
                        assert v[c.name] in c.allowed, (rel, n, c.name)
                # dates
                parsed: dict[str, dt.datetime | None] = {}
                for c in feed.columns:
                    if c.type in _FORMATS and v[c.name]:
                        parsed[c.name] = _parse(v[c.name], _FORMATS[c.type])
                assert (None in parsed.values()) == ("bad_date" in labels), (rel, n)
                future = any(x and x > stamp + dt.timedelta(days=365) for x in parsed.values())
                assert future == ("future_date" in labels), (rel, n)
                inverted = any(
                    parsed.get(a) and parsed.get(b) and parsed[b] < parsed[a]  # type: ignore[operator]
                    for a, b in feed.time_order
                )
                assert inverted == ("time_order" in labels), (rel, n)
                # persons
                if ref is None:
                    assert rec["person_id"] == ""
                    continue
                person = persons[rec["person_id"]]
                _check_id(v.get(ref.id_number or "", ""), person, labels, (rel, n))
                _check_phone(v.get(ref.phone or "", ""), person, labels, (rel, n))
                _check_name(v.get(ref.name or "", ""), person, labels, (rel, n))
    assert seen_rows == len(records)
    assert addresses and grids


def _check_id(value: str, person: dict[str, str], labels: set[str], where: object) -> None:
    if value == "":
        return
    true = person["id_number"]
    if "id_invalid_check" in labels:
        assert len(value) == 18 and value[:17] == true[:17] and not is_valid_id18(value), where
    elif "id_malformed" in labels:
        assert not is_valid_id18(value) and not is_valid_id15(value), where
    elif "id_lowercase_x" in labels:
        assert value == true[:17] + "x", where
    elif "id_15digit" in labels:
        assert is_valid_id15(value) and id15_to_id18(value) == true, where
    elif "id_fullwidth" in labels:
        assert (
            value != true
            and value.translate({0xFF10 + i: 0x30 + i for i in range(10)} | {0xFF38: 0x58}) == true
        )
    elif labels & {"id_spaces", "id_dashes"}:
        assert value.replace(" ", "").replace("-", "") == true and value != true, where
    else:
        assert value == true and is_valid_id18(value), where


def _check_phone(value: str, person: dict[str, str], labels: set[str], where: object) -> None:
    if value == "":
        return
    if "phone_landline" in labels:
        assert value == person["landline"] != "", where
    elif labels & {"phone_plus86", "phone_86dash", "phone_spaces"}:
        digits = value.replace("+86", "").replace("86-", "").replace(" ", "")
        assert digits == person["mobile"] and value != digits, where
    else:
        assert value in (person["mobile"], person["landline"]), where


def _check_name(value: str, person: dict[str, str], labels: set[str], where: object) -> None:
    if value == "":
        return
    true = person["name"]
    if "name_space" in labels:
        assert value.replace(" ", "") == true and value != true, where
    elif labels & {"name_typo", "name_homophone"}:
        assert (
            value != true
            and len(value) == len(true)
            and value[: len(person["surname"])] == person["surname"]
        )
    else:
        assert value == true, where


def test_defect_rates_match_configuration(sample: Path) -> None:
    manifest = json.loads((sample / "_truth" / "manifest.json").read_text(encoding="utf-8"))
    rates = manifest["defect_rates"]
    checked = 0
    for label, c in manifest["defect_counts"].items():
        n, k, r = c["eligible"], c["applied"], rates[label]
        if n * r < 20:
            continue
        sd = math.sqrt(n * r * (1 - r))
        assert abs(k - n * r) <= 4 * sd + 2, (label, n, k, r)
        checked += 1
    assert checked >= 15


def test_truth_labels_count_what_was_applied(
    sample: Path, records: dict[tuple[str, int], dict[str, str]]
) -> None:
    manifest = json.loads((sample / "_truth" / "manifest.json").read_text(encoding="utf-8"))
    counts = Counter(label for r in records.values() for label in r["defects"].split(";") if label)
    copies = counts["duplicate_row"] + counts["near_duplicate"]
    assert counts["duplicate_row"] == manifest["defect_counts"]["duplicate_row"]["applied"]
    for label, c in manifest["defect_counts"].items():
        # copies repeat their original's labels
        assert c["applied"] <= counts[label] <= c["applied"] + copies, label


def test_default_rates_quarantine_a_few_percent(tmp_path: Path) -> None:
    generate(tmp_path, GenerateConfig(persons=800, seed=3, start=START, end=END))
    with (tmp_path / "_truth" / "records.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    quarantined = sum(expected_reason(r["defects"]) is not None for r in rows)
    assert 0.015 <= quarantined / len(rows) <= 0.045
    assert all(r["person_id"] for r in rows if r["role"])


def test_defect_scale_zero_is_clean(tmp_path: Path) -> None:
    generate(tmp_path, GenerateConfig(persons=300, seed=3, start=START, end=END, defect_scale=0))
    with (tmp_path / "_truth" / "records.csv").open(encoding="utf-8", newline="") as f:
        assert all(r["defects"] == "" for r in csv.DictReader(f))


def test_incidents_per_day_override_and_season(tmp_path: Path) -> None:
    cfg = GenerateConfig(
        persons=300,
        seed=4,
        start=dt.date(2026, 6, 1),
        end=dt.date(2026, 7, 31),
        incidents_per_day=200,
        defect_scale=0,
    )
    result = generate(tmp_path, cfg)
    rows = result.rows_by_feed["police.incidents"]
    # mean per day is 200 × season weight (June 0.9, July 1.7) × weekend 1.1
    assert 200 * (30 * 0.9 + 31 * 1.7) * 0.97 <= rows <= 200 * (30 * 0.9 + 31 * 1.7) * 1.1 * 1.03
    june = sum(
        f.rows for f in result.files if f.feed == "police.incidents" and f.stamp < "20260701"
    )
    assert (rows - june) / 31 > 1.6 * june / 30


def test_config_rejects_bad_window() -> None:
    with pytest.raises(ValueError, match="before its start"):
        GenerateConfig(start=dt.date(2026, 7, 1), end=dt.date(2026, 6, 1))


def test_expected_reason() -> None:
    assert expected_reason("") is None
    assert expected_reason("id_fullwidth;name_typo") is None
    assert expected_reason("name_space;id_invalid_check") == "invalid_id_number"
    assert expected_reason("date_format;duplicate_row") == "duplicate_row"

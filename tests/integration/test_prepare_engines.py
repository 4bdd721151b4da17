"""The SQL prepare engine stages exactly what the pandas reference engine stages.

``pipeline.prepare(engine="sql")`` (DuckDB) and ``engine="reference"`` (pandas) run
over the same file with the same key file and chunk size; their staged batches must
agree: the ledger input (``result.json``), every accepted and quarantined row and
column (``accepted.parquet``, ``quarantine.parquet``), the vault entries and every
GX expectation result. Files: every committed sample feed, the reader's defect
fixtures, random grid-member files, and an incidents file whose identifier, date and
number cells are adversarial. Real DuckDB and GX throughout. Failure messages name
files, columns and row positions, never cell values.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

from test_fast_normalise import _adversarial  # noqa: E402
from test_privacy_helpers import make_keyring, random_ids  # noqa: E402
from test_reader_fast import FIXTURES, _random_file  # noqa: E402

from datahub import pipeline  # noqa: E402
from datahub.config import SAMPLE_SOURCES, Paths  # noqa: E402
from datahub.privacy.keys import Keyring  # noqa: E402
from datahub.quality import staging as st  # noqa: E402
from datahub.sources.contracts import FEEDS_BY_KEY  # noqa: E402

NOW = dt.datetime(2026, 8, 15, tzinfo=dt.UTC)
RESULT_FIELDS = (
    "status",
    "rows_read",
    "rows_accepted",
    "rows_quarantined",
    "rows_rejected",
    "reasons",
    "failed_expectations",
    "warnings",
    "message",
    "encoding",
)


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> Keyring:
    return make_keyring(tmp_path_factory.mktemp("keys"))


def _prepare_both(
    path: Path, sources: Path, ring: Keyring, home: Path, chunk_rows: int
) -> dict[str, Path]:
    paths = Paths(home)
    return {
        engine: pipeline.prepare(
            path,
            paths=paths,
            keyring=ring,
            sources_root=sources,
            now=NOW,
            chunk_rows=chunk_rows,
            engine=engine,
        )
        for engine in ("reference", "sql")
    }


def _differences(batches: dict[str, Path]) -> list[str]:
    """What differs between the two staged batches (names and positions only)."""
    ref, sql = batches["reference"], batches["sql"]
    out: list[str] = []
    r1, r2 = (json.loads((b / st.RESULT).read_text(encoding="utf-8")) for b in (ref, sql))
    out += [f"result.{k}" for k in RESULT_FIELDS if r1[k] != r2[k]]
    for name in (st.ACCEPTED, st.QUARANTINE):
        present = [(b / name).exists() for b in (ref, sql)]
        if present[0] != present[1]:
            out.append(f"{name}: present {present}")
        if not all(present):
            continue
        a, b = pq.read_table(ref / name), pq.read_table(sql / name)
        if a.schema != b.schema:
            out.append(f"{name}: schema {a.schema.names} vs {b.schema.names}")
            continue
        for col in a.column_names:
            x, y = a.column(col).to_pylist(), b.column(col).to_pylist()
            if x != y:
                rows = [i for i, (u, v) in enumerate(zip(x, y, strict=False)) if u != v]
                out.append(f"{name}.{col}: {len(x)} vs {len(y)} rows, differing {rows[:5]}")
    vaults = []
    for b in (ref, sql):
        p = b / st.VAULT
        t = pq.read_table(p) if p.exists() else st.VAULT_SCHEMA.empty_table()
        vaults.append(set(zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True)))
    if vaults[0] != vaults[1]:
        out.append(f"vault: {len(vaults[0] - vaults[1])} only in reference, "
                   f"{len(vaults[1] - vaults[0])} only in sql")  # fmt: skip
    results = []
    for b in (ref, sql):
        p = b / st.VALIDATION
        d = json.loads(p.read_text(encoding="utf-8")) if p.exists() else {"results": []}
        results.append([(r["expectation_config"], r["success"], r["result"]) for r in d["results"]])
    if results[0] != results[1]:
        bad = [i for i, (x, y) in enumerate(zip(*results, strict=False)) if x != y]
        out.append(f"validation: expectations {bad[:5]} differ")
    return out


def _assert_same(label: str, batches: dict[str, Path]) -> None:
    diffs = _differences(batches)
    assert not diffs, f"{label}: " + "; ".join(diffs)


def _sources_with_references(root: Path) -> Path:
    """A sources folder holding the sample government code tables (for the code checks)."""
    (root / "government").mkdir(parents=True, exist_ok=True)
    for p in (SAMPLE_SOURCES / "government").glob("*.csv"):
        if p.name.startswith(("divisions_", "addresses_")):
            shutil.copy(p, root / "government" / p.name)
    return root


# ------------------------------------------------------------------ sample feeds


def test_every_sample_file_stages_the_same(tmp_path: Path, ring: Keyring) -> None:
    files = pipeline.list_feed_files(SAMPLE_SOURCES)
    assert len(files) >= 140
    quarantined = 0
    for f in files:
        batches = _prepare_both(f, SAMPLE_SOURCES, ring, tmp_path / "home", chunk_rows=400)
        _assert_same(f"{f.parent.name}/{f.name}", batches)
        quarantined += json.loads((batches["sql"] / st.RESULT).read_text())["rows_quarantined"]
    assert quarantined > 300  # the samples' defects: the comparison covers quarantine too


# ----------------------------------------------------------- reader defect fixtures


@pytest.mark.parametrize("chunk_rows", [1, 7, 100_000])
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_defect_fixture_stages_the_same(
    tmp_path: Path, ring: Keyring, name: str, chunk_rows: int
) -> None:
    text, encoding, _ = FIXTURES[name]
    sources = _sources_with_references(tmp_path / "src")
    (sources / "community").mkdir()
    p = sources / "community" / "grid_members_20260731.csv"
    p.write_bytes(text.encode(encoding))
    _assert_same(name, _prepare_both(p, sources, ring, tmp_path / "home", chunk_rows))


def test_random_files_stage_the_same(tmp_path: Path, ring: Keyring) -> None:
    rnd = random.Random(2026)
    sources = _sources_with_references(tmp_path / "src")
    (sources / "community").mkdir()
    for case in range(30):
        text, encoding = _random_file(rnd)
        p = sources / "community" / "grid_members_20260731.csv"
        p.write_bytes(text.encode(encoding))
        chunk_rows = rnd.choice([2, 5, 1000])
        _assert_same(
            f"case {case} (chunk_rows {chunk_rows})",
            _prepare_both(p, sources, ring, tmp_path / f"home{case}", chunk_rows),
        )


# ------------------------------------------------- adversarial incidents (every type)


def test_incidents_with_adversarial_cells_stage_the_same(tmp_path: Path, ring: Keyring) -> None:
    feed = FEEDS_BY_KEY["police.incidents"]
    rng = random.Random(7)
    # control characters would make the whole file "binary" (rejected): cells only
    control = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32)])
    odd = [v.translate(control) if isinstance(v, str) else "" for v in _adversarial(31, 6000)]
    times = ["2026-06-01 10:00:00", "2026/06/01 10:00:00", "20260601100000", "2026-06-01T10:00:00",
             "2026年06月01日 10:00:00", "2026-06-01 10:00", "2026-06-01", "2026-6-1 9:5:3",
             "2026-02-30 10:00:00", "2027-06-01 10:00:00", "2026-06-01 10:00:60", "昨天", "",
             " 2026-06-01 10:00:01 ", "２０２６-06-01 10:00:00", "2026-05-31 23:59:59"]  # fmt: skip
    addresses = [a.strip() for a in (SAMPLE_SOURCES / "government").glob("addresses_*.csv")
                 .__next__().read_text(encoding="utf-8").splitlines()[1:40]]  # fmt: skip
    codes = [line.split(",")[0] for line in addresses]
    ids = random_ids(200, seed=3)
    phones = [f"13{rng.randint(0, 9)}{rng.randint(10**7, 10**8 - 1)}" for _ in range(200)]
    rows = []

    def pick(good: list[str], bad: list[str], p_bad: float = 0.04) -> str:
        return rng.choice(bad) if rng.random() < p_bad else rng.choice(good)

    def when(minute: int) -> str:  # mostly a good time in order, sometimes any spelling
        return pick([f"2026-06-01 10:{minute:02d}:00"], times, 0.04)

    for i in range(3000):
        cells = {
            "incident_no": pick([f"J{i:08d}"], [f"J{i - 1:08d}", "", f" J{i:08d}"]),
            "received_at": when(1),
            "dispatched_at": when(2),
            "arrived_at": when(3),
            "closed_at": when(4),
            "report_channel": pick(["电话", "短信", "微信", "现场"], ["传真", ""]),
            "call_category": pick(["刑事", "治安", "其他"], ["", "火警"]),
            "final_category": pick(["刑事", "交通", ""], ["火警"]),
            "incident_level": pick(["1", "2", "4"], ["5", "1.0", "1.5", "x", "", "１"], 0.1),
            "address_code": pick(codes, ["99999999999999999999", "", " "]),
            "area_class": pick(["重点部位", "重点区域", "一般区域"], [""]),
            "station": pick(["名山派出所", "绥山派出所"], ["无此所", ""]),
            "caller_name": pick(
                ["张伟", "李 娜", " 王芳", "欧阳娜娜", ""], ["ＡＢＣ", *odd[:50]], 0.2
            ),
            "caller_id_number": pick(ids, odd, 0.12),
            "caller_phone": pick(phones, odd, 0.3),
        }
        line = ",".join(cells[c].replace(",", " ").replace('"', "'").replace("\n", " ")
                        .replace("\r", " ") for c in feed.column_names)  # fmt: skip
        rows.append(line)
        if rng.random() < 0.03:
            rows.append(line)  # exact duplicate row
    sources = _sources_with_references(tmp_path / "src")
    (sources / "police").mkdir()
    p = sources / "police" / "incidents_20260601.csv"
    p.write_text("\n".join([",".join(feed.column_names), *rows]) + "\n", encoding="utf-8")
    for chunk_rows in (250, 100_000):
        batches = _prepare_both(p, sources, ring, tmp_path / f"home{chunk_rows}", chunk_rows)
        _assert_same(f"incidents, chunk_rows {chunk_rows}", batches)
        result = json.loads((batches["sql"] / st.RESULT).read_text())
        # the file really exercises the checks this test claims to compare
        assert result["rows_quarantined"] > 100 and result["rows_accepted"] > 100, result
        assert {"bad_value", "invalid_id_number", "time_order", "duplicate_row"} <= set(
            result["reasons"]
        )

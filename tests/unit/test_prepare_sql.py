"""The SQL twins of the per-value references: cleaning, typing, identifiers, tokens, masks.

Every SQL expression the prepare engine runs is compared, value by value, with the
Python function that defines it (``_clean_one``, ``parse_one``, ``normalise_id_one``,
``normalise_phone_one``, ``normalise_name_one`` + ``name_pinyin``, ``tokenise_unique``,
``failure_mask``) over the sample feeds' cells and over adversarial values. The SQL runs
in a real in-memory DuckDB. Assertion messages give counts and positions, never values.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pytest
from test_fast_normalise import _adversarial, _sample_columns

from datahub.privacy import sql as psql
from datahub.privacy.normalise import _id_details, name_pinyin, normalise_name_one
from datahub.privacy.normalise import normalise_phone_one as phone_one
from datahub.privacy.tokens import tokenise_unique
from datahub.quality.checks import failure_mask
from datahub.quality.sql import mask_sql
from datahub.sources import sql as ssql
from datahub.sources.contracts import (
    DATE_FORMATS,
    DATETIME_FORMATS,
    MONTH_FORMATS,
    Column,
)
from datahub.sources.parse import _clean_one, parse_one
from datahub.warehouse.db import memory


@pytest.fixture(scope="module")
def con():  # type: ignore[no-untyped-def]
    c = memory()
    yield c
    c.close()


def _strings(values: list[object]) -> list[str | None]:
    return [v if isinstance(v, str) else None for v in values]


def _mismatches(got: list[object], want: list[object]) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]


def _column(con, expr: str, values: list[str | None]) -> list[object]:  # type: ignore[no-untyped-def]
    con.register("t", pa.table({"v": pa.array(values, pa.string())}))
    try:
        rows = con.sql(f"SELECT {expr} AS out FROM t").to_arrow_table()
    finally:
        con.unregister("t")
    return rows.column("out").to_pylist()


def _sample_values(kind: str) -> Iterator[tuple[str, Column, list[str | None]]]:
    for label, feed, series in _sample_columns():
        col = feed.column(str(series.name))
        if kind == "all" or col.type == kind:
            yield label, col, _strings(series.tolist())


# ------------------------------------------------------------------------ cleaning


def test_clean_sql_equals_clean_one_on_every_sample_cell(con) -> None:  # type: ignore[no-untyped-def]
    checked = 0
    for label, _, values in _sample_values("all"):
        want = [None if v is None else _clean_one(v) for v in values]
        bad = _mismatches(_column(con, ssql.clean_sql("v"), values), want)
        assert not bad, f"{label}: {len(bad)} cells differ, first positions {bad[:5]}"
        checked += 1
    assert checked > 100


def test_clean_sql_equals_clean_one_on_adversarial_text(con) -> None:  # type: ignore[no-untyped-def]
    values = _strings(_adversarial(seed=11, n=20_000))
    want = [None if v is None else _clean_one(v) for v in values]
    bad = _mismatches(_column(con, ssql.clean_sql("v"), values), want)
    assert not bad, f"{len(bad)} of {len(values)} differ, first positions {bad[:5]}"


# -------------------------------------------------------------------------- typing

_TYPES = ("datetime", "date", "month", "int", "float")


def _date_spellings(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        moment = dt.datetime(
            rng.choice([1, 999, 1900, 1999, 2000, 2024, 2026, 9999]),
            rng.randint(1, 12),
            rng.randint(1, 28),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
        )
        fmt = rng.choice(DATETIME_FORMATS + DATE_FORMATS + MONTH_FORMATS)
        text = moment.strftime(fmt)
        if rng.random() < 0.3:  # unpadded fields, impossible days, junk, other digits
            text = rng.choice(
                [
                    text.replace("-0", "-"),
                    text.replace("28", "31").replace("-02-", "-02-").replace("-2-", "-2-"),
                    text + rng.choice(["x", "Z", "+08:00", ".5", ":60"]),
                    text[:-1],
                    rng.choice(
                        ["0000-01-01", "26-06-01", "2026-6-1 0:0:60", "2026-02-30", "٢٠٢٦-06-01"]
                    ),
                    text.replace("2", "２"),
                ]
            )
        out.append(text)
    return out


def _numbers(rng: random.Random, n: int) -> list[str]:
    pieces = ["1", "12", "0", "-3", "+4", "1.0", "1.5", ".5", "5.", "1e3", "1E-2", "2.5e1", "inf",
              "nan", "NaN", "1,000", "0x10", "1_0", "9223372036854775807", "9223372036854775808",
              "-9223372036854775808", "1e19", "١٢", "", "--1", "1e", "e1", " 7 "]  # fmt: skip
    return [rng.choice(pieces) for _ in range(n)]


@pytest.mark.parametrize("kind", _TYPES)
def test_typed_sql_equals_parse_one(con, kind: str) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(kind)
    col = Column("x", "x", "x", kind)  # type: ignore[arg-type]
    values: list[str | None] = [*_date_spellings(rng, 4000), *_numbers(rng, 1000), None]
    for _, _c, vs in _sample_values(kind):
        values += vs
    cleaned = [None if v is None else _clean_one(v) for v in values]
    got = _column(con, ssql.typed_sql(col, ssql.clean_sql("v")), values)
    want = [parse_one(col, v) for v in cleaned]
    bad = _mismatches(got, want)
    assert not bad, f"{kind}: {len(bad)} of {len(values)} differ, first positions {bad[:5]}"
    assert sum(w is not None for w in want) > 100  # the corpus parses, not only fails


def _pandas_formats(text: str, formats: tuple[str, ...]) -> object:
    for fmt in formats:
        parsed = pd.to_datetime(pd.Series([text]), format=fmt, errors="coerce")[0]
        if not pd.isna(parsed):
            return parsed.to_pydatetime()
    return None


def _pandas_typed(col: Column, text: str) -> object:
    """How the pandas engine typed a cell before ``parse_one`` (pd.to_datetime/to_numeric)."""
    if col.type == "datetime":
        return _pandas_formats(text, DATETIME_FORMATS) or _pandas_formats(text, DATE_FORMATS)
    if col.type == "date":
        v = _pandas_formats(text, DATE_FORMATS) or _pandas_formats(text, DATETIME_FORMATS)
        return None if v is None else v.date()  # type: ignore[attr-defined]
    if col.type == "month":
        v = _pandas_formats(text, MONTH_FORMATS)
        return None if v is None else v.strftime("%Y-%m")  # type: ignore[attr-defined]
    num = pd.to_numeric(pd.Series([text], dtype=object), errors="coerce")[0]
    if pd.isna(num) or num in (float("inf"), float("-inf")):
        return None
    if col.type == "float":
        return float(num)
    return int(num) if float(num).is_integer() else None


def test_parse_one_types_every_sample_cell_as_pandas_did() -> None:
    """On real exports ``parse_one`` changes nothing: it only differs from pandas' parsing on
    odd text (unpadded compact dates like ``13800138000``, second 60, non-ASCII digits)."""
    checked = 0
    for label, col, values in _sample_values("all"):
        if col.type == "str" or col.role is not None:
            continue
        for i, v in enumerate(values):
            text = None if v is None else _clean_one(v)
            if text is None:
                continue
            assert parse_one(col, text) == _pandas_typed(col, text), f"{label} row {i}"
            checked += 1
    assert checked > 20_000


# --------------------------------------------------------------------- identifiers


def _learned(con, role: str, raws: list[str], params: dict[str, object]) -> pa.Table:  # type: ignore[no-untyped-def]
    """What ``learn_select_sql`` makes of ``raws`` (the cache columns), sorted by raw value."""
    pattern = psql.fast(role)
    import re

    odd = [r for r in raws if pattern is None or not re.search(pattern, r)]
    con.register("_new", pa.table({"raw": pa.array(raws, pa.string())}))
    con.register("_slow", psql.slow_table(role, odd))
    try:
        sql = psql.learn_select_sql(role)
        rows = con.sql(sql, params={k: v for k, v in params.items() if f"${k}" in sql})
        rows = rows.to_arrow_table()
        _, columns = psql.IDENTIFIER_CACHES[role]
        assert rows.column_names == ["raw", *columns]
        return rows.take(
            sorted(range(rows.num_rows), key=rows.column("raw").to_pylist().__getitem__)
        )
    finally:
        con.unregister("_new")
        con.unregister("_slow")


@pytest.fixture(scope="module")
def keys() -> dict[str, bytes]:
    rng = random.Random(5)
    return {d: rng.randbytes(32) for d in ("id_number", "phone", "name", "name_pinyin")}


def _raw_identifiers() -> list[str]:
    values = {v for v in _strings(_adversarial(seed=23, n=20_000)) if v}
    for _label, col, vs in _sample_values("str"):
        if col.role is not None:
            values.update(_clean_one(v) or "" for v in vs if v)
    return sorted({v for v in (_clean_one(v) for v in values) if v})


def test_learned_id_numbers_equal_the_reference(con, keys) -> None:  # type: ignore[no-untyped-def]
    raws = _raw_identifiers()
    got = _learned(con, "id_number", raws, {**psql.token_params(keys, 3)}).to_pylist()
    assert len(got) == len(raws) and all(r["raw"] == w for r, w in zip(got, raws, strict=True))
    usable = [r["value"] for r in got if r["value"] is not None]
    tokens = dict(zip(usable, tokenise_unique(keys["id_number"], 3, usable), strict=True))
    for i, r in enumerate(got):
        value, status, birth, sex = _id_details(r["raw"])
        assert (r["value"], r["status"], r["birth"], r["sex"]) == (value, status, birth, sex), i
        assert r["token"] == (None if value is None else tokens[value]), i
    fast = sum(r["raw"].isascii() and len(r["raw"]) == 18 for r in got)
    assert fast > 1000 and len(got) - fast > 1000  # both paths are exercised


def test_learned_phones_equal_the_reference(con, keys) -> None:  # type: ignore[no-untyped-def]
    raws = _raw_identifiers()
    got = _learned(con, "phone", raws, {**psql.token_params(keys, 3)}).to_pylist()
    usable = [r["value"] for r in got if r["value"] is not None]
    tokens = dict(zip(usable, tokenise_unique(keys["phone"], 3, usable), strict=True))
    for i, r in enumerate(got):
        value, kind = phone_one(r["raw"])
        assert (r["value"], r["kind"]) == (value, kind), i
        assert r["token"] == (None if value is None else tokens[value]), i
    assert sum(r["kind"] == "mobile" for r in got) > 500


def test_learned_names_equal_the_reference(con, keys) -> None:  # type: ignore[no-untyped-def]
    raws = sorted(
        {v for _, col, vs in _sample_values("str") if col.role == "name" for v in vs if v}
        | {"张 伟", " 李娜 ", "阿卜杜•热西提", "·", "ＡＢＣ", "\U00020000伟", "欧阳娜娜"}
    )
    raws = sorted({r for r in (_clean_one(v) for v in raws) if r})
    got = _learned(con, "name", raws, {**psql.token_params(keys, 3)}).to_pylist()
    for i, r in enumerate(got):
        value = normalise_name_one(r["raw"])
        pinyin = None if value is None else name_pinyin(value)
        assert (r["value"], r["pinyin"]) == (value, pinyin), i
        if value is not None:
            assert r["token"] == tokenise_unique(keys["name"], 3, [value])[0], i
            assert r["pinyin_token"] == tokenise_unique(keys["name_pinyin"], 3, [pinyin])[0], i
    assert len(got) > 100


def test_name_dob_sql_writes_iso_dates(con) -> None:  # type: ignore[no-untyped-def]
    con.register(
        "t",
        pa.table(
            {
                "n": pa.array(["张伟", None, "李娜"], pa.string()),
                "b": pa.array([dt.date(1990, 1, 2), dt.date(1980, 5, 6), None], pa.date32()),
            }
        ),
    )
    try:
        got = con.sql(f"SELECT {psql.name_dob_sql('n', 'b')} FROM t").fetchall()
    finally:
        con.unregister("t")
    assert [g[0] for g in got] == ["张伟|1990-01-02", None, None]


# --------------------------------------------------------------------------- masks

_FRAME = pd.DataFrame(
    {
        "flag": pd.array([False, True, None, False], dtype="boolean"),
        "cat": pd.array(["a", "b", None, "z"], dtype="str"),
        "num": pd.array([1, 5, None, 2], dtype="Int64"),
        "a": pd.to_datetime(["2026-01-02", "2026-01-01", None, "2026-01-01"]),
        "b": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-01", None]),
    }
)


@pytest.mark.parametrize(
    "exp",
    [
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "flag", "value_set": [False]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "cat", "value_set": ["a", "b"]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "num", "value_set": [1, 2, 3]}},
        {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "cat", "value_set": ["z"]}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "cat"}},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b",
         "kwargs": {"column_A": "a", "column_B": "b", "or_equal": True}},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b",
         "kwargs": {"column_A": "a", "column_B": "b"}},
    ],
    ids=lambda e: e["type"].removeprefix("expect_column_"),
)  # fmt: skip
def test_mask_sql_equals_failure_mask(con, exp: dict) -> None:  # type: ignore[no-untyped-def]
    con.register("t", pa.Table.from_pandas(_FRAME, preserve_index=False))
    try:
        got = [r[0] for r in con.sql(f"SELECT {mask_sql(exp)} FROM t").fetchall()]
    finally:
        con.unregister("t")
    want = failure_mask(exp, _FRAME)
    assert want is not None
    assert got == want.fillna(False).astype(bool).tolist()

"""Normalisers: ID numbers, phones, names, pinyin."""

from __future__ import annotations

import pandas as pd
from test_privacy_helpers import make_id, mask

from datahub.identifiers import id15_to_id18
from datahub.privacy.normalise import (
    name_dob_values,
    normalise_ids,
    normalise_names,
    normalise_phones,
)


def test_id_statuses_and_derived_fields() -> None:
    good = make_id("19900101", 124)  # even sequence → female
    bad_check = good[:17] + ("0" if good[17] != "0" else "1")
    old15 = "511181" + "900101" + "123"
    raw = pd.Series(
        [good, bad_check, old15, "5111811990013212", "511181199002301234", None, " ", "12345"]
    )
    r = normalise_ids(raw)
    assert r.status.tolist() == [
        "valid",
        "invalid_checksum",
        "valid_15",
        "malformed",
        "malformed",
        "missing",
        "missing",
        "malformed",
    ]
    assert r.value.iloc[0] == good and r.value.iloc[2] == id15_to_id18(old15)
    assert r.value.iloc[[1, 3, 4, 5, 6, 7]].isna().all(), [mask(v) for v in r.value]
    assert r.sex.iloc[0] == "F" and r.sex.iloc[2] == "M"
    assert r.birth_year.iloc[0] == 1990 and r.birth_year.iloc[2] == 1990
    assert pd.isna(r.birth_year.iloc[1])
    assert str(r.birth_date.iloc[0].date()) == "1990-01-01"


def test_phone_kinds() -> None:
    raw = pd.Series(
        [
            "+86 138-1234-5678",
            "0086 13812345678",
            "86-13812345678",
            "0833-5551234",
            "(0833)5551234",
            "5551234",
            "010-62345678",
            "12012345678",
            "abc",
            "",
            None,
            "１３８１２３４５６７８",
        ]
    )
    r = normalise_phones(raw)
    assert r.kind.tolist() == [
        "mobile",
        "mobile",
        "mobile",
        "landline",
        "landline",
        "landline",
        "landline",
        "invalid",
        "invalid",
        "missing",
        "missing",
        "mobile",
    ]
    assert set(r.value.iloc[[0, 1, 2, 11]]) == {"13812345678"}
    assert set(r.value.iloc[[3, 4, 5]]) == {"0833-5551234"}
    assert r.value.iloc[6] == "010-62345678"
    assert r.value.iloc[[7, 8, 9, 10]].isna().all()


def test_names_and_pinyin() -> None:
    raw = pd.Series(
        ["张 伟", " 张伟 ", "张　伟", "欧阳  娜娜", "John   Smith", "阿卜杜・热西提", "", None]
    )
    r = normalise_names(raw)
    assert r.value.tolist()[:6] == [
        "张伟",
        "张伟",
        "张伟",
        "欧阳娜娜",
        "John Smith",
        "阿卜杜·热西提",
    ]
    assert r.status.tolist() == ["valid"] * 6 + ["missing"] * 2
    assert r.pinyin.iloc[0] == "zhangwei" and r.pinyin.iloc[3] == "ouyangnana"
    assert r.pinyin.iloc[4] == "johnsmith"
    assert r.pinyin.iloc[6:].isna().all()


def test_name_dob_needs_both() -> None:
    names = pd.Series(["张伟", "李娜", None])
    dates = normalise_ids(pd.Series([make_id("19900101"), "bad", make_id("19800101")])).birth_date
    out = name_dob_values(names, dates)
    assert out.iloc[0] == "张伟|1990-01-01"
    assert out.iloc[1:].isna().all()

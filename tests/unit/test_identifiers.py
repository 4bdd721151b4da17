"""Check digits and shapes of Chinese identifiers, on known valid and invalid examples."""

from __future__ import annotations

import datetime as dt

import pytest

from datahub.identifiers import (
    credit_check_char,
    id15_to_id18,
    id18_birth_date,
    id18_sex,
    id_check_char,
    is_mobile,
    is_valid_credit_code,
    is_valid_id15,
    is_valid_id18,
)


@pytest.mark.parametrize(
    "value",
    [
        "11010519491231002X",
        "440524188001010014",
        "511181199001011234"[:17] + id_check_char("51118119900101123"),
    ],
)
def test_valid_id18(value: str) -> None:
    assert is_valid_id18(value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("110105194912310021", "wrong check digit"),
        ("11010519491231002x", "lowercase x is not normalised here"),
        ("11010519491331002X", "month 13"),
        ("11010519490230002X", "30 February"),
        ("1101051949123100", "too short"),
        ("11010519491231002X1", "too long"),
        ("1101051949123100AX", "letter inside"),
        ("", "empty"),
    ],
)
def test_invalid_id18(value: str, why: str) -> None:
    assert not is_valid_id18(value), why


def test_id_check_char_x_and_zero() -> None:
    assert id_check_char("11010519491231002") == "X"
    assert id_check_char("44052418800101001") == "4"
    with pytest.raises(ValueError):
        id_check_char("1234")


def test_id15_conversion() -> None:
    assert id15_to_id18("110105491231002") == "11010519491231002X"
    assert is_valid_id18(id15_to_id18("511181800101123"))
    assert is_valid_id15("110105491231002")
    assert not is_valid_id15("110105491331002")  # month 13
    assert not is_valid_id15("11010549123100")
    with pytest.raises(ValueError):
        id15_to_id18("11010549123100X")


def test_birth_date_and_sex() -> None:
    assert id18_birth_date("11010519491231002X") == dt.date(1949, 12, 31)
    assert id18_birth_date("11010519491331002X") is None
    assert id18_sex("11010519491231002X") == "F"  # sequence 002: even
    assert id18_sex("110105194912310037") == "M"


def test_credit_code() -> None:
    assert is_valid_credit_code("91350100M000100Y43")
    made = "92511181MA6" + "2ABCDE"
    assert is_valid_credit_code(made + credit_check_char(made))


@pytest.mark.parametrize(
    "value",
    ["91350100M000100Y44", "91350100M000100Y4", "91350100M000100I43", "91350100m000100Y43"],
)
def test_invalid_credit_code(value: str) -> None:
    assert not is_valid_credit_code(value)


def test_credit_check_char() -> None:
    assert credit_check_char("91350100M000100Y4") == "3"
    with pytest.raises(ValueError):
        credit_check_char("91350100O000100Y4")  # O is not in the alphabet


@pytest.mark.parametrize("value", ["13812345678", "19212345678", "16612345678", "19912345678"])
def test_mobile(value: str) -> None:
    assert is_mobile(value)


@pytest.mark.parametrize(
    "value",
    ["12012345678", "1381234567", "138123456789", "0833-5123456", "+8613812345678", "1381234567a"],
)
def test_not_mobile(value: str) -> None:
    assert not is_mobile(value)

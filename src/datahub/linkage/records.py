"""Person records: the token-only frame the linkage works on.

One row per person mentioned by a source record (``integrated.person_records``).
Only tokens, codes and quasi-identifiers (birth year, sex) — never a raw
identifier.
"""

from __future__ import annotations

import pandas as pd

#: Columns of a person-record frame, in order.
RECORD_COLUMNS: tuple[str, ...] = (
    "unique_id",  # <feed>|<record key>|<role>
    "feed",
    "record_key",
    "role",
    "event_key",  # records of one event (incident, dispute) are different persons
    "source_file",
    "source_row",
    "id_token",
    "phone_token",  # mobiles only: landlines are shared by households
    "name_token",
    "name_pinyin_token",
    "name_dob_token",
    "address_code",
    "village_code",
    "birth_year",
    "sex",
)

#: Columns Splink compares or blocks on.
TOKEN_COLUMNS: tuple[str, ...] = (
    "id_token",
    "phone_token",
    "name_token",
    "name_pinyin_token",
    "name_dob_token",
    "address_code",
    "village_code",
    "birth_year",
    "sex",
)


def check_frame(records: pd.DataFrame) -> None:
    """Raise ``ValueError`` when the frame lacks a record column or repeats a unique_id."""
    missing = [c for c in RECORD_COLUMNS if c not in records.columns]
    if missing:
        raise ValueError(f"person records lack columns {missing}")
    if records["unique_id"].duplicated().any():
        raise ValueError("person records repeat a unique_id")


def usable(records: pd.DataFrame) -> pd.Series:
    """True for records with at least one usable identifier.

    Usable means an ID token, a mobile phone token, or a name together with a
    standard address. Records without any of these (e.g. a caller who gave only
    a name) cannot be linked reliably: they get a person of their own and are
    reported separately by the linkage score.
    """
    has_id = records["id_token"].notna()
    has_phone = records["phone_token"].notna()
    has_name_addr = records["name_token"].notna() & records["address_code"].notna()
    return has_id | has_phone | has_name_addr

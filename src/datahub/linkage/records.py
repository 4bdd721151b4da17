"""Person records: the token-only table the linkage works on.

One row per person mentioned by a source record (``integrated.person_records``).
Only tokens, codes and quasi-identifiers (birth year, sex) — never a raw
identifier.
"""

from __future__ import annotations

#: Columns of a person-record table, in order.
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

#: SQL predicate: the record has a usable identifier.
#:
#: Usable means an ID token, a mobile phone token, or a name together with a
#: standard address. Records without any of these (e.g. a caller who gave only
#: a name) cannot be linked reliably: they get a person of their own and are
#: reported separately by the linkage score.
USABLE_SQL = (
    "(id_token IS NOT NULL OR phone_token IS NOT NULL "
    "OR (name_token IS NOT NULL AND address_code IS NOT NULL))"
)

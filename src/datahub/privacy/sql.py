"""Identifier normalisation and tokens as DuckDB SQL: the set-based twin of :mod:`.normalise`.

The shapes that dominate real feeds are decided in SQL, value for value as the
per-value references in :mod:`datahub.privacy.normalise` decide them:

* an ID number of 17 ASCII digits and a digit/X/x: check character, birth date
  and sex computed in SQL (``normalise_id_one`` would only upper-case the x);
* a phone of 11 ASCII digits starting with 1: mobile or invalid by its prefix.

Every other present value — spaces, dashes, fullwidth digits, 15-digit IDs,
+86 prefixes, landlines — is normalised in Python, once per distinct value, by
the reference functions themselves (:func:`id_slow_table`, :func:`phone_slow_table`),
and joined back. Names always go through Python (:func:`name_table`): their
pinyin needs pypinyin's dictionaries.

Tokens are the HMAC of :mod:`datahub.privacy.tokens` written in SQL over
DuckDB's ``sha256``; the padded keys travel as query parameters
(:func:`token_params`), never as text of the query.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from datahub.identifiers import ALL_MOBILE_PREFIXES, ID_CHECK_MAP, ID_WEIGHTS
from datahub.privacy.normalise import (
    _id_details,
    name_pinyin,
    normalise_name_one,
    normalise_phone_one,
)
from datahub.privacy.tokens import TOKEN_HEX_CHARS, HmacPads
from datahub.sources.sql import literal

#: Values the SQL fast paths decide; everything else present goes to Python.
ID_FAST = "^[0-9]{17}[0-9Xx]$"
PHONE_FAST = "^1[0-9]{10}$"


def id_fast_sql(ref: str) -> dict[str, str]:
    """SQL for ``value``, ``status``, ``birth`` (DATE) and ``sex`` of a fast-path ID ``ref``."""
    total = " + ".join(
        f"(ascii(substr({ref}, {i + 1}, 1)) - 48) * {w}" for i, w in enumerate(ID_WEIGHTS)
    )
    check = f"substr({literal(ID_CHECK_MAP)}, ({total}) % 11 + 1, 1)"
    # a real calendar date, years 1..9999 as Python's datetime has them
    birth = (
        f"CASE WHEN substr({ref}, 7, 4) <> '0000' "
        f"THEN CAST(try_strptime(substr({ref}, 7, 8), '%Y%m%d') AS DATE) END"
    )
    status = (
        f"CASE WHEN {birth} IS NULL THEN 'malformed' "
        f"WHEN {check} = upper(substr({ref}, 18, 1)) THEN 'valid' "
        "ELSE 'invalid_checksum' END"
    )
    valid = f"({status}) = 'valid'"
    return {
        "value": f"CASE WHEN {valid} THEN upper({ref}) END",
        "status": status,
        "birth": f"CASE WHEN {valid} THEN {birth} END",
        "sex": (
            f"CASE WHEN {valid} THEN "
            f"CASE WHEN (ascii(substr({ref}, 17, 1)) - 48) % 2 = 1 THEN 'M' ELSE 'F' END END"
        ),
    }


def phone_fast_sql(ref: str) -> dict[str, str]:
    """SQL for ``value`` and ``kind`` of a fast-path phone ``ref``."""
    prefixes = literal(sorted(ALL_MOBILE_PREFIXES))
    mobile = f"list_contains({prefixes}, substr({ref}, 1, 3))"
    return {
        "value": f"CASE WHEN {mobile} THEN {ref} END",
        "kind": f"CASE WHEN {mobile} THEN 'mobile' ELSE 'invalid' END",
    }


#: Per role, the cache table of a prepare process: one row per distinct raw (cleaned) value
#: with everything the value becomes — normalised value, flags, tokens. Persons recur in
#: every daily file, so most rows of a file find their identifiers here.
IDENTIFIER_CACHES: dict[str, tuple[str, dict[str, str]]] = {
    "id_number": (
        "ids",
        {
            "value": "VARCHAR",
            "status": "VARCHAR",
            "birth": "DATE",
            "sex": "VARCHAR",
            "token": "VARCHAR",
        },
    ),
    "phone": ("phones", {"value": "VARCHAR", "kind": "VARCHAR", "token": "VARCHAR"}),
    "name": (
        "names",
        {"value": "VARCHAR", "pinyin": "VARCHAR", "token": "VARCHAR", "pinyin_token": "VARCHAR"},
    ),
}

ID_SLOW_SCHEMA = pa.schema(
    [
        ("raw", pa.string()),
        ("value", pa.string()),
        ("status", pa.string()),
        ("birth", pa.date32()),
        ("sex", pa.string()),
    ]
)
PHONE_SLOW_SCHEMA = pa.schema([("raw", pa.string()), ("value", pa.string()), ("kind", pa.string())])
NAME_SCHEMA = pa.schema([("raw", pa.string()), ("value", pa.string()), ("pinyin", pa.string())])


def id_slow_table(raws: Iterable[str]) -> pa.Table:
    """``normalise_id_one`` (with birth date and sex) of each distinct raw value, as a table."""
    rows: dict[str, list[object]] = {f.name: [] for f in ID_SLOW_SCHEMA}
    for raw in raws:
        value, status, birth, sex = _id_details(raw)
        for k, v in zip(rows, (raw, value, status, birth, sex), strict=True):
            rows[k].append(v)
    return pa.table(rows, schema=ID_SLOW_SCHEMA)


def phone_slow_table(raws: Iterable[str]) -> pa.Table:
    """``normalise_phone_one`` of each distinct raw value, as a table."""
    rows: dict[str, list[object]] = {f.name: [] for f in PHONE_SLOW_SCHEMA}
    for raw in raws:
        value, kind = normalise_phone_one(raw)
        for k, v in zip(rows, (raw, value, kind), strict=True):
            rows[k].append(v)
    return pa.table(rows, schema=PHONE_SLOW_SCHEMA)


def name_table(raws: Iterable[str]) -> pa.Table:
    """Normalised name and toneless pinyin of each distinct raw name, as a table."""
    out_raw: list[str] = []
    values: list[str | None] = []
    pinyins: list[str | None] = []
    for raw in raws:
        value = normalise_name_one(raw)
        out_raw.append(raw)
        values.append(value)
        pinyins.append(None if value is None else name_pinyin(value))
    return pa.table({"raw": out_raw, "value": values, "pinyin": pinyins}, schema=NAME_SCHEMA)


#: Per role, the seals a cache row keeps: column → (vault domain, the cache column sealed,
#: the token column it belongs to). Sealed once, when the raw value is learned, so that a
#: chunk's vault rows are a lookup.
CACHE_SEALS: dict[str, dict[str, tuple[str, str, str]]] = {
    "id_number": {"seal": ("id_number", "value", "token")},
    "phone": {"seal": ("phone", "value", "token")},
    "name": {
        "seal": ("name", "value", "token"),
        "pinyin_seal": ("name_pinyin", "pinyin", "pinyin_token"),
    },
}


def cache_ddl(role: str) -> str:
    """``CREATE TABLE`` of a role's cache.

    Besides what :func:`learn_select_sql` computes, a row keeps the AES-SIV seals
    of :data:`CACHE_SEALS`, ``rid`` (the row's number in its process, to track
    which rows a file has sent to the vault) and ``seq`` (the insert that added
    it: older inserts are evicted first when a cache is full).
    """
    table, columns = IDENTIFIER_CACHES[role]
    cols = ", ".join(f"{c} {t}" for c, t in columns.items())
    seals = "".join(f", {c} BLOB" for c in CACHE_SEALS[role])
    return f"CREATE TABLE {table} (raw VARCHAR, {cols}{seals}, rid BIGINT, seq BIGINT)"


def learn_select_sql(role: str) -> str:
    """``SELECT`` of the cache columns (:data:`IDENTIFIER_CACHES`) for the raw values of ``_new``.

    Fast-path values are decided in SQL; the others (and every name) come from
    the table ``_slow`` that :func:`slow_table` made in Python. Tokens are made
    here, once per distinct raw value. The result has ``raw`` and the role's
    cache columns, in :data:`IDENTIFIER_CACHES` order; seals, ``rid`` and
    ``seq`` are the caller's to add.
    """
    if role == "name":
        return (
            f"SELECT n.raw, s.value, s.pinyin, "
            f"{token_sql('name', 's.value')} AS token, "
            f"{token_sql('name_pinyin', 's.pinyin')} AS pinyin_token "
            "FROM _new AS n LEFT JOIN _slow AS s USING (raw)"
        )
    keys: tuple[str, ...]
    if role == "id_number":
        fast, pattern, keys = id_fast_sql("n.raw"), ID_FAST, ("value", "status", "birth", "sex")
    else:
        fast, pattern, keys = phone_fast_sql("n.raw"), PHONE_FAST, ("value", "kind")
    is_fast = f"regexp_matches(n.raw, {literal(pattern)})"
    picks = ", ".join(f"CASE WHEN {is_fast} THEN {fast[k]} ELSE s.{k} END AS {k}" for k in keys)
    return (
        f"SELECT raw, {', '.join(keys)}, {token_sql(role, 'value')} AS token "
        f"FROM (SELECT n.raw, {picks} FROM _new AS n LEFT JOIN _slow AS s USING (raw))"
    )


def slow_table(role: str, raws: list[str]) -> pa.Table:
    """What the Python references make of raw values the SQL fast path does not decide.

    ``raws`` are distinct; for names every raw value, for IDs and phones those off
    the fast path.
    """
    if role == "name":
        return name_table(raws)
    if role == "id_number":
        return id_slow_table(raws)
    return phone_slow_table(raws)


def fast(role: str) -> str | None:
    """The RE2 pattern of raw values SQL decides alone (None: all go to Python)."""
    return {"id_number": ID_FAST, "phone": PHONE_FAST}.get(role)


def token_sql(domain: str, value: str) -> str:
    """SQL for the token of ``value`` (VARCHAR, NULL stays NULL) in ``domain``.

    Needs the parameters :func:`token_params` gives for the domain.
    """
    return (
        f"$tok_prefix || substr(sha256(${domain}_outer || unhex(sha256(${domain}_inner || "
        f"encode({value})))), 1, {TOKEN_HEX_CHARS})"
    )


def token_params(keys: dict[str, bytes], version: int) -> dict[str, object]:
    """Query parameters for :func:`token_sql`: padded HMAC keys per domain, token prefix."""
    params: dict[str, object] = {"tok_prefix": f"k{version}_"}
    for domain, key in keys.items():
        pads = HmacPads.from_key(key)
        params[f"{domain}_inner"] = pads.inner
        params[f"{domain}_outer"] = pads.outer
    return params


def name_dob_sql(name: str, birth: str) -> str:
    """``<normalised name>|<YYYY-MM-DD>`` (the ``name_dob`` domain) where both exist."""
    return f"CASE WHEN {name} IS NOT NULL AND {birth} IS NOT NULL THEN {name} || '|' || strftime({birth}, '%Y-%m-%d') END"

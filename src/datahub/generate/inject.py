"""Defect injection and formatting: a clean :class:`Draft` → the strings a department exports.

Every injected defect is recorded per row (labels of ``defects.DEFECTS``) together with
how many cells/rows were eligible, so tests and scorers can check the rates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from datahub.generate import names
from datahub.generate.config import DefectRates
from datahub.generate.defects import DEFECTS, FULLWIDTH
from datahub.generate.feeds import Draft
from datahub.generate.world import World
from datahub.sources.contracts import DATE_FORMATS, DATETIME_FORMATS, MONTH_FORMATS, Column

#: The usual spelling of each department's (datetime, date, month) values.
DEPARTMENT_FORMATS: dict[str, tuple[str, str, str]] = {
    "police": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y%m"),
    "government": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y%m"),
    "social_security": ("%Y%m%d%H%M%S", "%Y%m%d", "%Y%m"),
    "community": ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d", "%Y-%m"),
}
#: Feeds whose older records still carry 15-digit IDs.
OLD_ID_FEEDS = frozenset(
    {
        "government.houses",
        "social_security.insured",
        "community.dispute_parties",
        "community.visits",
    }
)
#: Columns a near duplicate may differ in (non-key, non-identifier, no contract rule broken).
NEAR_DUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "police.incidents": ("final_category", "incident_level", "report_channel"),
    "police.incident_persons": ("person_role",),
    "police.key_persons": ("control_level",),
    "police.sensors": ("status",),
    "government.population": ("population_type",),
    "government.houses": ("house_use", "occupants"),
    "government.units": ("employees",),
    "social_security.insured": ("status",),
    "social_security.benefits": ("amount",),
    "community.grid_members": ("member_type",),
    "community.disputes": ("risk_level",),
    "community.visits": ("purpose",),
    "community.patrol_teams": ("members", "team_type"),
}
_BAD_DATES = (
    "{y}-02-30",
    "{y}-13-01",
    "{y}-06-31",
    "0000-00-00",
    "待补录",
    "#VALUE!",
    "1900-01-00",
)
_BAD_MONTHS = ("{y}13", "{y}-00", "待补录", "000000")


@dataclass
class Counts:
    """Eligible and applied counts per defect label, summed over feeds."""

    eligible: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEFECTS, 0))
    applied: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEFECTS, 0))


@dataclass
class Rendered:
    """A feed's rows as exported: strings, stamps, person indices and defect labels."""

    draft: Draft
    columns: dict[str, np.ndarray]
    stamps: np.ndarray
    person: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.stamps)


def format_values(values: np.ndarray, fmt: str) -> np.ndarray:
    """Format datetime64 values (NaT → '') vectorised for the common spellings."""
    unit = np.datetime_data(values.dtype)[0]
    iso = np.datetime_as_string(values, unit=unit)  # type: ignore[call-overload]  # 2026-06-01T08:00:00 / 2026-06-01 / 2026-06
    fast = {
        "%Y-%m-%d %H:%M:%S": (("T", " "),),
        "%Y/%m/%d %H:%M:%S": (("-", "/"), ("T", " ")),
        "%Y%m%d%H%M%S": (("-", ""), ("T", ""), (":", "")),
        "%Y-%m-%d": (),
        "%Y/%m/%d": (("-", "/"),),
        "%Y%m%d": (("-", ""),),
        "%Y-%m": (),
        "%Y%m": (("-", ""),),
    }
    if fmt in fast:
        out = iso
        for old, new in fast[fmt]:
            out = np.char.replace(out, old, new)
        out = out.astype(object)
    else:
        out = np.array([_fmt_one(v, fmt) for v in values], dtype=object)
    out[np.isnat(values)] = ""
    return out


def _fmt_one(value: np.datetime64, fmt: str) -> str:
    if np.isnat(value):
        return ""
    return value.astype("datetime64[s]").astype(dt.datetime).strftime(fmt)


def _each(values: np.ndarray, fn: Callable[[Any], Any], dtype: type = bool) -> np.ndarray:
    """``fn`` over every value, computed once per distinct value (feeds repeat values a lot)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return np.array([fn(u) for u in uniques], dtype=dtype)[codes]


def _formats_for(col: Column) -> tuple[str, ...]:
    return {"datetime": DATETIME_FORMATS, "date": DATE_FORMATS, "month": MONTH_FORMATS}[col.type]


class _Injector:
    def __init__(
        self,
        draft: Draft,
        world: World,
        rates: DefectRates,
        rng: np.random.Generator,
        counts: Counts,
    ):
        self.d = draft
        self.feed = draft.feed
        self.world = world
        self.rates = rates
        self.rng = rng
        self.counts = counts
        self.n = len(draft)
        self.labels = {label: np.zeros(self.n, dtype=bool) for label in DEFECTS}
        self.taken = np.zeros(self.n, dtype=bool)  # has a row-level quarantine defect

    def pick(self, label: str, eligible: np.ndarray) -> np.ndarray:
        rate = getattr(self.rates, label)
        chosen = eligible & (self.rng.random(self.n) < rate)
        self.counts.eligible[label] += int(eligible.sum())
        self.counts.applied[label] += int(chosen.sum())
        self.labels[label] |= chosen
        return chosen

    def col_of_role(self, role: str) -> str | None:
        for c in self.feed.columns:
            if c.role == role:
                return c.name
        return None

    def run(self) -> Rendered:
        feed = self.feed
        cols = {k: v.copy() for k, v in self.d.columns.items()}
        date_cols = [c for c in feed.columns if c.type in ("date", "datetime", "month")]
        id_col = self.col_of_role("id_number")
        key = set(feed.business_key)

        # ---- row-level quarantine defects (exclusive)
        row_masks: dict[str, np.ndarray] = {}
        id_present = cols[id_col] != "" if id_col else np.zeros(self.n, dtype=bool)
        pair_present = [~np.isnat(cols[a]) & ~np.isnat(cols[b]) for a, b in feed.time_order]
        any_pair = (
            np.logical_or.reduce(pair_present) if pair_present else np.zeros(self.n, dtype=bool)
        )
        any_date = (
            np.logical_or.reduce([~np.isnat(cols[c.name]) for c in date_cols])
            if date_cols
            else np.zeros(self.n, dtype=bool)
        )
        required = [c for c in feed.columns if c.required and c.name not in key]
        for label, eligible in (
            ("id_invalid_check", id_present),
            ("id_malformed", id_present),
            ("time_order", any_pair),
            ("future_date", any_date),
            ("bad_date", any_date),
        ):
            row_masks[label] = self.pick(label, eligible & ~self.taken)
            self.taken |= row_masks[label]

        self._time_defects(cols, pair_present, row_masks)
        self._format_dates(cols, date_cols)
        self._bad_dates(cols, date_cols, row_masks["bad_date"])
        self._missing(cols, required)

        # ---- identifiers
        if id_col:
            cols[id_col] = self._ids(cols[id_col], row_masks)
        phone_col = self.col_of_role("phone")
        if phone_col:
            cols[phone_col] = self._phones(cols[phone_col])
        name_col = self.col_of_role("name")
        if name_col:
            cols[name_col] = self._names(cols[name_col])

        for name, values in cols.items():
            if values.dtype != object:
                raise TypeError(f"{feed.key}.{name} was not formatted")
        return self._duplicates(cols)

    def _time_defects(
        self,
        cols: dict[str, np.ndarray],
        pair_present: list[np.ndarray],
        row_masks: dict[str, np.ndarray],
    ) -> None:
        """Time-order and future-date defects, in the datetime domain (before formatting)."""
        feed = self.feed
        rng = self.rng
        for i in np.flatnonzero(row_masks["time_order"]):
            options = [k for k, m in enumerate(pair_present) if m[i]]
            a, b = feed.time_order[options[int(rng.integers(len(options)))]]
            unit = np.datetime_data(cols[a].dtype)[0]
            delta = int(rng.integers(60, 1800)) if unit == "s" else int(rng.integers(1, 30))
            cols[b][i] = cols[a][i] - np.timedelta64(delta, unit)  # type: ignore[call-overload]
        later_of = dict(feed.time_order)
        date_names = [c.name for c in feed.columns if c.type in ("date", "datetime", "month")]
        for i in np.flatnonzero(row_masks["future_date"]):
            # never move an earlier time past its later one: one defect, one reason
            names_ok = [
                n
                for n in date_names
                if not np.isnat(cols[n][i])
                and not (n in later_of and not np.isnat(cols[later_of[n]][i]))
            ]
            name = names_ok[int(rng.integers(len(names_ok)))]
            stamp = str(self.d.stamps[i])
            day = np.datetime64(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8] or '01'}", "D")
            target = day + np.timedelta64(int(rng.integers(400, 2500)), "D")
            col = cols[name]
            if np.datetime_data(col.dtype)[0] == "s":
                time_of_day = col[i] - col[i].astype("datetime64[D]")
                col[i] = target.astype("datetime64[s]") + time_of_day
            else:
                col[i] = target.astype(col.dtype)

    def _format_dates(self, cols: dict[str, np.ndarray], date_cols: list[Column]) -> None:
        """The department's usual spelling, with other accepted spellings here and there."""
        dt_fmt, d_fmt, m_fmt = DEPARTMENT_FORMATS[self.feed.department]
        in_order = {x for pair in self.feed.time_order for x in pair}
        for c in date_cols:
            usual = {"datetime": dt_fmt, "date": d_fmt, "month": m_fmt}[c.type]
            raw = cols[c.name]
            text = format_values(raw, usual)
            # minute precision could invert a seconds-apart time pair: not for ordered columns
            alts = [
                f
                for f in _formats_for(c)
                if f != usual and not (c.name in in_order and f == "%Y-%m-%d %H:%M")
            ]
            swap = self.pick("date_format", ~np.isnat(raw))
            for i in np.flatnonzero(swap):
                text[i] = _fmt_one(raw[i], alts[int(self.rng.integers(len(alts)))])
            cols[c.name] = text

    def _bad_dates(
        self, cols: dict[str, np.ndarray], date_cols: list[Column], rows: np.ndarray
    ) -> None:
        rng = self.rng
        for i in np.flatnonzero(rows):
            options = [c for c in date_cols if cols[c.name][i] != ""]
            col = options[int(rng.integers(len(options)))]
            year = str(self.d.stamps[i])[:4]
            if col.type == "month":
                val = _BAD_MONTHS[int(rng.integers(len(_BAD_MONTHS)))].format(y=year)
            else:
                val = _BAD_DATES[int(rng.integers(len(_BAD_DATES)))].format(y=year)
                if col.type == "datetime" and val[:1].isdigit():
                    val += f" {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}:00"
            cols[col.name][i] = val

    def _missing(self, cols: dict[str, np.ndarray], required: list[Column]) -> None:
        present = (
            np.logical_or.reduce([cols[c.name] != "" for c in required])
            if required
            else np.zeros(self.n, dtype=bool)
        )
        miss = self.pick("missing_required", present & ~self.taken)
        self.taken |= miss
        for i in np.flatnonzero(miss):
            options = [c for c in required if cols[c.name][i] != ""]
            cols[options[int(self.rng.integers(len(options)))].name][i] = ""

    def _ids(self, ids: np.ndarray, row_masks: dict[str, np.ndarray]) -> np.ndarray:
        ids = ids.copy()
        rng = self.rng
        for i in np.flatnonzero(row_masks["id_invalid_check"]):
            good = ids[i][17]
            wrong = [ch for ch in "0123456789X" if ch != good]
            ids[i] = ids[i][:17] + wrong[int(rng.integers(len(wrong)))]
        for i in np.flatnonzero(row_masks["id_malformed"]):
            s = ids[i]
            k = int(rng.integers(3))
            if k == 0:
                ids[i] = s[:17]
            elif k == 1:
                ids[i] = s + str(int(rng.integers(10)))
            else:
                j = int(rng.integers(6, 16))
                ids[i] = s[:j] + "OIL"[int(rng.integers(3))] + s[j + 1 :]
        free = (ids != "") & ~row_masks["id_invalid_check"] & ~row_masks["id_malformed"]
        ends_x = _each(ids, lambda s: s.endswith("X")) & free
        chosen = self.pick("id_lowercase_x", ends_x)
        for i in np.flatnonzero(chosen):
            ids[i] = ids[i][:17] + "x"
        free &= ~chosen
        if self.feed.key in OLD_ID_FEEDS:
            old = _each(ids, lambda s: len(s) == 18 and s[6:8] == "19" and s[0] != "9") & free
            chosen = self.pick("id_15digit", old)
            for i in np.flatnonzero(chosen):
                ids[i] = ids[i][:6] + ids[i][8:17]
            free &= ~chosen
        for label, fn in (
            ("id_fullwidth", lambda s: s.translate(FULLWIDTH)),
            (
                "id_spaces",
                lambda s: (
                    f"{s[:6]} {s[6:14]} {s[14:]}"
                    if self.rng.random() < 0.5
                    else " ".join(s[k : k + 4] for k in range(0, len(s), 4))
                ),
            ),
            ("id_dashes", lambda s: f"{s[:6]}-{s[6:14]}-{s[14:]}"),
        ):
            chosen = self.pick(label, free)
            for i in np.flatnonzero(chosen):
                ids[i] = fn(ids[i])
            free &= ~chosen
        return ids

    def _phones(self, phones: np.ndarray) -> np.ndarray:
        phones = phones.copy()
        p = self.world.persons
        person = self.d.person
        landline = np.where(person >= 0, p.landline[np.maximum(person, 0)], "")
        mobile = _each(phones, lambda s: len(s) == 11 and s.isdigit())
        free = mobile.copy()
        chosen = self.pick("phone_landline", free & (landline != ""))
        phones[chosen] = landline[chosen]
        free &= ~chosen
        for label, fn in (
            ("phone_plus86", lambda s: ("+86 " if self.rng.random() < 0.5 else "+86") + s),
            ("phone_86dash", lambda s: "86-" + s),
            ("phone_spaces", lambda s: f"{s[:3]} {s[3:7]} {s[7:]}"),
        ):
            chosen = self.pick(label, free)
            for i in np.flatnonzero(chosen):
                phones[i] = fn(phones[i])
            free &= ~chosen
        return phones

    def _names(self, values: np.ndarray) -> np.ndarray:
        values = values.copy()
        p = self.world.persons
        person = self.d.person
        slen = np.where(person >= 0, _each(p.surname, len, int)[np.maximum(person, 0)], 1)
        free = values != ""
        keyed = np.char.add(slen.astype(str), values.astype(str)).astype(object)
        homophone_ok = _each(keyed, lambda v: len(v) > 1 and names.has_homophone(v[1:], int(v[0])))
        for label, fn, eligible in (
            ("name_homophone", names.homophone, homophone_ok),
            ("name_typo", names.typo, _each(values, lambda v: len(v) > 1)),
            ("name_space", names.stray_space, np.ones(self.n, dtype=bool)),
        ):
            chosen = self.pick(label, free & eligible)
            for i in np.flatnonzero(chosen):
                values[i] = fn(self.rng, values[i], int(slen[i]))
            free &= ~chosen
        return values

    def _duplicates(self, cols: dict[str, np.ndarray]) -> Rendered:
        stamps = self.d.stamps
        if self.n and not np.all(stamps[:-1] <= stamps[1:]):
            raise AssertionError(f"{self.feed.key}: rows not sorted by file stamp")
        clean = ~self.taken
        dup = self.pick("duplicate_row", clean)
        near_cols = NEAR_DUP_COLUMNS.get(self.feed.key, ())
        near = (
            self.pick("near_duplicate", clean & ~dup) if near_cols else np.zeros(self.n, dtype=bool)
        )
        # the labels so far belong to the originals; copies are labelled separately below
        self.labels["duplicate_row"][:] = False
        self.labels["near_duplicate"][:] = False
        order_labels = list(DEFECTS)
        text = np.full(self.n, "", dtype=object)
        for label in order_labels:
            m = self.labels[label]
            if m.any():
                text[m] = text[m] + label + ";"
        src = np.concatenate([np.arange(self.n), np.flatnonzero(dup), np.flatnonzero(near)])
        kind = np.concatenate(
            [np.zeros(self.n, int), np.ones(int(dup.sum()), int), np.full(int(near.sum()), 2)]
        )
        out = {k: v[src] for k, v in cols.items()}
        labels = text[src]
        copies = np.flatnonzero(kind > 0)
        for j in copies:
            labels[j] = labels[j] + ("duplicate_row;" if kind[j] == 1 else "near_duplicate;")
        for j in np.flatnonzero(kind == 2):
            c = near_cols[int(self.rng.integers(len(near_cols)))]
            col = self.feed.column(c)
            old = out[c][j]
            if col.allowed:
                options = [v for v in col.allowed if v != old]
                out[c][j] = options[int(self.rng.integers(len(options)))]
            elif col.type == "int":
                out[c][j] = str(int(old or 0) + int(self.rng.integers(1, 5)))
            else:
                out[c][j] = f"{float(old or 0) + float(self.rng.integers(1, 200)):.2f}"
        # a copy lands later in the same file
        sorted_stamps = stamps.astype(str)
        group_end = np.searchsorted(sorted_stamps, sorted_stamps, side="right")
        pos = np.arange(self.n, dtype=float)
        s = src[copies]
        u = self.rng.random(copies.size)
        copy_pos = s + 0.5 + u * (group_end[s] - 1 - s)
        all_pos = np.concatenate([pos, copy_pos])
        order = np.argsort(all_pos, kind="stable")
        labels = np.array([v[:-1] for v in labels[order]], dtype=object)
        return Rendered(
            draft=self.d,
            columns={k: v[order] for k, v in out.items()},
            stamps=stamps[src][order],
            person=self.d.person[src][order],
            labels=labels,
        )


def inject(
    draft: Draft, world: World, rates: DefectRates, rng: np.random.Generator, counts: Counts
) -> Rendered:
    """Apply defects at ``rates`` and format every value as the department exports it."""
    return _Injector(draft, world, rates, rng, counts).run()

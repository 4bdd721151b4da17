"""One builder per feed: clean rows drawn from the hidden world (defects come later).

Each builder returns a :class:`Draft`: typed columns (object arrays of str; numpy
datetime64 for date / datetime / month columns, NaT = blank), the file stamp of each
row and the person index behind each row (-1 = none).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from datahub.generate.config import SEASON_WEIGHT
from datahub.generate.world import World
from datahub.sources.contracts import (
    DISPUTE_STATUSES,
    FEEDS_BY_KEY,
    INCIDENT_CATEGORIES,
    PATROL_TEAM_TYPES,
    Feed,
)

NAT_S = np.datetime64("NaT", "s")
NAT_D = np.datetime64("NaT", "D")


@dataclass
class Draft:
    """Clean rows of one feed before defects and formatting."""

    feed: Feed
    columns: dict[str, np.ndarray]
    stamps: np.ndarray  # YYYYMMDD / YYYYMM per row
    person: np.ndarray  # person index per row, -1 = none

    def __len__(self) -> int:
        return len(self.stamps)


def _obj(values: object, n: int | None = None) -> np.ndarray:
    if n is not None:
        return np.full(n, values, dtype=object)
    return np.asarray(values, dtype=object)


def _blank_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = values.astype(object).copy()
    out[mask] = ""
    return out


def _seq(prefix: str, stamps: np.ndarray, width: int) -> np.ndarray:
    """Numbers like PREFIX + stamp + running number within the stamp (rows sorted by stamp)."""
    n = len(stamps)
    out = np.empty(n, dtype=object)
    counters: dict[str, int] = {}
    for i in range(n):
        k = counters.get(stamps[i], 0) + 1
        counters[stamps[i]] = k
        out[i] = f"{prefix}{stamps[i]}{k:0{width}d}"
    return out


def _phone_of(world: World, person: np.ndarray) -> np.ndarray:
    """A person's phone as they give it: the mobile, else the household landline."""
    p = world.persons
    mob = p.mobile[person]
    return np.where(mob != "", mob, p.landline[person]).astype(object)


def _stamp(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _days_in_month(world: World, month: str) -> list[dt.date]:
    return [d for d in world.config.days if d.strftime("%Y%m") == month]


def _adult_residents(world: World, min_age: int = 18, max_age: int = 120) -> np.ndarray:
    p = world.persons
    age = p.age(world.config.end)
    return np.flatnonzero((p.kind != "visitor") & (age >= min_age) & (age <= max_age))


# ------------------------------------------------------------------------ police
_CATEGORY_P = np.array([6, 15, 18, 1.5, 2, 25, 14, 4, 6, 0.5, 8], dtype=float)
_TOURIST_CATEGORIES = ("交通", "群众求助", "纠纷")
_REFINE: dict[str, tuple[str, ...]] = {
    "纠纷": ("治安", "刑事", "其他"),
    "治安": ("刑事", "纠纷"),
    "其他": ("群众求助", "投诉", "纠纷"),
    "群众求助": ("其他", "纠纷", "灾害事故"),
    "交通": ("治安", "其他"),
    "刑事": ("治安",),
    "举报": ("治安", "刑事"),
    "投诉": ("其他", "纠纷"),
    "火灾": ("灾害事故",),
    "灾害事故": ("群众求助",),
    "群体性事件": ("治安", "纠纷"),
}
_HOUR_W = np.array(
    [3, 2, 1.5, 1, 1, 1, 1.5, 3, 5, 6, 6.5, 6.5, 6, 6, 6, 6.5, 7, 7.5, 7.5, 7.5, 7, 6, 5, 4],
    dtype=float,
)
ARRIVAL_TARGET_S: dict[str, int] = {"重点部位": 60, "重点区域": 180, "一般区域": 300}
_ARRIVAL_MEET_P: dict[str, float] = {"重点部位": 0.55, "重点区域": 0.72, "一般区域": 0.80}


@dataclass
class Incidents:
    """The incidents behind both police event feeds."""

    draft: Draft
    category: np.ndarray
    caller: np.ndarray
    anchor: np.ndarray  # datetime64[s] when persons were recorded from


def build_incidents(world: World, rng: np.random.Generator) -> Incidents:
    """110 calls: seasonal volume, diurnal profile, 1-minute dispatch and 1/3/5-minute arrival."""
    cfg = world.config
    p = world.persons
    a = world.addresses
    days = cfg.days
    lam = np.array(
        [
            cfg.base_incidents_per_day * SEASON_WEIGHT[d.month] * (1.1 if d.weekday() >= 5 else 1.0)
            for d in days
        ]
    )
    counts = rng.poisson(lam)
    m = int(counts.sum())
    day_ix = np.repeat(np.arange(len(days)), counts)
    day0 = np.array([np.datetime64(d, "s") for d in days])
    secs = rng.choice(24, size=m, p=_HOUR_W / _HOUR_W.sum()) * 3600 + rng.integers(0, 3600, size=m)
    received = day0[day_ix] + secs.astype("timedelta64[s]")
    order = np.argsort(received, kind="stable")
    received = received[order]
    season = np.array([SEASON_WEIGHT[d.month] for d in days])[day_ix]

    # category: tourist season raises traffic, help requests and (tourism) disputes
    cats = np.array(INCIDENT_CATEGORIES, dtype=object)
    tourist = np.isin(cats, _TOURIST_CATEGORIES)
    category = np.empty(m, dtype=object)
    for s in np.unique(season):
        ix = np.flatnonzero(season == s)
        w = _CATEGORY_P * np.where(tourist, s, 1.0)
        category[ix] = rng.choice(cats, size=ix.size, p=w / w.sum())

    # callers: residents, and visitors more often in season; conflict-prone and key persons call more
    age = p.age(cfg.end)
    can_call = (age >= 14) & ((p.mobile != "") | (p.landline != ""))
    res = np.flatnonzero(can_call & (p.kind != "visitor"))
    vis = np.flatnonzero(can_call & (p.kind == "visitor"))
    w_res = 1.0 + 6.0 * p.conflict_prone[res] + 2.0 * (p.key_category[res] != "")
    caller = rng.choice(res, size=m, p=w_res / w_res.sum())
    is_vis = rng.random(m) < 0.10 * season
    if vis.size:
        caller[is_vis] = rng.choice(vis, size=int(is_vis.sum()))
    # place: the caller's home, a public place or a unit (scenic public places busier in season)
    place = rng.choice(3, size=m, p=[0.4, 0.4, 0.2])
    place[(place == 0) & (p.home[caller] < 0)] = 1
    public = np.flatnonzero(a.kind == "public")
    scenic = np.isin(a.station[public], ["金顶派出所"])
    units_ix = np.flatnonzero(a.kind == "unit")
    address = np.where(place == 0, p.home[caller], 0)
    for s in np.unique(season):
        ix = np.flatnonzero((season == s) & (place == 1))
        w = np.where(scenic, 3.0 * s, 1.0)
        address[ix] = rng.choice(public, size=ix.size, p=w / w.sum())
    ix = np.flatnonzero(place == 2)
    address[ix] = rng.choice(units_ix, size=ix.size)
    area_class = a.area_class[address]

    # timing shapes: dispatch within a minute ~86 %; arrival meets the 1/3/5 target by class
    no_dispatch = rng.random(m) < np.where(np.isin(category, ("投诉", "举报", "其他")), 0.10, 0.015)
    disp_s = np.where(
        rng.random(m) < 0.86, rng.uniform(8, 60, m), 60 + rng.lognormal(np.log(90), 0.8, m)
    )
    target = np.array([ARRIVAL_TARGET_S[c] for c in area_class])
    meet_p = np.array([_ARRIVAL_MEET_P[c] for c in area_class])
    meet = (rng.random(m) < meet_p) & (disp_s + 20 < target)
    total = np.where(
        meet,
        rng.uniform(0, 1, m) * (target - disp_s - 20) + disp_s + 20,
        target + rng.lognormal(np.log(240), 0.9, m),
    )
    total = np.maximum(total, disp_s + 20)
    no_arrival = no_dispatch | (rng.random(m) < 0.04)
    bins = np.array([[60, 1800], [1800, 3600], [3600, 7200], [7200, 14400], [14400, 43200]])
    b = rng.choice(5, size=m, p=[0.35, 0.22, 0.23, 0.12, 0.08])
    close_s = rng.uniform(bins[b, 0], bins[b, 1])
    close_s = np.where(no_arrival, close_s, np.maximum(close_s, total + 300))
    no_close = rng.random(m) < 0.02
    dispatched = received + disp_s.astype("timedelta64[s]")
    dispatched[no_dispatch] = NAT_S
    arrived = received + total.astype("timedelta64[s]")
    arrived[no_arrival] = NAT_S
    closed = received + close_s.astype("timedelta64[s]")
    closed[no_close] = NAT_S

    final = category.copy()
    refine = rng.random(m) < 0.15
    for i in np.flatnonzero(refine):
        options = _REFINE[category[i]]
        final[i] = options[int(rng.integers(len(options)))]
    final[no_close] = ""
    level = np.where(
        category == "刑事",
        rng.choice(
            np.array(["1", "2", "3", "4"], dtype=object), size=m, p=[0.05, 0.35, 0.45, 0.15]
        ),
        rng.choice(np.array(["2", "3", "4"], dtype=object), size=m, p=[0.05, 0.35, 0.60]),
    )
    level[category == "群体性事件"] = "2"
    channel = rng.choice(
        np.array(["电话", "短信", "微信", "现场"], dtype=object), size=m, p=[0.88, 0.03, 0.05, 0.04]
    )

    stamps = np.array([_stamp(d) for d in days], dtype=object)[day_ix]
    seq = np.arange(m) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    incident_no = np.char.add(
        np.char.add("J511181", stamps.astype(str)), np.char.zfill(seq.astype(str), 6)
    ).astype(object)
    caller_name = _blank_where(p.name[caller], rng.random(m) < 0.15)
    caller_id = _blank_where(p.id18[caller], rng.random(m) < np.where(is_vis, 0.25, 0.35))
    cols = {
        "incident_no": incident_no,
        "received_at": received,
        "dispatched_at": dispatched,
        "arrived_at": arrived,
        "closed_at": closed,
        "report_channel": channel,
        "call_category": category,
        "final_category": final,
        "incident_level": level,
        "address_code": a.code[address],
        "area_class": area_class,
        "station": a.station[address],
        "caller_name": caller_name,
        "caller_id_number": caller_id,
        "caller_phone": _phone_of(world, caller),
    }
    anchor = np.where(np.isnat(arrived), received + np.timedelta64(600, "s"), arrived)
    draft = Draft(FEEDS_BY_KEY["police.incidents"], cols, stamps, caller)
    return Incidents(draft, category, caller, anchor)


def build_incident_persons(world: World, rng: np.random.Generator, inc: Incidents) -> Draft:
    """Persons involved: dispute parties and suspects are often the conflict-prone or key persons."""
    p = world.persons
    cat = inc.category
    m = len(cat)
    two = np.isin(cat, ("纠纷", "刑事"))
    some = np.isin(cat, ("治安", "交通", "群体性事件"))
    k = np.where(two, rng.choice([1, 2, 3], size=m, p=[0.2, 0.65, 0.15]), 0)
    k = np.where(some, rng.choice([0, 1, 2], size=m, p=[0.4, 0.35, 0.25]), k)
    k = np.where(~two & ~some, rng.choice([0, 1], size=m, p=[0.85, 0.15]), k)
    inc_ix = np.repeat(np.arange(m), k)
    n = inc_ix.size
    seq = np.arange(n) - np.repeat(np.cumsum(k) - k, k) + 1
    c = cat[inc_ix]
    role = np.where(np.isin(c, ("纠纷", "交通", "群体性事件")), "当事人", "受害人").astype(object)
    suspect = np.isin(c, ("刑事", "治安")) & (seq == 1)
    role[suspect] = "嫌疑人"
    adults = _adult_residents(world, 16)
    tier = np.array([c[:1] for c in p.key_category[adults]])
    w = 1.0 + 15.0 * p.conflict_prone[adults] + 6.0 * np.isin(tier, ("A", "B"))
    person = rng.choice(adults, size=n, p=w / w.sum())
    # the caller is often one of the parties
    caller_party = (seq == 1) & ~suspect & (rng.random(n) < 0.5)
    person[caller_party] = inc.caller[inc_ix[caller_party]]
    # no one twice within an incident
    for i in range(1, n):
        if inc_ix[i] == inc_ix[i - 1] and person[i] == person[i - 1]:
            person[i] = adults[int(rng.integers(adults.size))]
    recorded = inc.anchor[inc_ix] + rng.integers(300, 5400, size=n).astype("timedelta64[s]")
    cols = {
        "incident_no": inc.draft.columns["incident_no"][inc_ix],
        "person_seq": seq.astype(str).astype(object),
        "person_role": role,
        "name": p.name[person],
        "id_number": _blank_where(p.id18[person], rng.random(n) < 0.15),
        "phone": _blank_where(_phone_of(world, person), rng.random(n) < 0.3),
        "recorded_at": recorded,
    }
    return Draft(FEEDS_BY_KEY["police.incident_persons"], cols, inc.draft.stamps[inc_ix], person)


def build_key_persons(world: World, rng: np.random.Generator) -> Draft:
    p = world.persons
    a = world.addresses
    person = np.flatnonzero(p.key_category != "")
    n = person.size
    cat = p.key_category[person]
    tier = np.array([c[0] for c in cat])
    level = np.where(tier == "A", "1", np.where(tier == "B", "2", "3")).astype(object)
    bump = rng.random(n) < 0.15
    level[bump] = rng.choice(np.array(["1", "2", "3"], dtype=object), size=int(bump.sum()))
    home = p.home[person]
    station = a.station[home]
    officer = np.array(
        [f"{(hash_station(s) * 7 + int(rng.integers(0, 6))) % 1000000:06d}" for s in station],
        dtype=object,
    )
    listed = np.datetime64(world.config.end, "D") - rng.integers(20, 12 * 365, size=n)
    listed = np.maximum(listed, p.birth[person] + 16 * 365)  # listed as an adult
    cols = {
        "kp_no": np.array([f"ZD511181{i + 1:06d}" for i in rng.permutation(n)], dtype=object),
        "name": p.name[person],
        "id_number": p.id18[person],
        "phone": _blank_where(p.mobile[person], rng.random(n) < 0.2),
        "category": cat,
        "control_level": level,
        "officer_no": officer,
        "station": station,
        "address_code": a.code[home],
        "listed_on": listed,
    }
    return _snapshot(world, "police.key_persons", cols, person)


def hash_station(station: str) -> int:
    """A stable small number per station (badge-number blocks); not Python's salted hash."""
    return sum(ord(ch) for ch in station) * 131


def build_sensors(world: World, rng: np.random.Generator) -> Draft:
    a = world.addresses
    grids = world.geo.grids
    rows_addr: list[int] = []
    by_grid: dict[str, list[int]] = {}
    for i in np.flatnonzero(np.isin(a.kind, ("public", "unit"))):
        by_grid.setdefault(a.grid[i], []).append(int(i))
    for g in grids:
        if rng.random() < 0.12 or g.code not in by_grid:  # blind spot
            continue
        k = 1 + rng.poisson(5 if g.urban else 1.5)
        cand = by_grid[g.code]
        rows_addr.extend(cand[int(j)] for j in rng.integers(0, len(cand), size=k))
    addr = np.array(rows_addr, dtype=int)
    n = addr.size
    types = rng.choice(
        np.array(["视频监控", "人脸识别", "车辆卡口"], dtype=object), size=n, p=[0.65, 0.2, 0.15]
    )
    type_code = {"视频监控": "131", "人脸识别": "132", "车辆卡口": "133"}
    sensor_id = np.array(
        [f"5111810000{type_code[t]}0{i + 1:06d}" for i, t in enumerate(types)], dtype=object
    )
    cols = {
        "sensor_id": sensor_id,
        "sensor_type": types,
        "address_code": a.code[addr],
        "grid_code": a.grid[addr],
        "longitude": np.char.mod("%.6f", a.lon[addr] + rng.normal(0, 0.0002, n)).astype(object),
        "latitude": np.char.mod("%.6f", a.lat[addr] + rng.normal(0, 0.0002, n)).astype(object),
        "installed_on": np.datetime64(world.config.end, "D") - rng.integers(30, 11 * 365, size=n),
        "status": rng.choice(
            np.array(["在用", "故障", "停用"], dtype=object), size=n, p=[0.9, 0.07, 0.03]
        ),
    }
    return _snapshot(world, "police.sensors", cols, np.full(n, -1))


# -------------------------------------------------------------------- government
def build_divisions(world: World, rng: np.random.Generator) -> Draft:
    d = world.geo.divisions
    cols = {
        "division_code": _obj([x.code for x in d]),
        "division_name": _obj([x.name for x in d]),
        "level": _obj([x.level for x in d]),
        "parent_code": _obj([x.parent for x in d]),
    }
    return _snapshot(world, "government.divisions", cols, np.full(len(d), -1))


def build_addresses_feed(world: World, rng: np.random.Generator) -> Draft:
    a = world.addresses
    n = len(a)
    cols = {
        "address_code": a.code,
        "address_text": a.text,
        "township_code": a.township,
        "village_code": a.village,
        "grid_code": a.grid,
        "address_level": a.level,
        "longitude": np.char.mod("%.6f", a.lon).astype(object),
        "latitude": np.char.mod("%.6f", a.lat).astype(object),
        "station": a.station,
        "in_use": np.where(a.in_use, "1", "0").astype(object),
    }
    order = np.argsort(a.code, kind="stable")
    return _snapshot(
        world, "government.addresses", {k: v[order] for k, v in cols.items()}, np.full(n, -1)
    )


def build_population(world: World, rng: np.random.Generator) -> Draft:
    p = world.persons
    a = world.addresses
    person = np.flatnonzero(p.kind != "visitor")
    person = person[np.argsort(a.code[p.home[person]], kind="stable")]
    n = person.size
    kind = p.kind[person]
    ptype = np.where(
        kind == "registered", "户籍", np.where(kind == "migrant", "流动", "境外")
    ).astype(object)
    reg = kind == "registered"
    age = p.age(world.config.end)[person]
    phone = _blank_where(p.mobile[person], rng.random(n) < 0.15)
    born_here = reg & (p.region[person] == "511181")
    moved_in = np.datetime64(world.config.end, "D") - rng.integers(60, 25 * 365, size=n)
    registered = np.where(
        born_here,
        p.birth[person] + rng.integers(5, 60, size=n),
        np.maximum(moved_in, p.birth[person] + 1),
    )
    arrived = p.arrived_on[person]
    registered = np.where(reg, registered, arrived + rng.integers(0, 20, size=n))
    del age
    cols = {
        "person_no": _obj([f"RK511181{i + 1:08d}" for i in range(n)]),
        "name": p.name[person],
        "id_number": p.id18[person],
        "phone": phone,
        "population_type": ptype,
        "address_code": a.code[p.home[person]],
        "household_no": _obj(
            [
                f"H511181{h + 1:07d}" if r else ""
                for h, r in zip(p.household[person], reg, strict=True)
            ]
        ),
        "relation": _blank_where(p.relation[person], ~reg),
        "migrant_reason": p.migrant_reason[person],
        "arrived_on": arrived,
        "registered_on": np.minimum(
            registered.astype("datetime64[D]"), np.datetime64(world.config.end, "D")
        ),
    }
    return _snapshot(world, "government.population", cols, person)


def build_houses(world: World, rng: np.random.Generator) -> Draft:
    p = world.persons
    a = world.addresses
    n = world.n_households + world.n_vacant
    # the head of each household (first member)
    head = np.full(n, -1)
    size = np.zeros(n, dtype=int)
    kind = np.full(n, "vacant", dtype=object)
    for i in range(len(p)):
        h = int(p.household[i])
        if h >= 0:
            size[h] += 1
            if head[h] < 0:
                head[h] = i
                kind[h] = p.kind[i]
    landlords = _adult_residents(world, 30)
    landlords = landlords[p.kind[landlords] == "registered"]
    # a few landlords own many rentals
    lw = rng.pareto(1.5, size=landlords.size) + 1
    owner = head.copy()
    rented = kind != "registered"
    owner[rented] = rng.choice(landlords, size=int(rented.sum()), p=lw / lw.sum())
    use = np.where(kind == "registered", "自住", np.where(kind == "vacant", "空置", "出租")).astype(
        object
    )
    shop = (kind == "registered") & (rng.random(n) < 0.05)
    use[shop] = "经营"
    rooms = rng.integers(1, 6, size=n)
    filing = _obj([f"ZL{2019 + int(rng.integers(0, 8))}{i + 1:06d}" for i in range(n)])
    filing[(use != "出租") | (rng.random(n) < 0.2)] = ""
    cols = {
        "house_no": _obj([f"FW511181{i + 1:08d}" for i in range(n)]),
        "address_code": a.code[:n],
        "house_use": use,
        "area_m2": np.char.mod("%.1f", rng.uniform(35, 180, size=n)).astype(object),
        "rooms": rooms.astype(str).astype(object),
        "occupants": size.astype(str).astype(object),
        "owner_name": p.name[owner],
        "owner_id_number": _blank_where(p.id18[owner], rng.random(n) < 0.1),
        "owner_phone": _blank_where(_phone_of(world, owner), rng.random(n) < 0.2),
        "rental_filing_no": filing,
    }
    return _snapshot(world, "government.houses", cols, owner)


def build_units(world: World, rng: np.random.Generator) -> Draft:
    p = world.persons
    u = world.units
    n = len(u)
    rep = u.legal_rep
    cols = {
        "credit_code": u.credit_code,
        "unit_name": u.name,
        "unit_category": u.category,
        "address_code": world.addresses.code[u.address],
        "legal_rep_name": p.name[rep],
        "legal_rep_id_number": _blank_where(p.id18[rep], rng.random(n) < 0.05),
        "legal_rep_phone": _blank_where(p.mobile[rep], rng.random(n) < 0.1),
        "registered_on": u.registered_on,
        "employees": u.employees.astype(str).astype(object),
    }
    return _snapshot(world, "government.units", cols, rep)


# ---------------------------------------------------------------- social security
def _retired(world: World, person: np.ndarray) -> np.ndarray:
    age = world.persons.age(world.config.end)[person]
    return np.where(world.persons.male[person], age >= 60, age >= 55)


@dataclass
class Insured:
    draft: Draft
    pensioner: np.ndarray  # person indices drawing a pension
    unemployed: np.ndarray
    injured: np.ndarray
    insured: np.ndarray


def build_insured(world: World, rng: np.random.Generator) -> Insured:
    p = world.persons
    u = world.units
    adults = _adult_residents(world, 16)
    p_ins = np.where(p.kind[adults] == "registered", 0.8, 0.5)
    insured = adults[rng.random(adults.size) < p_ins]
    retired = _retired(world, insured)
    employee = ~retired & (rng.random(insured.size) < 0.6)
    civil = employee & (rng.random(insured.size) < 0.08)
    rows: list[tuple[int, str, int]] = []  # person, type, employer unit (-1)
    employer = rng.integers(0, len(u), size=insured.size)
    for i, who in enumerate(insured):
        if retired[i]:
            types = ["120" if rng.random() < 0.1 else "110", "310" if rng.random() < 0.6 else "390"]
            employer_ix = -1
        elif employee[i]:
            types = ["120" if civil[i] else "110", "310", "210", "410"]
            if not p.male[who] or rng.random() < 0.5:
                types.append("510")
            employer_ix = int(employer[i])
        else:
            types = ["390"]
            employer_ix = -1
        rows.extend((int(who), t, employer_ix) for t in types)
    person = np.array([r[0] for r in rows])
    n = person.size
    itype = _obj([r[1] for r in rows])
    emp = np.array([r[2] for r in rows])
    card = {int(x): f"S{511181}{k + 1:09d}" for k, x in enumerate(rng.permutation(insured))}
    age = p.age(world.config.end)[person]
    first_age = np.minimum(age, rng.integers(18, 35, size=n))
    first = (np.datetime64(world.config.end, "M") - ((age - first_age) * 12).astype(int)).astype(
        "datetime64[M]"
    )
    first = np.maximum(first, np.datetime64("1995-01", "M"))
    status = rng.choice(np.array(["1", "2", "3"], dtype=object), size=n, p=[0.86, 0.1, 0.04])
    has_emp = emp >= 0
    cols = {
        "card_no": _obj([card[int(x)] for x in person]),
        "id_number": p.id18[person],
        "name": p.name[person],
        "phone": _blank_where(p.mobile[person], rng.random(n) < 0.25),
        "insurance_type": itype,
        "status": status,
        "employer_credit_code": np.where(has_emp, u.credit_code[np.maximum(emp, 0)], "").astype(
            object
        ),
        "employer_name": np.where(has_emp, u.name[np.maximum(emp, 0)], "").astype(object),
        "first_enrolled": first,
    }
    draft = _snapshot(world, "social_security.insured", cols, person)
    pension = np.isin(itype, ("110", "120")) & _retired(world, person) & (status == "1")
    unemployed = (itype == "210") & (status == "2") & (rng.random(n) < 0.3)
    injured = (itype == "410") & (rng.random(n) < 0.01)
    return Insured(draft, person[pension], person[unemployed], person[injured], insured)


def build_benefits(world: World, rng: np.random.Generator, ins: Insured) -> Draft:
    p = world.persons
    hardship = np.flatnonzero(p.hardship)
    base_pension = {int(x): float(rng.uniform(1600, 4800)) for x in ins.pensioner}
    base_dibao = {int(x): float(rng.choice([550, 620, 680, 760])) for x in hardship}
    rows: list[tuple[str, int, str, str, float, dt.date]] = []
    for month in world.config.months:
        days = _days_in_month(world, month)
        y, mo = int(month[:4]), int(month[4:])
        prev = f"{y - 1}12" if mo == 1 else f"{y}{mo - 1:02d}"

        def pay_day(lo: int, hi: int, _days: list[dt.date] = days) -> dt.date:
            d = dt.date(_days[0].year, _days[0].month, int(rng.integers(lo, hi)))
            return min(d, _days[-1])

        for x in ins.pensioner:
            rows.append(
                (month, int(x), "养老金", month, round(base_pension[int(x)], 2), pay_day(10, 16))
            )
        for x in ins.unemployed:
            rows.append(
                (
                    month,
                    int(x),
                    "失业金",
                    month,
                    round(float(rng.uniform(1400, 1700)), 2),
                    pay_day(15, 21),
                )
            )
        for x in hardship:
            rows.append((month, int(x), "低保金", month, base_dibao[int(x)], pay_day(5, 11)))
        for x in ins.injured:
            rows.append(
                (
                    month,
                    int(x),
                    "工伤待遇",
                    month,
                    round(float(rng.uniform(2000, 5000)), 2),
                    pay_day(15, 21),
                )
            )
        med = ins.insured[rng.random(ins.insured.size) < 0.02]
        for x in med:
            period = prev if rng.random() < 0.3 else month
            rows.append(
                (
                    month,
                    int(x),
                    "医疗报销",
                    period,
                    round(float(rng.lognormal(6.5, 1.0)), 2),
                    pay_day(1, 28),
                )
            )
    stamps = _obj([r[0] for r in rows])
    person = np.array([r[1] for r in rows], dtype=int)
    n = person.size
    cols = {
        "payment_no": _seq("FF", stamps, 7),
        "id_number": p.id18[person],
        "name": p.name[person],
        "benefit_type": _obj([r[2] for r in rows]),
        "period": np.array([f"{r[3][:4]}-{r[3][4:]}" for r in rows], dtype="datetime64[M]"),
        "amount": _obj([f"{r[4]:.2f}" for r in rows]),
        "paid_on": np.array([r[5] for r in rows], dtype="datetime64[D]"),
    }
    del n
    return Draft(FEEDS_BY_KEY["social_security.benefits"], cols, stamps, person)


# --------------------------------------------------------------------- community
def build_grid_members(world: World, rng: np.random.Generator) -> Draft:
    p = world.persons
    age = p.age(world.config.end)
    ok = (p.kind == "registered") & (age >= 23) & (age <= 58) & (p.mobile != "")
    by_grid: dict[str, list[int]] = {}
    for i in np.flatnonzero(ok):
        by_grid.setdefault(world.person_grid[i], []).append(int(i))
    pool_all = np.flatnonzero(ok)
    used: set[int] = set()
    rows: list[tuple[int, str, str]] = []
    for g in world.geo.grids:
        n_members = 1 + int(rng.random() < (0.35 if g.urban else 0.1))
        for j in range(n_members):
            cand = [x for x in by_grid.get(g.code, []) if x not in used]
            if not cand:
                spare = [int(x) for x in pool_all if int(x) not in used]
                # a small population: one person may serve several grids (part-time)
                cand = spare or [int(x) for x in pool_all]
            x = cand[int(rng.integers(len(cand)))]
            used.add(x)
            mtype = "专职" if (g.urban and j == 0) or rng.random() < 0.2 else "兼职"
            rows.append((x, g.code, mtype))
    person = np.array([r[0] for r in rows])
    n = person.size
    member_no = _obj([f"WGY{i + 1:06d}" for i in range(n)])
    for k, (_, gcode, _) in enumerate(rows):
        world.member_of_grid.setdefault(gcode, []).append(member_no[k])
    cols = {
        "member_no": member_no,
        "name": p.name[person],
        "phone": p.mobile[person],
        "grid_code": _obj([r[1] for r in rows]),
        "member_type": _obj([r[2] for r in rows]),
        "started_on": np.datetime64(world.config.end, "D") - rng.integers(30, 9 * 365, size=n),
    }
    return _snapshot(world, "community.grid_members", cols, person)


_URBAN_DISPUTES = np.array([3, 5, 3, 2, 0.3, 0.5, 4, 1, 2, 0.2])
_RURAL_DISPUTES = np.array([3, 5, 2, 1.5, 4, 1.5, 0.2, 0.5, 1.5, 2])


@dataclass
class Disputes:
    disputes: Draft
    parties: Draft


def build_disputes(world: World, rng: np.random.Generator) -> Disputes:
    """Disputes with parties; conflict-prone persons come back again and again."""
    cfg = world.config
    p = world.persons
    a = world.addresses
    residents = _adult_residents(world, 18)
    residents = residents[p.kind[residents] != "foreign"]
    by_village: dict[str, list[int]] = {}
    for x in residents:
        by_village.setdefault(a.village[p.home[x]], []).append(int(x))
    n_days = len(cfg.days)
    # repeated disputes: each conflict-prone person starts 1–4 disputes over the window
    firsts: list[int] = []
    for x in np.flatnonzero(p.conflict_prone):
        firsts.extend([int(x)] * int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.2, 0.15])))
    n_other = max(0, int(rng.poisson(cfg.persons / 100 * n_days / 30)) - len(firsts))
    firsts.extend(int(x) for x in rng.choice(residents, size=n_other))
    firsts_a = np.array(firsts, dtype=int)
    n = firsts_a.size
    found = np.array([np.datetime64(d, "D") for d in cfg.days])[rng.integers(0, n_days, size=n)]
    order = np.argsort(found, kind="stable")
    firsts_a = firsts_a[order]
    found = found[order]
    stamps = _obj([str(d).replace("-", "")[:6] for d in found])
    address = p.home[firsts_a]
    urban = a.urban[address]
    types = np.empty(n, dtype=object)
    from datahub.sources.contracts import DISPUTE_TYPES

    dtypes = np.array(DISPUTE_TYPES, dtype=object)
    types[urban] = rng.choice(
        dtypes, size=int(urban.sum()), p=_URBAN_DISPUTES / _URBAN_DISPUTES.sum()
    )
    types[~urban] = rng.choice(
        dtypes, size=int((~urban).sum()), p=_RURAL_DISPUTES / _RURAL_DISPUTES.sum()
    )
    conflict = p.conflict_prone[firsts_a]
    risk = np.where(
        conflict,
        rng.choice(np.array(["高", "中", "低"], dtype=object), size=n, p=[0.3, 0.45, 0.25]),
        rng.choice(np.array(["高", "中", "低"], dtype=object), size=n, p=[0.06, 0.29, 0.65]),
    )
    end = np.datetime64(cfg.end, "D")
    age_days = (end - found).astype(int)
    resolved_on = found + rng.integers(1, 31, size=n)
    resolved = (rng.random(n) < np.where(age_days > 20, 0.75, 0.3)) & (resolved_on <= end)
    resolved_on = np.where(resolved, resolved_on, NAT_D)
    open_status = np.array(DISPUTE_STATUSES[:-1], dtype=object)
    status = np.where(
        resolved, "办结", rng.choice(open_status, size=n, p=[0.3, 0.35, 0.15, 0.1, 0.1])
    ).astype(object)
    grid = a.grid[address]
    member = _obj([_member(world, rng, g) for g in grid])
    dispute_no = _seq("MD511181", stamps, 5)
    cols = {
        "dispute_no": dispute_no,
        "found_on": found,
        "address_code": a.code[address],
        "grid_code": grid,
        "dispute_type": types,
        "risk_level": risk,
        "status": status,
        "resolved_on": resolved_on,
        "member_no": member,
    }
    disputes = Draft(FEEDS_BY_KEY["community.disputes"], cols, stamps, np.full(n, -1))
    # parties: the first party, a neighbour (same village), sometimes a third
    prow: list[tuple[int, int, int]] = []  # dispute, seq, person
    for i in range(n):
        first = int(firsts_a[i])
        prow.append((i, 1, first))
        neighbours = by_village.get(a.village[address[i]], [])
        k = 2 if rng.random() < 0.8 else 3
        chosen = {first}
        for s in range(2, k + 1):
            for _ in range(10):
                other = (
                    neighbours[int(rng.integers(len(neighbours)))]
                    if neighbours and rng.random() < 0.85
                    else int(residents[int(rng.integers(residents.size))])
                )
                if other not in chosen:
                    break
            chosen.add(other)
            prow.append((i, s, other))
    d_ix = np.array([r[0] for r in prow])
    person = np.array([r[2] for r in prow])
    m = person.size
    pcols = {
        "dispute_no": dispute_no[d_ix],
        "party_seq": _obj([str(r[1]) for r in prow]),
        "name": p.name[person],
        "phone": _blank_where(_phone_of(world, person), rng.random(m) < 0.2),
        "id_number": _blank_where(p.id18[person], rng.random(m) < 0.65),
    }
    parties = Draft(FEEDS_BY_KEY["community.dispute_parties"], pcols, stamps[d_ix], person)
    return Disputes(disputes, parties)


def _member(world: World, rng: np.random.Generator, grid: str) -> str:
    members = world.member_of_grid.get(grid)
    if not members:
        all_members = sorted(m for ms in world.member_of_grid.values() for m in ms)
        return all_members[int(rng.integers(len(all_members)))]
    return members[int(rng.integers(len(members)))]


def build_visits(world: World, rng: np.random.Generator) -> Draft:
    cfg = world.config
    p = world.persons
    a = world.addresses
    residents = _adult_residents(world, 18)
    key = p.key_category[residents] != ""
    w = (
        1.0
        + 25.0 * key
        + 15.0 * p.lives_alone[residents]
        + 10.0 * p.conflict_prone[residents]
        + 3.0 * (p.kind[residents] != "registered")
    )
    n_days = len(cfg.days)
    n = int(rng.poisson(cfg.persons / 12 * n_days / 30))
    person = rng.choice(residents, size=n, p=w / w.sum())
    visited = np.sort(
        np.array([np.datetime64(d, "D") for d in cfg.days])[rng.integers(0, n_days, size=n)]
    )
    purpose = rng.choice(
        np.array(
            ["重点人员走访", "独居老人关爱", "矛盾纠纷回访", "出租房屋检查", "流动人口登记"],
            dtype=object,
        ),
        size=n,
        p=[0.1, 0.15, 0.25, 0.25, 0.25],
    )
    purpose[p.kind[person] == "registered"] = "矛盾纠纷回访"
    purpose[p.lives_alone[person]] = "独居老人关爱"
    purpose[p.key_category[person] != ""] = "重点人员走访"
    mig = p.kind[person] != "registered"
    purpose[mig] = np.where(rng.random(int(mig.sum())) < 0.5, "出租房屋检查", "流动人口登记")
    stamps = _obj([str(d).replace("-", "")[:6] for d in visited])
    home = p.home[person]
    cols = {
        "visit_no": _seq("ZF511181", stamps, 6),
        "visited_on": visited,
        "member_no": _obj([_member(world, rng, g) for g in a.grid[home]]),
        "purpose": purpose,
        "address_code": a.code[home],
        "name": p.name[person],
        "phone": _blank_where(_phone_of(world, person), rng.random(n) < 0.3),
        "id_number": _blank_where(p.id18[person], rng.random(n) < 0.75),
    }
    return Draft(FEEDS_BY_KEY["community.visits"], cols, stamps, person)


def build_patrol_teams(world: World, rng: np.random.Generator) -> Draft:
    p = world.persons
    age = p.age(world.config.end)
    ok = (p.kind == "registered") & (age >= 40) & (age <= 72)
    by_grid: dict[str, list[int]] = {}
    for i in np.flatnonzero(ok):
        by_grid.setdefault(world.person_grid[i], []).append(int(i))
    pool = np.flatnonzero(ok)
    rows: list[tuple[str, int]] = []
    for g in world.geo.grids:
        if rng.random() < 0.5:
            cand = by_grid.get(g.code) or [int(x) for x in pool]
            rows.append((g.code, cand[int(rng.integers(len(cand)))]))
    person = np.array([r[1] for r in rows])
    n = person.size
    cols = {
        "team_no": _obj([f"QF511181{i + 1:05d}" for i in range(n)]),
        "team_type": rng.choice(
            np.array(PATROL_TEAM_TYPES, dtype=object), size=n, p=[0.3, 0.45, 0.25]
        ),
        "grid_code": _obj([r[0] for r in rows]),
        "members": rng.integers(5, 41, size=n).astype(str).astype(object),
        "leader_name": p.name[person],
        "leader_phone": _blank_where(_phone_of(world, person), rng.random(n) < 0.1),
        "founded_on": np.datetime64(world.config.end, "D") - rng.integers(60, 12 * 365, size=n),
    }
    return _snapshot(world, "community.patrol_teams", cols, person)


def _snapshot(world: World, key: str, cols: dict[str, np.ndarray], person: np.ndarray) -> Draft:
    n = len(next(iter(cols.values())))
    return Draft(
        FEEDS_BY_KEY[key], cols, _obj(_stamp(world.config.end), n), np.asarray(person, dtype=int)
    )


Builder = Callable[[World, np.random.Generator], Draft]


def build_all(world: World, rng_for: Callable[[str], np.random.Generator]) -> list[Draft]:
    """Every feed's draft, in contract order. ``rng_for(key)`` gives each feed its own stream."""
    drafts: dict[str, Draft] = {}
    inc = build_incidents(world, rng_for("police.incidents"))
    drafts["police.incidents"] = inc.draft
    drafts["police.incident_persons"] = build_incident_persons(
        world, rng_for("police.incident_persons"), inc
    )
    drafts["police.key_persons"] = build_key_persons(world, rng_for("police.key_persons"))
    drafts["police.sensors"] = build_sensors(world, rng_for("police.sensors"))
    drafts["government.divisions"] = build_divisions(world, rng_for("government.divisions"))
    drafts["government.addresses"] = build_addresses_feed(world, rng_for("government.addresses"))
    drafts["government.population"] = build_population(world, rng_for("government.population"))
    drafts["government.houses"] = build_houses(world, rng_for("government.houses"))
    drafts["government.units"] = build_units(world, rng_for("government.units"))
    ins = build_insured(world, rng_for("social_security.insured"))
    drafts["social_security.insured"] = ins.draft
    drafts["social_security.benefits"] = build_benefits(
        world, rng_for("social_security.benefits"), ins
    )
    drafts["community.grid_members"] = build_grid_members(world, rng_for("community.grid_members"))
    dis = build_disputes(world, rng_for("community.disputes"))
    drafts["community.disputes"] = dis.disputes
    drafts["community.dispute_parties"] = dis.parties
    drafts["community.visits"] = build_visits(world, rng_for("community.visits"))
    drafts["community.patrol_teams"] = build_patrol_teams(world, rng_for("community.patrol_teams"))
    from datahub.sources.contracts import FEEDS

    return [drafts[f.key] for f in FEEDS]

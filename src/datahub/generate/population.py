"""The hidden population: one list of persons behind every department's records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from datahub.generate import names
from datahub.identifiers import MOBILE_PREFIXES, id_check_char

_SICHUAN_OTHER = (
    "511102",
    "511111",
    "511112",
    "511123",
    "511124",
    "511126",
    "511129",
    "510104",
    "510107",
    "510108",
    "511402",
    "511502",
    "510722",
    "511302",
)
_OUT_OF_PROVINCE = (
    "500101",
    "500103",
    "530102",
    "520102",
    "420106",
    "430102",
    "610113",
    "620102",
    "410105",
    "330106",
    "440106",
    "350102",
    "110105",
    "310115",
    "370102",
    "320106",
)
_FOREIGN_PREFIX = ("951840", "951392", "951410", "951276", "951250", "951826")
MIGRANT_REASONS_P = (
    ("务工", 0.42),
    ("经商", 0.16),
    ("务农", 0.05),
    ("学习培训", 0.05),
    ("婚嫁", 0.07),
    ("随迁", 0.08),
    ("治病疗养", 0.02),
    ("投靠亲友", 0.07),
    ("旅游观光", 0.03),
    ("其他", 0.05),
)
KEY_CATEGORY_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("A-严重刑事前科", 8),
    ("A-涉毒", 10),
    ("A-肇事肇祸精神病", 8),
    ("B-刑满释放", 15),
    ("B-社区矫正", 12),
    ("B-涉枪涉爆", 3),
    ("C-流动人口重点", 12),
    ("C-信访", 10),
    ("C-独居老人", 12),
    ("C-生活困难", 10),
)
_HH_SIZE_P = np.array([0.16, 0.28, 0.26, 0.18, 0.12])


@dataclass
class Persons:
    """Parallel arrays, index = person index; ``pid`` is the ground-truth person id."""

    pid: np.ndarray
    kind: np.ndarray  # registered / migrant / foreign / visitor
    male: np.ndarray
    birth: np.ndarray  # datetime64[D]
    region: np.ndarray
    id18: np.ndarray
    surname: np.ndarray
    name: np.ndarray
    mobile: np.ndarray  # '' when none
    landline: np.ndarray  # household landline, '' when none
    home: np.ndarray  # address index, -1 for visitors
    household: np.ndarray  # household index, -1 for visitors
    relation: np.ndarray
    migrant_reason: np.ndarray
    arrived_on: np.ndarray  # datetime64[D], NaT unless migrant/foreign
    key_category: np.ndarray  # '' unless a key person
    conflict_prone: np.ndarray  # repeated disputes and police calls (民转刑 warning sign)
    hardship: np.ndarray  # receives 低保
    lives_alone: np.ndarray

    def __len__(self) -> int:
        return len(self.pid)

    def age(self, on: dt.date) -> np.ndarray:
        days = (np.datetime64(on, "D") - self.birth).astype(int)
        return days // 365.25

    @property
    def id15(self) -> np.ndarray:
        """Old 15-digit form for people born 19xx (Chinese IDs only), '' otherwise."""
        return np.array(
            [s[:6] + s[8:17] if s[6:8] == "19" and s[0] != "9" else "" for s in self.id18],
            dtype=object,
        )


@dataclass
class Household:
    members: list[tuple[int, bool, str]]  # (age, male, relation)
    kind: str


def _household(rng: np.random.Generator, kind: str) -> Household:
    if kind == "migrant":
        size = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
        head_age = int(rng.integers(19, 56))
    else:
        size = int(rng.choice(np.arange(1, 6), p=_HH_SIZE_P))
        head_age = int(np.clip(rng.normal(52, 15), 22, 92))
    head_male = bool(rng.random() < 0.7)
    members = [(head_age, head_male, "户主")]
    if size >= 2:
        members.append(
            (int(np.clip(head_age + rng.integers(-6, 5), 20, 95)), not head_male, "配偶")
        )
    n_parent = 0
    for _ in range(size - len(members)):
        if head_age < 55 and n_parent < 2 and rng.random() < 0.3:
            n_parent += 1
            father = n_parent == 1
            parent_age = head_age + int(rng.integers(22, 33))
            members.append((parent_age, father, "父亲" if father else "母亲"))
            continue
        child_age = head_age - int(rng.integers(22, 36))
        if child_age < 0:
            child_age = int(rng.integers(0, 3))
        male = bool(rng.random() < 0.52)
        if head_age > 60 and rng.random() < 0.4:
            members.append((max(0, child_age - 26), male, "孙子" if male else "孙女"))
        else:
            members.append((child_age, male, "子" if male else "女"))
    return Household(members, kind)


def _unique_ids(
    rng: np.random.Generator, region: np.ndarray, birth: np.ndarray, male: np.ndarray
) -> np.ndarray:
    ymd = np.datetime_as_string(birth, unit="D")
    seen: set[str] = set()
    out = np.empty(len(region), dtype=object)
    for i in range(len(region)):
        while True:
            seq = int(rng.integers(0, 500)) * 2 + (1 if male[i] else 0)
            first17 = f"{region[i]}{ymd[i].replace('-', '')}{seq:03d}"
            if first17 not in seen:
                seen.add(first17)
                out[i] = first17 + id_check_char(first17)
                break
    return out


def _mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    carriers = list(MOBILE_PREFIXES)
    carrier_p = np.array([0.6, 0.2, 0.18, 0.02])
    seen: set[str] = set()
    out = np.empty(n, dtype=object)
    c = rng.choice(len(carriers), size=n, p=carrier_p)
    for i in range(n):
        prefixes = MOBILE_PREFIXES[carriers[int(c[i])]]
        while True:
            m = prefixes[int(rng.integers(len(prefixes)))] + f"{int(rng.integers(0, 10**8)):08d}"
            if m not in seen:
                seen.add(m)
                out[i] = m
                break
    return out


def build_persons(rng: np.random.Generator, n: int, as_of: dt.date) -> tuple[Persons, int]:
    """Draw ``n`` persons; returns them and the number of households (each needs an address).

    Households (registered first, then migrant, then foreign singles) are numbered 0..H-1;
    the caller gives household ``h`` the residential address ``h``.
    """
    n_reg = round(n * 0.80)
    n_mig = round(n * 0.11)
    n_for = max(2, round(n * 0.004))
    n_vis = n - n_reg - n_mig - n_for
    ages: list[int] = []
    male: list[bool] = []
    rel: list[str] = []
    kind: list[str] = []
    hh: list[int] = []
    h = 0
    for k, target in (("registered", n_reg), ("migrant", n_mig)):
        count = 0
        while count < target:
            house = _household(rng, k)
            for age, m, r in house.members[: target - count]:
                ages.append(age)
                male.append(m)
                rel.append(r)
                kind.append(k)
                hh.append(h)
                count += 1
            h += 1
    for _ in range(n_for):
        ages.append(int(rng.integers(25, 61)))
        male.append(bool(rng.random() < 0.6))
        rel.append("户主")
        kind.append("foreign")
        hh.append(h)
        h += 1
    for _ in range(n_vis):
        ages.append(int(rng.integers(16, 76)))
        male.append(bool(rng.random() < 0.5))
        rel.append("")
        kind.append("visitor")
        hh.append(-1)
    n_households = h
    age_a = np.array(ages)
    male_a = np.array(male)
    kind_a = np.array(kind, dtype=object)
    hh_a = np.array(hh)
    end = np.datetime64(as_of, "D")
    birth = end - (age_a * 365.25).astype(int) - rng.integers(1, 365, size=n)
    region = np.empty(n, dtype=object)
    reg = kind_a == "registered"
    region[reg] = np.where(
        rng.random(int(reg.sum())) < 0.85,
        "511181",
        rng.choice(np.array(_SICHUAN_OTHER, dtype=object), size=int(reg.sum())),
    )
    for k, p_sc in (("migrant", 0.6), ("visitor", 0.4)):
        m = kind_a == k
        region[m] = np.where(
            rng.random(int(m.sum())) < p_sc,
            rng.choice(np.array(_SICHUAN_OTHER, dtype=object), size=int(m.sum())),
            rng.choice(np.array(_OUT_OF_PROVINCE, dtype=object), size=int(m.sum())),
        )
    f = kind_a == "foreign"
    region[f] = rng.choice(np.array(_FOREIGN_PREFIX, dtype=object), size=int(f.sum()))
    id18 = _unique_ids(rng, region, birth, male_a)

    surname = names.surnames(rng, n)
    # children and grandchildren carry the family surname (the father's)
    family: dict[int, str] = {}
    for i in range(n):
        if hh_a[i] >= 0 and ((rel[i] == "户主" and male_a[i]) or (rel[i] == "配偶" and male_a[i])):
            family[int(hh_a[i])] = surname[i]
    for i in range(n):
        if rel[i] in ("子", "女", "孙子", "孙女", "父亲") and int(hh_a[i]) in family:
            surname[i] = family[int(hh_a[i])]
    birth_year = birth.astype("datetime64[Y]").astype(int) + 1970
    given = names.given_names(rng, birth_year, male_a)
    name = surname + given

    has_mobile = (age_a >= 13) & (rng.random(n) < np.where(age_a > 75, 0.7, 0.97))
    mobile = np.full(n, "", dtype=object)
    mobile[has_mobile] = _mobiles(rng, int(has_mobile.sum()))
    landline = np.full(n, "", dtype=object)
    hh_line: dict[int, str] = {}
    line_seen: set[str] = set()
    for j in np.flatnonzero(reg):
        hid = int(hh_a[j])
        if hid not in hh_line:
            line = ""
            if rng.random() < 0.3:
                while True:
                    line = f"0833-5{int(rng.integers(0, 10**6)):06d}"
                    if line not in line_seen:
                        line_seen.add(line)
                        break
            hh_line[hid] = line
        landline[j] = hh_line[hid]

    migrant_reason = np.full(n, "", dtype=object)
    mig = kind_a == "migrant"
    labels, p = zip(*MIGRANT_REASONS_P, strict=True)
    migrant_reason[mig] = rng.choice(
        np.array(labels, dtype=object), size=int(mig.sum()), p=np.array(p)
    )
    migrant_reason[f] = rng.choice(
        np.array(["务工", "经商", "学习培训", "婚嫁"], dtype=object), size=int(f.sum())
    )
    arrived = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    mf = mig | f
    arrived[mf] = end - rng.integers(30, 3650, size=int(mf.sum()))
    # adults came on their own; children with their parents (never before birth)
    arrived[mf] = np.maximum(arrived[mf], np.minimum(birth[mf] + 16 * 365, end - 30))
    arrived[mf] = np.maximum(arrived[mf], birth[mf] + 1)

    sizes = np.bincount(hh_a[hh_a >= 0], minlength=n_households)
    lives_alone = (hh_a >= 0) & (age_a >= 70) & (sizes[np.maximum(hh_a, 0)] == 1)
    adult_res = (age_a >= 18) & (kind_a != "visitor")
    key = _key_persons(rng, n, age_a, kind_a, adult_res, lives_alone)
    # conflict-prone: mostly men aged 41–60 (domain notes: 民转刑 profile)
    w = adult_res * (np.where(male_a, 3.0, 1.0) * np.where((age_a >= 41) & (age_a <= 60), 2.0, 1.0))
    n_conf = max(5, round(n * 0.025))
    conflict = np.zeros(n, dtype=bool)
    conflict[rng.choice(n, size=n_conf, replace=False, p=w / w.sum())] = True
    hardship = (key == "C-生活困难") | (adult_res & (rng.random(n) < 0.025))

    width = max(6, len(str(n)))
    pid = np.array([f"P{i + 1:0{width}d}" for i in range(n)], dtype=object)
    relation = np.array(rel, dtype=object)
    return (
        Persons(
            pid=pid,
            kind=kind_a,
            male=male_a,
            birth=birth,
            region=region,
            id18=id18,
            surname=surname,
            name=name,
            mobile=mobile,
            landline=landline,
            home=hh_a.copy(),
            household=hh_a,
            relation=relation,
            migrant_reason=migrant_reason,
            arrived_on=arrived,
            key_category=key,
            conflict_prone=conflict,
            hardship=hardship,
            lives_alone=lives_alone,
        ),
        n_households,
    )


def _key_persons(
    rng: np.random.Generator,
    n: int,
    age: np.ndarray,
    kind: np.ndarray,
    adult: np.ndarray,
    alone: np.ndarray,
) -> np.ndarray:
    out = np.full(n, "", dtype=object)
    n_key = max(10, round(n * 0.015))
    cats, w = zip(*KEY_CATEGORY_WEIGHTS, strict=True)
    wa = np.array(w, dtype=float)
    drawn = rng.choice(len(cats), size=n_key, p=wa / wa.sum())
    for c in drawn:
        cat = cats[int(c)]
        if cat == "C-流动人口重点":
            pool = adult & (kind == "migrant")
        elif cat == "C-独居老人":
            pool = alone.copy()
        else:
            pool = adult & (age < 70)
        pool &= out == ""
        idx = np.flatnonzero(pool)
        if idx.size:
            out[int(idx[int(rng.integers(idx.size))])] = cat
    return out

"""峨眉山市 geography: townships, communities/villages, grids and standard addresses.

Divisions and grids are fixed (independent of the seed: the city does not change);
addresses are drawn per run because their number follows the population.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CITY_CODE = "511181"
CITY_NAME = "峨眉山市"
CITY_CENTER = (29.601, 103.484)  # lat, lon

# code, name, communities, villages, station, (lat, lon) — codes 102/103/100/001 unverified
TOWNSHIPS: tuple[tuple[str, str, int, int, str, tuple[float, float]], ...] = (
    ("511181001", "胜利街道", 6, 4, "胜利派出所", (29.603, 103.492)),
    ("511181002", "峨山街道", 5, 8, "峨山派出所", (29.588, 103.455)),
    ("511181100", "绥山镇", 4, 16, "绥山派出所", (29.592, 103.515)),
    ("511181102", "罗目镇", 2, 18, "罗目派出所", (29.522, 103.612)),
    ("511181103", "九里镇", 2, 16, "九里派出所", (29.640, 103.562)),
    ("511181104", "龙池镇", 1, 16, "龙池派出所", (29.470, 103.402)),
    ("511181106", "符溪镇", 2, 18, "符溪派出所", (29.662, 103.518)),
    ("511181108", "双福镇", 1, 16, "名山派出所", (29.558, 103.575)),
    ("511181109", "桂花桥镇", 1, 16, "高桥派出所", (29.628, 103.452)),
)
#: villages of 峨山街道 inside the scenic area, handled by the scenic branch's 金顶派出所
SCENIC_VILLAGES: tuple[str, ...] = ("黄湾村", "报国村", "张沟村")

_COMMUNITY_NAMES = (
    "名山社区",
    "胜利社区",
    "东街社区",
    "西街社区",
    "南街社区",
    "北街社区",
    "佛光社区",
    "大佛社区",
    "峨秀社区",
    "红珠社区",
    "秀湖社区",
    "绥山社区",
    "天景社区",
    "万年社区",
    "新桥社区",
    "罗目社区",
    "燕岗社区",
    "九里社区",
    "乐都社区",
    "龙池社区",
    "符溪社区",
    "临江社区",
    "双福社区",
    "桂花桥社区",
)
_ROADS = (
    "绥山西路",
    "绥山东路",
    "名山南路",
    "名山北路",
    "名山中路",
    "佛光东路",
    "佛光西路",
    "峨秀湖路",
    "大佛路",
    "银杏大道",
    "红珠山路",
    "胜利路",
    "东街",
    "西街",
    "南街",
    "北街",
    "新桥路",
    "天景路",
    "滨河路",
    "万年路",
    "报国路",
    "高桥路",
    "临江路",
    "乐都路",
    "符溪路",
    "燕岗路",
    "龙池路",
    "九里路",
    "罗目街",
    "双福街",
    "桂花路",
    "迎宾大道",
)
_V1 = "黄张王李杨刘何罗周陈新大小高长石竹桃柳龙凤金银青白红双三七九太平安胡杜兴万永"
_V2 = "湾沟坝坪山河桥岗林田寺塘坡岭庄湖堰溪村营口"


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str  # 市 / 乡镇街道 / 社区 / 村 / 网格
    parent: str
    township: str
    station: str
    lat: float
    lon: float
    urban: bool


@dataclass(frozen=True)
class Geography:
    """The fixed division tree (city → township → community/village → grid)."""

    divisions: tuple[Division, ...]

    def of_level(self, level: str) -> tuple[Division, ...]:
        return tuple(d for d in self.divisions if d.level == level)

    @property
    def grids(self) -> tuple[Division, ...]:
        return self.of_level("网格")

    def by_code(self) -> dict[str, Division]:
        return {d.code: d for d in self.divisions}


def _village_names(rng: np.random.Generator, n: int) -> list[str]:
    names: list[str] = list(SCENIC_VILLAGES)
    seen = set(names)
    while len(names) < n:
        name = _V1[int(rng.integers(len(_V1)))] + _V2[int(rng.integers(len(_V2)))] + "村"
        if name not in seen and name[0] != name[1]:
            seen.add(name)
            names.append(name)
    return names


def build_geography() -> Geography:
    """The division tree; deterministic and seed-independent."""
    rng = np.random.default_rng(511181)
    lat0, lon0 = CITY_CENTER
    divs: list[Division] = [Division(CITY_CODE, CITY_NAME, "市", "", "", "", lat0, lon0, True)]
    villages = iter(_village_names(rng, sum(t[3] for t in TOWNSHIPS)))
    communities = iter(_COMMUNITY_NAMES)
    for code, name, n_comm, n_vill, station, (lat, lon) in TOWNSHIPS:
        divs.append(Division(code, name, "乡镇街道", CITY_CODE, code, station, lat, lon, True))
        units: list[tuple[str, str, str, bool]] = []
        for i in range(n_comm):
            units.append((f"{code}{i + 1:03d}", next(communities), "社区", True))
        for i in range(n_vill):
            units.append((f"{code}{200 + i + 1:03d}", next(villages), "村", False))
        for vcode, vname, level, urban in units:
            spread = 0.012 if urban else 0.045
            vlat = float(lat + rng.normal(0, spread))
            vlon = float(lon + rng.normal(0, spread))
            vstation = "金顶派出所" if vname in SCENIC_VILLAGES else station
            divs.append(Division(vcode, vname, level, code, code, vstation, vlat, vlon, urban))
            n_grids = int(rng.integers(3, 7)) if urban else int(rng.integers(1, 4))
            for g in range(n_grids):
                divs.append(
                    Division(
                        f"{vcode}{g + 1:03d}",
                        f"{vname}第{g + 1}网格",
                        "网格",
                        vcode,
                        code,
                        vstation,
                        float(vlat + rng.normal(0, 0.003)),
                        float(vlon + rng.normal(0, 0.003)),
                        urban,
                    )
                )
    return Geography(tuple(divs))


@dataclass
class Addresses:
    """Standard addresses as parallel arrays (index = address id)."""

    code: np.ndarray
    text: np.ndarray
    township: np.ndarray
    village: np.ndarray
    grid: np.ndarray
    level: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    station: np.ndarray
    in_use: np.ndarray  # bool
    kind: np.ndarray  # residential / unit / public
    area_class: np.ndarray  # 重点部位 / 重点区域 / 一般区域
    urban: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.code)


def build_addresses(
    rng: np.random.Generator, geo: Geography, n_residential: int, n_unit: int, unit_key: np.ndarray
) -> Addresses:
    """Residential, unit and public-place addresses spread over the grids.

    ``unit_key[i]`` says whether unit ``i`` is a key site (school, hospital, ...):
    its address is then of area class 重点部位.
    """
    grids = geo.grids
    parents = geo.by_code()
    urban = np.array([g.urban for g in grids])
    # urban grids are denser; every grid gets at least two public places (streets, squares)
    w = np.where(urban, 4.0, 1.0)
    w = w / w.sum()
    n_public = 2 * len(grids) + n_residential // 10
    kinds = np.concatenate(
        [
            np.full(n_residential, "residential", dtype=object),
            np.full(n_unit, "unit", dtype=object),
            np.full(n_public, "public", dtype=object),
        ]
    )
    gix = np.concatenate(
        [
            rng.choice(len(grids), size=n_residential, p=w),
            rng.choice(len(grids), size=n_unit, p=w),
            np.repeat(np.arange(len(grids)), 2),
            rng.choice(len(grids), size=n_public - 2 * len(grids), p=w),
        ]
    )
    n = len(kinds)
    # retired addresses: 2 % extra, never used by a record
    n_retired = max(3, n // 50)
    kinds = np.concatenate([kinds, np.full(n_retired, "retired", dtype=object)])
    gix = np.concatenate([gix, rng.choice(len(grids), size=n_retired, p=w)])
    n = len(kinds)
    roads: dict[str, list[str]] = {}
    seq: dict[int, int] = {}
    code = np.empty(n, dtype=object)
    text = np.empty(n, dtype=object)
    level = np.empty(n, dtype=object)
    area = np.empty(n, dtype=object)
    lat = np.empty(n, dtype=float)
    lon = np.empty(n, dtype=float)
    house_no = rng.integers(1, 300, size=n)
    for i in range(n):
        g = grids[int(gix[i])]
        v = parents[g.parent]
        t = parents[v.parent]
        s = seq.get(int(gix[i]), 0) + 1
        seq[int(gix[i])] = s
        code[i] = f"{g.code}{s:05d}"
        prefix = f"{CITY_NAME}{t.name}{v.name}"
        kind = kinds[i]
        if g.urban:
            rl = roads.setdefault(
                v.code, [_ROADS[(len(roads) * 3 + k) % len(_ROADS)] for k in range(3)]
            )
            road = rl[int(house_no[i]) % 3]
            if kind in ("residential", "retired"):
                b, u = int(rng.integers(1, 12)), int(rng.integers(1, 4))
                room = f"{int(rng.integers(1, 19))}{int(rng.integers(1, 5)):02d}"
                text[i] = f"{prefix}{road}{house_no[i]}号{b}栋{u}单元{room}"
                level[i] = "户室"
            elif kind == "unit":
                text[i] = f"{prefix}{road}{house_no[i]}号{int(rng.integers(1, 6))}栋"
                level[i] = "楼栋"
            else:
                text[i] = f"{prefix}{road}{house_no[i]}号"
                level[i] = "门牌"
        else:
            text[i] = f"{prefix}{int(rng.integers(1, 13))}组{house_no[i]}号"
            level[i] = "门牌"
        scenic = v.name in SCENIC_VILLAGES
        if kind == "unit" and i - n_residential < len(unit_key) and unit_key[i - n_residential]:
            area[i] = "重点部位"
        elif kind in ("public", "unit") and (g.urban or scenic):
            area[i] = "重点区域"
        else:
            area[i] = "一般区域"
        lat[i] = g.lat + rng.normal(0, 0.002)
        lon[i] = g.lon + rng.normal(0, 0.002)
    gcodes = np.array([grids[int(k)].code for k in gix], dtype=object)
    vcodes = np.array([grids[int(k)].parent for k in gix], dtype=object)
    tcodes = np.array([grids[int(k)].township for k in gix], dtype=object)
    stations = np.array([grids[int(k)].station for k in gix], dtype=object)
    return Addresses(
        code=code,
        text=text,
        township=tcodes,
        village=vcodes,
        grid=gcodes,
        level=level,
        lon=np.round(lon, 6),
        lat=np.round(lat, 6),
        station=stations,
        in_use=kinds != "retired",
        kind=kinds,
        area_class=area,
        urban=urban[gix],
    )

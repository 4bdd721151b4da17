"""The hidden world every feed is drawn from: geography, addresses, persons, units, staff."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datahub.generate.config import GenerateConfig
from datahub.generate.geography import Addresses, Geography, build_addresses, build_geography
from datahub.generate.population import Persons, build_persons
from datahub.identifiers import credit_check_char

UNIT_CATEGORY_P: tuple[tuple[str, float], ...] = (
    ("旅馆", 0.20),
    ("网吧", 0.05),
    ("学校", 0.08),
    ("医院", 0.05),
    ("夜市", 0.03),
    ("商场", 0.06),
    ("景区", 0.04),
    ("企业", 0.33),
    ("娱乐场所", 0.08),
    ("加油站", 0.04),
)
KEY_SITE_CATEGORIES = frozenset({"学校", "医院", "景区", "加油站", "商场"})
_WORDS = (
    "金顶",
    "报国",
    "万年",
    "清音",
    "洪椿",
    "伏虎",
    "秀湖",
    "佛光",
    "红珠",
    "名山",
    "峨秀",
    "雪芽",
    "竹叶青",
    "普贤",
    "灵秀",
    "九老",
    "象池",
    "天下",
    "云上",
    "仙峰",
    "龙门",
    "黑龙",
    "白龙",
    "双桥",
    "桂花",
    "乐都",
    "符溪",
    "罗目",
    "高桥",
    "燕岗",
    "绥山",
    "胜利",
    "大佛",
    "金山",
    "银杏",
    "翠竹",
)
_SUFFIX: dict[str, tuple[str, ...]] = {
    "旅馆": ("大酒店", "宾馆", "客栈", "酒店", "民宿"),
    "网吧": ("网咖", "网吧"),
    "学校": ("小学", "中学", "幼儿园", "职业学校"),
    "医院": ("医院", "中医院", "社区卫生服务中心", "诊所"),
    "夜市": ("夜市",),
    "商场": ("商场", "购物中心", "超市"),
    "景区": ("景区", "游客中心", "索道站"),
    "企业": ("茶业有限公司", "建材有限公司", "旅游开发有限公司", "食品有限公司", "物流有限公司"),
    "娱乐场所": ("KTV", "酒吧", "足浴城"),
    "加油站": ("加油站",),
}


@dataclass
class Units:
    credit_code: np.ndarray
    name: np.ndarray
    category: np.ndarray
    address: np.ndarray  # address index
    legal_rep: np.ndarray  # person index
    registered_on: np.ndarray  # datetime64[D]
    employees: np.ndarray

    def __len__(self) -> int:
        return len(self.credit_code)


@dataclass
class World:
    config: GenerateConfig
    geo: Geography
    addresses: Addresses
    persons: Persons
    units: Units
    n_households: int
    n_vacant: int
    grid_index: dict[str, int]  # grid code → position in geo.grids
    person_grid: np.ndarray  # grid code of each person's home ('' for visitors)
    member_of_grid: dict[str, list[str]]  # grid code → grid member numbers (filled by feeds)


def _credit_code(rng: np.random.Generator, kind: str) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "".join(alphabet[int(rng.integers(0, 10 if i < 2 else len(alphabet)))] for i in range(9))
    first17 = f"9{kind}511181{body}"
    return first17 + credit_check_char(first17)


def build_world(config: GenerateConfig, rng: np.random.Generator) -> World:
    """Everything behind the feeds; deterministic for a given config."""
    geo = build_geography()
    persons, n_households = build_persons(rng, config.persons, config.end)
    n_units = max(40, config.persons // 25)
    cats, p = zip(*UNIT_CATEGORY_P, strict=True)
    pa = np.array(p) / np.sum(p)
    category = rng.choice(np.array(cats, dtype=object), size=n_units, p=pa)
    unit_key = np.array([c in KEY_SITE_CATEGORIES for c in category])
    n_vacant = max(5, n_households // 10)
    addresses = build_addresses(rng, geo, n_households + n_vacant, n_units, unit_key)
    # household h lives at residential address h (registered households sit in their grid)
    home = persons.home
    persons.home = np.where(home >= 0, home, -1)
    age = persons.age(config.end)
    adults = np.flatnonzero((age >= 25) & (age < 70))
    rep_pool_local = adults[persons.kind[adults] == "registered"]
    rep_pool_visit = adults[persons.kind[adults] == "visitor"]
    legal_rep = np.where(
        rng.random(n_units) < 0.8,
        rng.choice(rep_pool_local, size=n_units),
        rng.choice(rep_pool_visit if rep_pool_visit.size else rep_pool_local, size=n_units),
    )
    seen: set[str] = set()
    names = np.empty(n_units, dtype=object)
    codes = np.empty(n_units, dtype=object)
    for i, cat in enumerate(category):
        suffixes = _SUFFIX[cat]
        base = _WORDS[int(rng.integers(len(_WORDS)))] + suffixes[int(rng.integers(len(suffixes)))]
        prefix = "峨眉山市" if cat in ("企业", "医院", "学校") else "峨眉山"
        name = prefix + base
        k = 2
        while name in seen:
            # a second shop of the same name: real registers say 二店, 三店 …
            name = (
                f"{prefix}{base}{'二三四五六七八九'[min(k, 9) - 2]}店"
                if k <= 9
                else f"{prefix}{base}{k}店"
            )
            k += 1
        seen.add(name)
        names[i] = name
        code = _credit_code(
            rng, "2" if cat in ("网吧", "夜市", "娱乐场所") and rng.random() < 0.5 else "1"
        )
        while code in seen:
            code = _credit_code(rng, "1")
        seen.add(code)
        codes[i] = code
    end = np.datetime64(config.end, "D")
    units = Units(
        credit_code=codes,
        name=names,
        category=category,
        address=np.arange(n_households + n_vacant, n_households + n_vacant + n_units),
        legal_rep=legal_rep,
        registered_on=end - rng.integers(30, 30 * 365, size=n_units),
        employees=np.maximum(1, rng.lognormal(2.3, 1.0, size=n_units).astype(int)),
    )
    grids = geo.grids
    grid_index = {g.code: i for i, g in enumerate(grids)}
    person_grid = np.where(persons.home >= 0, addresses.grid[np.maximum(persons.home, 0)], "")
    return World(
        config=config,
        geo=geo,
        addresses=addresses,
        persons=persons,
        units=units,
        n_households=n_households,
        n_vacant=n_vacant,
        grid_index=grid_index,
        person_grid=person_grid.astype(object),
        member_of_grid={},
    )

"""Chinese names with realistic surname frequencies and era-typical given names."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pypinyin import lazy_pinyin

#: Surnames, Sichuan order (李 first), rough shares in percent; the tail follows Zipf.
_SURNAME_HEAD: tuple[tuple[str, float], ...] = (
    ("李", 7.9),
    ("王", 6.6),
    ("张", 6.2),
    ("刘", 5.6),
    ("陈", 5.2),
    ("杨", 4.6),
    ("罗", 2.6),
    ("何", 2.3),
    ("黄", 2.3),
    ("周", 2.2),
    ("赵", 2.0),
    ("吴", 2.0),
    ("唐", 1.9),
    ("邓", 1.8),
    ("曾", 1.6),
    ("彭", 1.5),
    ("徐", 1.4),
    ("胡", 1.4),
    ("孙", 1.1),
    ("马", 1.1),
    ("朱", 1.1),
    ("郭", 1.0),
    ("高", 1.0),
    ("林", 0.8),
    ("郑", 0.8),
    ("梁", 0.8),
    ("谢", 0.8),
    ("宋", 0.7),
)
_SURNAME_TAIL = (
    "许韩冯曹肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦"
    "邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_COMPOUND = (("欧阳", 0.05), ("司马", 0.01), ("诸葛", 0.01), ("上官", 0.01))


def _surname_table() -> tuple[list[str], np.ndarray]:
    names = [s for s, _ in _SURNAME_HEAD]
    weights = [w for _, w in _SURNAME_HEAD]
    for i, ch in enumerate(_SURNAME_TAIL):
        names.append(ch)
        weights.append(0.75 / (1 + i * 0.06))
    for s, w in _COMPOUND:
        names.append(s)
        weights.append(w)
    p = np.asarray(weights, dtype=float)
    return names, p / p.sum()


SURNAMES, SURNAME_P = _surname_table()

#: Given-name characters by birth era and sex, most frequent first (Zipf weights).
#: Eras: <1960, 1960-79, 1980-89, 1990-99, 2000-14, 2015+.
ERA_BOUNDS: tuple[int, ...] = (1960, 1980, 1990, 2000, 2015)
_SINGLE: dict[str, tuple[str, str]] = {
    # era: (male chars, female chars) used as one-character given names
    "0": ("华明福贵忠德军林海清", "英兰珍芳秀桂凤琼淑华"),
    "1": ("伟勇军强平斌刚建波明", "丽红霞萍燕艳梅玲芳敏"),
    "2": ("伟磊涛鹏超勇杰俊波刚", "静娜敏丽芳婷燕丹洁琳"),
    "3": ("杰浩鑫宇帅磊鹏飞龙俊", "婷雪倩欣颖佳琪瑶玲雯"),
    "4": ("浩宇轩博泽睿豪杰翔航", "欣怡涵萱琪悦雨佳瑶婷"),
    "5": ("辰宇睿泽皓航轩浩铭言", "诺汐悦涵可依萱然妍彤"),
}
_FIRST: dict[str, tuple[str, str]] = {
    "0": ("建国德志文长永庆正金", "秀玉桂淑素凤美翠春冬"),
    "1": ("建志国红小永海文卫晓", "小丽红秀晓春建海玉燕"),
    "2": ("志晓俊文海建家佳小明", "晓丽雪婷佳小思丹春海"),
    "3": ("子浩俊家宇佳志明鹏思", "佳思欣雨晓梦婉诗雅紫"),
    "4": ("子宇浩梓俊博一家思睿", "梓欣子雨诗佳可思一语"),
    "5": ("梓子一奕沐宇浩俊睿思", "一梓子沐语若可欣依诗"),
}
_SECOND: dict[str, tuple[str, str]] = {
    "0": ("国华明民生林成山福才", "英兰珍华芬芳秀琴荣莲"),
    "1": ("军华平明强伟东林兵峰", "红华英平燕梅霞丽芳琼"),
    "2": ("伟杰峰磊涛鹏超龙宇亮", "婷静丽娟颖琳倩敏燕洁"),
    "3": ("杰豪宇轩文博浩然鹏阳", "怡琪涵雯婷瑶琳颖璐萱"),
    "4": ("轩涵浩豪博然睿泽阳航", "涵怡萱琪彤妍悦馨瑶雯"),
    "5": ("辰宸泽宇航然铭睿晨言", "诺涵汐萱彤宁安然妍悦"),
}
#: Share of one-character given names by era (high in the 1960s–80s: 张伟, 李静 …).
_SINGLE_SHARE: dict[str, float] = {"0": 0.25, "1": 0.32, "2": 0.3, "3": 0.18, "4": 0.1, "5": 0.06}


def _zipf(n: int, s: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def era_of(birth_year: np.ndarray) -> np.ndarray:
    """Era key ('0'..'5') for each birth year."""
    return np.searchsorted(np.asarray(ERA_BOUNDS), birth_year, side="right").astype(str)


def given_names(rng: np.random.Generator, birth_year: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Era- and sex-typical given names (object array)."""
    n = len(birth_year)
    eras = era_of(birth_year)
    out = np.empty(n, dtype=object)
    for era in _SINGLE:
        for sex_ix, is_male in enumerate((True, False)):
            idx = np.flatnonzero((eras == era) & (male == is_male))
            if idx.size == 0:
                continue
            sex = 0 if sex_ix == 0 else 1
            singles = np.array(list(_SINGLE[era][sex]), dtype=object)
            firsts = np.array(list(_FIRST[era][sex]), dtype=object)
            seconds = np.array(list(_SECOND[era][sex]), dtype=object)
            one = rng.random(idx.size) < _SINGLE_SHARE[era]
            a = rng.choice(singles, size=idx.size, p=_zipf(len(singles), 0.7))
            b = rng.choice(firsts, size=idx.size, p=_zipf(len(firsts), 0.5))
            c = rng.choice(seconds, size=idx.size, p=_zipf(len(seconds), 0.5))
            same = b == c
            c[same] = rng.choice(seconds, size=int(same.sum()))
            out[idx] = np.where(one, a, b + c)
    return out


def surnames(rng: np.random.Generator, n: int) -> np.ndarray:
    """Surnames drawn with Sichuan frequencies (object array)."""
    return rng.choice(np.array(SURNAMES, dtype=object), size=n, p=SURNAME_P)


# --------------------------------------------------------------------- name defects
#: Extra common characters so that most name characters have a same-pinyin neighbour.
_EXTRA = (
    "玮炜薇维威卫位为唯微纬苇蔚慰娓巍尉韦磊蕾雷垒镭静婧敬境竞径靖晶精京经菁娜纳那钠芳方坊昉舫"
    "敏闽珉旻民明铭鸣名茗丽莉力立利俐荔历励勇永涌咏泳军君钧均峻俊骏隽强蔷墙平萍评屏坪苹斌彬宾"
    "滨刚钢纲岗杰洁捷婕颉桀浩昊皓灏豪号好鑫欣新心馨昕芯宇雨语羽禹玉予煜钰帅涛韬滔桃陶鹏朋彭澎"
    "超潮朝晁波博柏泊勃婷庭亭霆廷停雪学薛倩茜芊谦千颖莹盈英影营迎佳嘉家加珈琪琦奇棋淇齐祺其"
    "瑶遥尧姚谣怡宜仪艺依伊亦逸奕毅轩萱宣暄璇萱涵含寒晗韩函辰晨臣尘宸陈睿锐瑞蕊泽则择华花骅桦"
    "明鸣铭红宏洪鸿虹弘霞侠夏燕艳雁彦妍言延颜梅美玫媚玲灵琳林凌翎零丹单聪葱琼穹秀修岫兰岚澜蓝"
    "珍真贞桢祯凤峰锋枫丰芬分纷秋琴勤芹芩荣容蓉融溶国果郭德得福富芙甫建健剑鉴志智致治文雯闻"
    "长常昌畅永咏庆青清卿晴正政征诚成程承城生声胜升才财彩东冬栋兵冰炳亮良梁阳洋扬杨航杭行"
    "晓小筱孝梦蒙孟诗师思斯丝思雅亚娅紫子梓姿滋诺娜若然冉彤童桐通宁凝安岸悦月越跃乐可柯克"
)


@lru_cache(maxsize=1)
def _pinyin_groups() -> dict[str, tuple[str, ...]]:
    chars: set[str] = set(_EXTRA)
    for table in (_SINGLE, _FIRST, _SECOND):
        for m, f in table.values():
            chars.update(m)
            chars.update(f)
    chars = {c for c in chars if _gbk(c)}
    groups: dict[str, set[str]] = {}
    for c in sorted(chars):
        groups.setdefault(_py(c), set()).add(c)
    return {k: tuple(sorted(v)) for k, v in groups.items() if len(v) > 1}


@lru_cache(maxsize=1)
def _typo_pool() -> tuple[str, ...]:
    return tuple(sorted({c for c in _EXTRA if _gbk(c)}))


def _gbk(c: str) -> bool:
    try:
        c.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


@lru_cache(maxsize=4096)
def _py(c: str) -> str:
    """Toneless pinyin of one character (cached: pypinyin is slow per call)."""
    return str(lazy_pinyin(c)[0])


@lru_cache(maxsize=65536)
def _homophone_positions(name: str, surname_len: int) -> tuple[int, ...]:
    groups = _pinyin_groups()
    return tuple(i for i in range(surname_len, len(name)) if _py(name[i]) in groups)


def has_homophone(name: str, surname_len: int) -> bool:
    """True when some given-name character has a same-pinyin alternative."""
    return bool(_homophone_positions(name, surname_len))


def homophone(rng: np.random.Generator, name: str, surname_len: int) -> str:
    """Replace one given-name character by a different character with the same toneless pinyin."""
    positions = _homophone_positions(name, surname_len)
    if not positions:
        return name
    i = positions[int(rng.integers(len(positions)))]
    options = [c for c in _pinyin_groups()[_py(name[i])] if c != name[i]]
    return name[:i] + options[int(rng.integers(len(options)))] + name[i + 1 :]


def typo(rng: np.random.Generator, name: str, surname_len: int) -> str:
    """Replace one given-name character by a character with a different pinyin."""
    if len(name) <= surname_len:
        return name
    i = int(rng.integers(surname_len, len(name)))
    py = _py(name[i])
    pool = _typo_pool()
    for _ in range(20):
        c = pool[int(rng.integers(len(pool)))]
        if c != name[i] and _py(c) != py:
            return name[:i] + c + name[i + 1 :]
    return name


def stray_space(rng: np.random.Generator, name: str, surname_len: int) -> str:
    """A stray space: between surname and given name, or trailing/leading."""
    k = int(rng.integers(3))
    if k == 0 and len(name) > surname_len:
        return name[:surname_len] + " " + name[surname_len:]
    return name + " " if k == 1 else " " + name

"""Feed contracts: the single declaration of every department feed.

The generator writes feeds from these declarations, the readers check files
against them, the README of ``sample_sources/`` is rendered from them and the
raw layer's columns follow from them. Change a feed here and nowhere else.

File naming (as the departments export them), below ``<sources>/<department>/``:

* ``event_day``   — ``<feed>_YYYYMMDD.csv``, one file per day of events;
* ``event_month`` — ``<feed>_YYYYMM.csv``, one file per month;
* ``snapshot``    — ``<feed>_YYYYMMDD.csv``, a full extract as of that date
  (the newest one on or before a run's date is current).

Identifier columns carry a ``role``. Columns with a person role (``id_number``,
``phone``, ``name``) never reach the warehouse: the pipeline replaces them by
tokens and validity flags (see ``datahub.privacy``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["str", "int", "float", "date", "datetime", "month"]
IdentifierRole = Literal["id_number", "phone", "name"]
FeedKind = Literal["event_day", "event_month", "snapshot"]

DEPARTMENTS: tuple[str, ...] = ("police", "government", "social_security", "community")

#: How each department really exports (drives the generator and the tests).
DEPARTMENT_ENCODING: dict[str, tuple[str, str]] = {
    # department: (encoding, line ending)
    "police": ("utf-8", "\n"),
    "government": ("utf-8", "\n"),
    "social_security": ("utf-8-sig", "\r\n"),
    "community": ("gbk", "\r\n"),
}

#: Date/time spellings seen in real exports; readers accept all of them.
DATETIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y%m%d%H%M%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y-%m-%d %H:%M",
)
DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日", "%Y.%m.%d")
MONTH_FORMATS: tuple[str, ...] = ("%Y%m", "%Y-%m")


@dataclass(frozen=True)
class Column:
    """One column of a feed file."""

    name: str
    label: str  # Chinese label, as in the department's system
    meaning: str  # English meaning for the data dictionary
    type: ColumnType = "str"
    required: bool = False
    role: IdentifierRole | None = None
    allowed: tuple[str, ...] | None = None
    #: the value must exist in the division / address reference tables
    references: Literal["division", "address", "grid"] | None = None


@dataclass(frozen=True)
class PersonRef:
    """A person mentioned by a record: which columns hold the identifiers.

    ``role`` names the person within the record (caller, owner, party, ...);
    ground truth uses the same name.
    """

    role: str
    name: str | None = None
    id_number: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Feed:
    department: str
    name: str
    label: str
    meaning: str
    kind: FeedKind
    columns: tuple[Column, ...]
    business_key: tuple[str, ...]
    persons: tuple[PersonRef, ...] = ()
    #: (earlier, later) datetime pairs that must be in order
    time_order: tuple[tuple[str, str], ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Unique feed id, e.g. ``police.incidents``; also the raw table name."""
        return f"{self.department}.{self.name}"

    @property
    def table(self) -> str:
        """Raw/quarantine table name: ``<department>__<feed>``."""
        return f"{self.department}__{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.key} has no column {name!r}")

    @property
    def identifier_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.role is not None)

    @property
    def encoding(self) -> str:
        return DEPARTMENT_ENCODING[self.department][0]

    @property
    def line_ending(self) -> str:
        return DEPARTMENT_ENCODING[self.department][1]

    def file_name(self, stamp: str) -> str:
        """File name for a date stamp (YYYYMMDD, or YYYYMM for monthly feeds)."""
        return f"{self.name}_{stamp}.csv"

    @property
    def file_pattern(self) -> re.Pattern[str]:
        digits = 6 if self.kind == "event_month" else 8
        return re.compile(rf"^{re.escape(self.name)}_(\d{{{digits}}})\.csv$")


def _c(name: str, label: str, meaning: str, type: ColumnType = "str", **kw: object) -> Column:
    return Column(name, label, meaning, type, **kw)  # type: ignore[arg-type]


INCIDENT_CATEGORIES = (
    "刑事",
    "治安",
    "交通",
    "火灾",
    "灾害事故",
    "群众求助",
    "纠纷",
    "举报",
    "投诉",
    "群体性事件",
    "其他",
)
POLICE_STATIONS = (
    "名山派出所",
    "绥山派出所",
    "峨山派出所",
    "胜利派出所",
    "高桥派出所",
    "罗目派出所",
    "九里派出所",
    "符溪派出所",
    "龙池派出所",
    "金顶派出所",
)
AREA_CLASSES = ("重点部位", "重点区域", "一般区域")  # 1 / 3 / 5 minute arrival targets
DISPUTE_TYPES = (
    "婚恋家庭",
    "邻里",
    "债务借贷",
    "劳资",
    "土地宅基地",
    "征地拆迁",
    "物业",
    "医疗",
    "损害赔偿",
    "村务管理",
)
DISPUTE_STATUSES = ("登记受理", "调解", "风险研判", "流转", "督办", "办结")
RISK_LEVELS = ("高", "中", "低")
KEY_PERSON_CATEGORIES = (
    "A-严重刑事前科",
    "A-涉毒",
    "A-肇事肇祸精神病",
    "B-刑满释放",
    "B-社区矫正",
    "B-涉枪涉爆",
    "C-流动人口重点",
    "C-信访",
    "C-独居老人",
    "C-生活困难",
)
SENSOR_TYPES = ("视频监控", "人脸识别", "车辆卡口")
POPULATION_TYPES = ("户籍", "流动", "境外")
MIGRANT_REASONS = (
    "务工",
    "务农",
    "经商",
    "学习培训",
    "婚嫁",
    "随迁",
    "治病疗养",
    "投靠亲友",
    "旅游观光",
    "其他",
)
HOUSE_USES = ("自住", "出租", "经营", "空置")
UNIT_CATEGORIES = (
    "旅馆",
    "网吧",
    "学校",
    "医院",
    "夜市",
    "商场",
    "景区",
    "企业",
    "娱乐场所",
    "加油站",
)
INSURANCE_TYPES = ("110", "120", "210", "310", "390", "410", "510")
INSURANCE_STATUSES = ("1", "2", "3")
BENEFIT_TYPES = ("养老金", "失业金", "低保金", "工伤待遇", "医疗报销")
VISIT_PURPOSES = ("重点人员走访", "独居老人关爱", "矛盾纠纷回访", "出租房屋检查", "流动人口登记")
PATROL_TEAM_TYPES = ("义警", "红袖标", "治保会")
PERSON_ROLES_IN_INCIDENT = ("报警人", "当事人", "嫌疑人", "受害人")
REPORT_CHANNELS = ("电话", "短信", "微信", "现场")


FEEDS: tuple[Feed, ...] = (
    # ------------------------------------------------------------------ police
    Feed(
        "police",
        "incidents",
        "110接处警记录",
        "110 calls with dispatch and arrival times",
        "event_day",
        (
            _c("incident_no", "警情编号", "incident number", required=True),
            _c("received_at", "接警时间", "call received", "datetime", required=True),
            _c("dispatched_at", "派警时间", "dispatch order issued", "datetime"),
            _c("arrived_at", "到达现场时间", "first officers on scene", "datetime"),
            _c("closed_at", "处警结束时间", "handling finished", "datetime"),
            _c("report_channel", "报警方式", "how reported", allowed=REPORT_CHANNELS),
            _c(
                "call_category",
                "接警类别",
                "category at call-taking",
                required=True,
                allowed=INCIDENT_CATEGORIES,
            ),
            _c(
                "final_category", "处警类别", "category after feedback", allowed=INCIDENT_CATEGORIES
            ),
            _c(
                "incident_level",
                "警情级别",
                "level 1 (highest) to 4",
                "int",
                allowed=("1", "2", "3", "4"),
            ),
            _c(
                "address_code",
                "发生地址编码",
                "standard address of the scene",
                required=True,
                references="address",
            ),
            _c(
                "area_class",
                "区域等级",
                "area class deciding the 1/3/5-minute target",
                required=True,
                allowed=AREA_CLASSES,
            ),
            _c(
                "station",
                "管辖单位",
                "handling police station",
                required=True,
                allowed=POLICE_STATIONS,
            ),
            _c("caller_name", "报警人姓名", "caller name", role="name"),
            _c("caller_id_number", "报警人身份证号", "caller resident ID number", role="id_number"),
            _c("caller_phone", "报警人电话", "caller phone", role="phone"),
        ),
        business_key=("incident_no",),
        persons=(PersonRef("caller", "caller_name", "caller_id_number", "caller_phone"),),
        time_order=(
            ("received_at", "dispatched_at"),
            ("dispatched_at", "arrived_at"),
            ("received_at", "closed_at"),
        ),
    ),
    Feed(
        "police",
        "incident_persons",
        "警情涉及人员",
        "persons involved in incidents",
        "event_day",
        (
            _c("incident_no", "警情编号", "incident number", required=True),
            _c("person_seq", "人员序号", "sequence within the incident", "int", required=True),
            _c(
                "person_role",
                "人员角色",
                "role in the incident",
                required=True,
                allowed=PERSON_ROLES_IN_INCIDENT,
            ),
            _c("name", "姓名", "name", role="name", required=True),
            _c("id_number", "身份证号", "resident ID number", role="id_number"),
            _c("phone", "联系电话", "phone", role="phone"),
            _c("recorded_at", "登记时间", "when recorded", "datetime", required=True),
        ),
        business_key=("incident_no", "person_seq"),
        persons=(PersonRef("involved", "name", "id_number", "phone"),),
    ),
    Feed(
        "police",
        "key_persons",
        "重点人员管控",
        "key persons under management",
        "snapshot",
        (
            _c("kp_no", "重点人员编号", "key-person file number", required=True),
            _c("name", "姓名", "name", role="name", required=True),
            _c("id_number", "身份证号", "resident ID number", role="id_number", required=True),
            _c("phone", "联系电话", "phone", role="phone"),
            _c(
                "category",
                "人员类别",
                "category (tier A/B/C)",
                required=True,
                allowed=KEY_PERSON_CATEGORIES,
            ),
            _c(
                "control_level",
                "管控级别",
                "control level 1 (strict) to 3",
                "int",
                required=True,
                allowed=("1", "2", "3"),
            ),
            _c("officer_no", "责任民警警号", "responsible officer's badge number", required=True),
            _c("station", "管辖单位", "police station", required=True, allowed=POLICE_STATIONS),
            _c(
                "address_code",
                "居住地址编码",
                "standard address of residence",
                references="address",
            ),
            _c("listed_on", "列管日期", "date put under management", "date", required=True),
        ),
        business_key=("kp_no",),
        persons=(PersonRef("subject", "name", "id_number", "phone"),),
    ),
    Feed(
        "police",
        "sensors",
        "前端感知设备",
        "video / face / vehicle sensors",
        "snapshot",
        (
            _c("sensor_id", "设备编号", "device id", required=True),
            _c("sensor_type", "设备类型", "device type", required=True, allowed=SENSOR_TYPES),
            _c(
                "address_code",
                "安装地址编码",
                "standard address of the mount",
                required=True,
                references="address",
            ),
            _c("grid_code", "所属网格", "grid", required=True, references="grid"),
            _c("longitude", "经度", "longitude (WGS84)", "float", required=True),
            _c("latitude", "纬度", "latitude (WGS84)", "float", required=True),
            _c("installed_on", "安装日期", "install date", "date", required=True),
            _c(
                "status",
                "设备状态",
                "in service or not",
                required=True,
                allowed=("在用", "故障", "停用"),
            ),
        ),
        business_key=("sensor_id",),
    ),
    # -------------------------------------------------------------- government
    Feed(
        "government",
        "divisions",
        "行政区划",
        "division hierarchy (city/township/community-village/grid)",
        "snapshot",
        (
            _c("division_code", "区划代码", "division code", required=True),
            _c("division_name", "区划名称", "division name", required=True),
            _c(
                "level",
                "层级",
                "city / township / community / village / grid",
                required=True,
                allowed=("市", "乡镇街道", "社区", "村", "网格"),
            ),
            _c("parent_code", "上级代码", "parent division code"),
        ),
        business_key=("division_code",),
    ),
    Feed(
        "government",
        "addresses",
        "标准地址",
        "standard addresses (一标)",
        "snapshot",
        (
            _c("address_code", "地址编码", "standard address code", required=True),
            _c("address_text", "标准地址", "full standard address text", required=True),
            _c(
                "township_code",
                "乡镇街道代码",
                "township code",
                required=True,
                references="division",
            ),
            _c(
                "village_code",
                "社区村代码",
                "community or village code",
                required=True,
                references="division",
            ),
            _c("grid_code", "网格代码", "grid code", required=True, references="grid"),
            _c(
                "address_level",
                "地址级别",
                "door plate / building / room",
                required=True,
                allowed=("门牌", "楼栋", "户室"),
            ),
            _c("longitude", "经度", "longitude (WGS84)", "float", required=True),
            _c("latitude", "纬度", "latitude (WGS84)", "float", required=True),
            _c(
                "station",
                "责任派出所",
                "police station responsible",
                required=True,
                allowed=POLICE_STATIONS,
            ),
            _c(
                "in_use",
                "启用状态",
                "1 in use, 0 retired",
                "int",
                required=True,
                allowed=("0", "1"),
            ),
        ),
        business_key=("address_code",),
    ),
    Feed(
        "government",
        "population",
        "实有人口",
        "real population (一实: 人)",
        "snapshot",
        (
            _c("person_no", "人口编号", "population record number", required=True),
            _c("name", "姓名", "name", role="name", required=True),
            _c("id_number", "身份证号", "resident ID number", role="id_number", required=True),
            _c("phone", "联系电话", "phone", role="phone"),
            _c(
                "population_type",
                "人口类型",
                "registered / migrant / foreign",
                required=True,
                allowed=POPULATION_TYPES,
            ),
            _c(
                "address_code",
                "居住地址编码",
                "standard address of residence",
                required=True,
                references="address",
            ),
            _c("household_no", "户号", "household number"),
            _c("relation", "与户主关系", "relation to household head"),
            _c("migrant_reason", "暂住事由", "reason of stay (migrants)", allowed=MIGRANT_REASONS),
            _c("arrived_on", "来本地日期", "arrival date (migrants)", "date"),
            _c("registered_on", "登记日期", "registration date", "date", required=True),
        ),
        business_key=("person_no",),
        persons=(PersonRef("resident", "name", "id_number", "phone"),),
    ),
    Feed(
        "government",
        "houses",
        "实有房屋",
        "real houses (一实: 房)",
        "snapshot",
        (
            _c("house_no", "房屋编号", "house number", required=True),
            _c(
                "address_code",
                "房屋地址编码",
                "standard address",
                required=True,
                references="address",
            ),
            _c(
                "house_use",
                "房屋用途",
                "own use / rented / commercial / vacant",
                required=True,
                allowed=HOUSE_USES,
            ),
            _c("area_m2", "建筑面积", "floor area in m²", "float"),
            _c("rooms", "房间数", "rooms", "int"),
            _c("occupants", "居住人数", "occupants", "int"),
            _c("owner_name", "产权人姓名", "owner name", role="name", required=True),
            _c("owner_id_number", "产权人身份证号", "owner resident ID number", role="id_number"),
            _c("owner_phone", "产权人电话", "owner phone", role="phone"),
            _c("rental_filing_no", "租赁备案号", "rental filing number (rented houses)"),
        ),
        business_key=("house_no",),
        persons=(PersonRef("owner", "owner_name", "owner_id_number", "owner_phone"),),
    ),
    Feed(
        "government",
        "units",
        "实有单位",
        "real units (一实: 单位)",
        "snapshot",
        (
            _c(
                "credit_code",
                "统一社会信用代码",
                "unified social credit code (GB 32100)",
                required=True,
            ),
            _c("unit_name", "单位名称", "unit name", required=True),
            _c("unit_category", "单位类别", "category", required=True, allowed=UNIT_CATEGORIES),
            _c(
                "address_code",
                "单位地址编码",
                "standard address",
                required=True,
                references="address",
            ),
            _c(
                "legal_rep_name",
                "法定代表人",
                "legal representative name",
                role="name",
                required=True,
            ),
            _c(
                "legal_rep_id_number",
                "法定代表人身份证号",
                "legal representative ID number",
                role="id_number",
            ),
            _c("legal_rep_phone", "法定代表人电话", "legal representative phone", role="phone"),
            _c("registered_on", "登记日期", "registration date", "date", required=True),
            _c("employees", "从业人数", "employees", "int"),
        ),
        business_key=("credit_code",),
        persons=(
            PersonRef("legal_rep", "legal_rep_name", "legal_rep_id_number", "legal_rep_phone"),
        ),
    ),
    # --------------------------------------------------------- social security
    Feed(
        "social_security",
        "insured",
        "参保人员",
        "insured persons",
        "snapshot",
        (
            _c("card_no", "社会保障卡号", "social security card number", required=True),
            _c(
                "id_number",
                "公民身份号码",
                "resident ID number (the social security number)",
                role="id_number",
                required=True,
            ),
            _c("name", "姓名", "name", role="name", required=True),
            _c("phone", "联系电话", "phone", role="phone"),
            _c(
                "insurance_type",
                "险种类型",
                "insurance type code",
                required=True,
                allowed=INSURANCE_TYPES,
            ),
            _c(
                "status",
                "缴费状态",
                "1 paying / 2 suspended / 3 terminated",
                required=True,
                allowed=INSURANCE_STATUSES,
            ),
            _c("employer_credit_code", "单位统一社会信用代码", "employer's credit code"),
            _c("employer_name", "参保单位", "employer name"),
            _c("first_enrolled", "首次参保年月", "first enrolment month", "month", required=True),
        ),
        business_key=("card_no", "insurance_type"),
        persons=(PersonRef("insured", "name", "id_number", "phone"),),
    ),
    Feed(
        "social_security",
        "benefits",
        "待遇发放",
        "monthly benefit payments",
        "event_month",
        (
            _c("payment_no", "发放流水号", "payment number", required=True),
            _c("id_number", "公民身份号码", "resident ID number", role="id_number", required=True),
            _c("name", "姓名", "name", role="name", required=True),
            _c("benefit_type", "待遇类型", "benefit type", required=True, allowed=BENEFIT_TYPES),
            _c("period", "待遇所属期", "benefit month", "month", required=True),
            _c("amount", "发放金额", "amount in yuan", "float", required=True),
            _c("paid_on", "发放日期", "payment date", "date", required=True),
        ),
        business_key=("payment_no",),
        persons=(PersonRef("beneficiary", "name", "id_number", None),),
    ),
    # --------------------------------------------------------------- community
    Feed(
        "community",
        "grid_members",
        "网格员",
        "grid members",
        "snapshot",
        (
            _c("member_no", "网格员编号", "grid member number", required=True),
            _c("name", "姓名", "name", role="name", required=True),
            _c("phone", "联系电话", "phone", role="phone", required=True),
            _c("grid_code", "负责网格", "grid served", required=True, references="grid"),
            _c(
                "member_type",
                "网格员类型",
                "full-time / part-time",
                required=True,
                allowed=("专职", "兼职"),
            ),
            _c("started_on", "上岗日期", "start date", "date", required=True),
        ),
        business_key=("member_no",),
        persons=(PersonRef("member", "name", None, "phone"),),
    ),
    Feed(
        "community",
        "disputes",
        "矛盾纠纷",
        "disputes taken in for mediation",
        "event_month",
        (
            _c("dispute_no", "纠纷编号", "dispute number", required=True),
            _c("found_on", "发现日期", "date found", "date", required=True),
            _c(
                "address_code",
                "发生地址编码",
                "standard address",
                required=True,
                references="address",
            ),
            _c("grid_code", "所属网格", "grid", required=True, references="grid"),
            _c("dispute_type", "纠纷类型", "dispute type", required=True, allowed=DISPUTE_TYPES),
            _c("risk_level", "风险等级", "risk level", required=True, allowed=RISK_LEVELS),
            _c("status", "办理状态", "status", required=True, allowed=DISPUTE_STATUSES),
            _c("resolved_on", "办结日期", "date resolved", "date"),
            _c("member_no", "受理网格员", "grid member who took it", required=True),
        ),
        business_key=("dispute_no",),
        time_order=(("found_on", "resolved_on"),),
    ),
    Feed(
        "community",
        "dispute_parties",
        "纠纷当事人",
        "parties to disputes",
        "event_month",
        (
            _c("dispute_no", "纠纷编号", "dispute number", required=True),
            _c("party_seq", "当事人序号", "party number within the dispute", "int", required=True),
            _c("name", "姓名", "name", role="name", required=True),
            _c("phone", "联系电话", "phone", role="phone"),
            _c("id_number", "身份证号", "resident ID number (often blank)", role="id_number"),
        ),
        business_key=("dispute_no", "party_seq"),
        persons=(PersonRef("party", "name", "id_number", "phone"),),
    ),
    Feed(
        "community",
        "visits",
        "走访记录",
        "grid members' home visits",
        "event_month",
        (
            _c("visit_no", "走访编号", "visit number", required=True),
            _c("visited_on", "走访日期", "visit date", "date", required=True),
            _c("member_no", "网格员编号", "visiting grid member", required=True),
            _c("purpose", "走访事由", "purpose", required=True, allowed=VISIT_PURPOSES),
            _c(
                "address_code",
                "走访地址编码",
                "standard address visited",
                required=True,
                references="address",
            ),
            _c("name", "被走访人姓名", "visited person's name", role="name", required=True),
            _c("phone", "被走访人电话", "visited person's phone", role="phone"),
            _c(
                "id_number",
                "被走访人身份证号",
                "visited person's ID (often blank)",
                role="id_number",
            ),
        ),
        business_key=("visit_no",),
        persons=(PersonRef("visited", "name", "id_number", "phone"),),
    ),
    Feed(
        "community",
        "patrol_teams",
        "群防群治队伍",
        "volunteer patrol teams (义警/红袖标/治保会)",
        "snapshot",
        (
            _c("team_no", "队伍编号", "team number", required=True),
            _c("team_type", "队伍类型", "team type", required=True, allowed=PATROL_TEAM_TYPES),
            _c("grid_code", "所属网格", "grid", required=True, references="grid"),
            _c("members", "队员人数", "members", "int", required=True),
            _c("leader_name", "队长姓名", "team leader name", role="name", required=True),
            _c("leader_phone", "队长电话", "team leader phone", role="phone"),
            _c("founded_on", "成立日期", "date founded", "date", required=True),
        ),
        business_key=("team_no",),
        persons=(PersonRef("leader", "leader_name", None, "leader_phone"),),
    ),
)

FEEDS_BY_KEY: dict[str, Feed] = {f.key: f for f in FEEDS}


def feeds_of(department: str) -> tuple[Feed, ...]:
    """Feeds of one department, in dependency order (reference data first)."""
    if department not in DEPARTMENTS:
        raise KeyError(
            f"unknown department {department!r}; expected one of {', '.join(DEPARTMENTS)}"
        )
    return tuple(f for f in FEEDS if f.department == department)


def feed_for_file(department: str, file_name: str) -> tuple[Feed, str]:
    """Return the feed a file belongs to and its date stamp, from the file name.

    Raises ``ValueError`` naming the expected patterns when nothing matches.
    """
    for feed in feeds_of(department):
        m = feed.file_pattern.match(file_name)
        if m:
            return feed, m.group(1)
    expected = ", ".join(
        f.file_name("YYYYMM" if f.kind == "event_month" else "YYYYMMDD")
        for f in feeds_of(department)
    )
    raise ValueError(f"{file_name!r} is not a {department} feed file; expected one of: {expected}")

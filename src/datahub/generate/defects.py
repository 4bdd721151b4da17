"""Defect catalogue: what each injected defect is and what the pipeline should do with it.

``DEFECTS`` is the contract between the generator's ground truth (``_truth/records.csv``
labels) and the scoring of the pipeline: a label either is visible to a feed contract and
must be quarantined with ``reason``, or is fixable by identifier normalisation, or only
matters for record linkage. Neither of the last two may cause a quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DefectLevel = Literal["contract", "normalise", "linkage"]

#: Quarantine reason codes the pipeline uses (``quarantine.<table>.reason``).
REASON_INVALID_ID = "invalid_id_number"
REASON_TIME_ORDER = "time_order"
REASON_FUTURE_DATE = "future_date"
REASON_BAD_VALUE = "bad_value"
REASON_MISSING_REQUIRED = "missing_required"
REASON_DUPLICATE_ROW = "duplicate_row"


@dataclass(frozen=True)
class Defect:
    """One kind of injected defect."""

    label: str
    level: DefectLevel
    #: quarantine reason a contract-visible defect must produce; None = must not quarantine
    reason: str | None
    description: str

    @property
    def quarantined(self) -> bool:
        return self.reason is not None


_ALL: tuple[Defect, ...] = (
    Defect(
        "id_invalid_check",
        "contract",
        REASON_INVALID_ID,
        "18-character ID whose check character is wrong",
    ),
    Defect(
        "id_malformed",
        "contract",
        REASON_INVALID_ID,
        "ID of the wrong length or with a letter inside",
    ),
    Defect(
        "time_order",
        "contract",
        REASON_TIME_ORDER,
        "a later time before its earlier one (dispatch before receipt, resolved before found)",
    ),
    Defect(
        "future_date",
        "contract",
        REASON_FUTURE_DATE,
        "a date or time more than a year after the file's stamp",
    ),
    Defect(
        "bad_date",
        "contract",
        REASON_BAD_VALUE,
        "an impossible calendar date (2026-02-30) or garbage in a date column",
    ),
    Defect("missing_required", "contract", REASON_MISSING_REQUIRED, "a required column left blank"),
    Defect(
        "duplicate_row",
        "contract",
        REASON_DUPLICATE_ROW,
        "exact copy of an earlier row of the same file (this label is on the second copy)",
    ),
    Defect("id_lowercase_x", "normalise", None, "check character X written as x"),
    Defect("id_fullwidth", "normalise", None, "ID written with full-width digits (１２３)"),
    Defect("id_spaces", "normalise", None, "spaces inside the ID (5111 8119 ...)"),
    Defect("id_dashes", "normalise", None, "dashes inside the ID (511181-19800101-1234)"),
    Defect("id_15digit", "normalise", None, "old 15-digit ID (people born 19xx)"),
    Defect("phone_plus86", "normalise", None, "mobile with +86 prefix"),
    Defect("phone_86dash", "normalise", None, "mobile with 86- prefix"),
    Defect("phone_spaces", "normalise", None, "mobile written 138 1234 5678"),
    Defect(
        "phone_landline",
        "normalise",
        None,
        "the household landline 0833-xxxxxxx instead of the mobile (shared by a household)",
    ),
    Defect(
        "date_format",
        "normalise",
        None,
        "date/time in another accepted spelling than the feed's usual one",
    ),
    Defect("name_typo", "linkage", None, "one character of the given name replaced"),
    Defect(
        "name_homophone",
        "linkage",
        None,
        "one character replaced by a same-pinyin character (张伟 → 张玮)",
    ),
    Defect("name_space", "linkage", None, "stray space inside or around the name"),
    Defect(
        "near_duplicate",
        "linkage",
        None,
        "second row with the same business key, one non-identifier field different",
    ),
)

#: label → defect; the order is the order labels appear in ``records.csv``.
DEFECTS: dict[str, Defect] = {d.label: d for d in _ALL}

#: The labels whose rows the pipeline must quarantine, with the expected reason.
QUARANTINE_REASON: dict[str, str] = {d.label: d.reason for d in _ALL if d.reason is not None}

#: Row-level, mutually exclusive quarantine defects (cell defects are separate).
ROW_QUARANTINE_LABELS: tuple[str, ...] = (
    "id_invalid_check",
    "id_malformed",
    "time_order",
    "future_date",
    "bad_date",
    "missing_required",
)
ID_SPELLING_LABELS: tuple[str, ...] = (
    "id_lowercase_x",
    "id_fullwidth",
    "id_spaces",
    "id_dashes",
    "id_15digit",
)
PHONE_SPELLING_LABELS: tuple[str, ...] = (
    "phone_plus86",
    "phone_86dash",
    "phone_spaces",
    "phone_landline",
)
NAME_LABELS: tuple[str, ...] = ("name_typo", "name_homophone", "name_space")

FULLWIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


def expected_reason(labels: str) -> str | None:
    """The quarantine reason a ';'-joined label string should produce, or None."""
    for label in labels.split(";") if labels else ():
        reason = QUARANTINE_REASON.get(label)
        if reason is not None:
            return reason
    return None

"""Linkage settings: committed defaults → a Splink ``SettingsCreator``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SETTINGS_FILE = Path(__file__).with_name("default_settings.json")


@dataclass(frozen=True)
class LinkageSettings:
    """The knobs of the probabilistic model (see ``default_settings.json``)."""

    threshold_match_probability: float
    probability_two_random_records_match: float
    blocking_rules: tuple[tuple[str, ...], ...]
    training_rules: tuple[tuple[str, ...], ...]
    u_max_pairs: int
    seed: int
    term_frequency_adjustments: frozenset[str]

    @classmethod
    def load(cls, path: Path = DEFAULT_SETTINGS_FILE) -> LinkageSettings:
        """Read settings from a JSON file (the committed defaults unless given)."""
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            threshold_match_probability=float(raw["threshold_match_probability"]),
            probability_two_random_records_match=float(raw["probability_two_random_records_match"]),
            blocking_rules=tuple(tuple(r) for r in raw["blocking_rules_to_generate_predictions"]),
            training_rules=tuple(tuple(r) for r in raw["em_training_blocking_rules"]),
            u_max_pairs=int(raw["u_max_pairs"]),
            seed=int(raw["seed"]),
            term_frequency_adjustments=frozenset(raw.get("term_frequency_adjustments", ())),
        )


def splink_settings(settings: LinkageSettings) -> Any:
    """Build the Splink ``SettingsCreator``: token comparisons only, exact levels.

    Names compare at two levels: the same name token, else the same toneless
    pinyin token (homophone typos such as 张伟 / 张玮 stay alike).
    """
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    tf_name = "name_token" in settings.term_frequency_adjustments
    name = cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.NullLevel("name_pinyin_token"),
            cll.ExactMatchLevel("name_token", term_frequency_adjustments=tf_name),
            cll.ExactMatchLevel("name_pinyin_token"),
            cll.ElseLevel(),
        ],
    )
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.NullLevel("address_code"),
            cll.ExactMatchLevel("address_code"),
            cll.ExactMatchLevel("village_code"),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=settings.probability_two_random_records_match,
        comparisons=[
            cl.ExactMatch("id_token"),
            name,
            cl.ExactMatch("phone_token"),
            cl.ExactMatch("name_dob_token"),
            address,
            cl.ExactMatch("birth_year"),
            cl.ExactMatch("sex"),
        ],
        blocking_rules_to_generate_predictions=[block_on(*r) for r in settings.blocking_rules],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=[],
    )

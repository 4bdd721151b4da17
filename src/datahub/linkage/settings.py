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
    em_max_pairs: int
    em_without_tf: bool
    duckdb_memory_limit: str | None
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
            em_max_pairs=int(raw["em_max_pairs"]),
            em_without_tf=bool(raw.get("em_without_tf", False)),
            duckdb_memory_limit=raw.get("duckdb_memory_limit"),
            seed=int(raw["seed"]),
            term_frequency_adjustments=frozenset(raw.get("term_frequency_adjustments", ())),
        )


def _comparisons() -> list[tuple[str, list[Any]]]:
    """Comparisons as (output name, levels); levels are exact matches on tokens, most specific first."""
    import splink.comparison_level_library as cll

    def exact(col: str) -> tuple[str, list[Any]]:
        return col, [cll.NullLevel(col), cll.ExactMatchLevel(col), cll.ElseLevel()]

    return [
        exact("id_token"),
        (
            # the same name token, else the same toneless pinyin (张伟 / 张玮 stay alike)
            "name",
            [
                cll.NullLevel("name_pinyin_token"),
                cll.ExactMatchLevel("name_token"),
                cll.ExactMatchLevel("name_pinyin_token"),
                cll.ElseLevel(),
            ],
        ),
        exact("phone_token"),
        exact("name_dob_token"),
        (
            "address",
            [
                cll.NullLevel("address_code"),
                cll.ExactMatchLevel("address_code"),
                cll.ExactMatchLevel("village_code"),
                cll.ElseLevel(),
            ],
        ),
        exact("birth_year"),
        exact("sex"),
    ]


def splink_settings(settings: LinkageSettings, u: dict[str, list[float]] | None = None) -> Any:
    """Build the Splink ``SettingsCreator``: token comparisons only, exact levels.

    ``u`` (per comparison, non-null levels in order) fixes the u probabilities,
    e.g. from :func:`datahub.linkage.u_values.u_from_id_contrasts`.
    """
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    comparisons: list[Any] = []
    for name, levels in _comparisons():
        if name == "name" and "name_token" in settings.term_frequency_adjustments:
            levels[1] = levels[1].configure(tf_adjustment_column="name_token")
        if u is not None and name in u:
            non_null = levels[1:]
            for i, (level, value) in enumerate(zip(non_null, u[name], strict=True), start=1):
                levels[i] = level.configure(u_probability=value)
        comparisons.append(cl.CustomComparison(comparison_levels=levels, output_column_name=name))
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=settings.probability_two_random_records_match,
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[block_on(*r) for r in settings.blocking_rules],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=[],
    )

"""Synthetic department feeds with ground truth (``datahub generate``).

One hidden population of persons lives in a synthetic 峨眉山市; every feed of
``datahub.sources.contracts`` is drawn from it, spelled as the department really
exports, and sprinkled with labelled defects (see :data:`defects.DEFECTS`). The
ground truth goes to ``<out>/_truth/``.
"""

from __future__ import annotations

from datahub.generate.config import DefectRates, GenerateConfig
from datahub.generate.defects import DEFECTS, QUARANTINE_REASON, Defect, expected_reason
from datahub.generate.run import GenerateResult, generate

__all__ = [
    "DEFECTS",
    "QUARANTINE_REASON",
    "Defect",
    "DefectRates",
    "GenerateConfig",
    "GenerateResult",
    "expected_reason",
    "generate",
]

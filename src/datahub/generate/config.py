"""Generator settings: the window, the population size and the defect rates."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class DefectRates:
    """Probability of each defect per *eligible* cell or row (see ``defects.DEFECTS``).

    Row-level quarantine defects are exclusive: a row carries at most one of them, so
    its expected quarantine reason is unambiguous. Cell-level cosmetic defects are
    exclusive per identifier cell (one spelling problem per ID / phone / name).
    """

    # contract-visible (quarantined)
    id_invalid_check: float = 0.006
    id_malformed: float = 0.002
    time_order: float = 0.006
    future_date: float = 0.003
    bad_date: float = 0.003
    missing_required: float = 0.004
    duplicate_row: float = 0.004
    # fixable by normalisation
    id_lowercase_x: float = 0.30
    id_fullwidth: float = 0.004
    id_spaces: float = 0.004
    id_dashes: float = 0.003
    id_15digit: float = 0.05
    phone_plus86: float = 0.01
    phone_86dash: float = 0.004
    phone_spaces: float = 0.004
    phone_landline: float = 0.15
    date_format: float = 0.02
    # linkage-level
    name_typo: float = 0.004
    name_homophone: float = 0.008
    name_space: float = 0.008
    near_duplicate: float = 0.003

    def scaled(self, factor: float) -> DefectRates:
        """All rates multiplied by ``factor`` (capped at 1); 0 gives clean feeds."""
        if factor < 0:
            raise ValueError("defect scale must be >= 0")
        return replace(
            self, **{f.name: min(1.0, getattr(self, f.name) * factor) for f in fields(self)}
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate. Same config (seed included) → byte-identical output."""

    persons: int = 3000
    seed: int = 20260601
    start: dt.date = dt.date(2026, 6, 1)
    end: dt.date = dt.date(2026, 7, 31)
    defect_scale: float = 1.0
    #: mean incidents per day before the tourist-season weight; None → persons / 150
    incidents_per_day: float | None = None
    rates: DefectRates = DefectRates()

    def __post_init__(self) -> None:
        if self.persons < 200:
            raise ValueError("need at least 200 persons (grid members, key persons, disputes)")
        if self.end < self.start:
            raise ValueError(f"window end {self.end} is before its start {self.start}")
        if self.incidents_per_day is not None and self.incidents_per_day < 0:
            raise ValueError("incidents per day must be >= 0")

    @property
    def effective_rates(self) -> DefectRates:
        return self.rates.scaled(self.defect_scale)

    @property
    def base_incidents_per_day(self) -> float:
        return self.incidents_per_day if self.incidents_per_day is not None else self.persons / 150

    @property
    def days(self) -> list[dt.date]:
        n = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=i) for i in range(n)]

    @property
    def months(self) -> list[str]:
        """YYYYMM stamps of every month the window touches."""
        seen: list[str] = []
        for d in self.days:
            m = d.strftime("%Y%m")
            if m not in seen:
                seen.append(m)
        return seen


#: Relative monthly incident / visitor weight (tourist season; domain notes, shape unverified).
SEASON_WEIGHT: dict[int, float] = {
    1: 1.0,
    2: 1.0,
    3: 0.6,
    4: 0.9,
    5: 0.9,
    6: 0.9,
    7: 1.7,
    8: 1.7,
    9: 0.9,
    10: 1.2,
    11: 0.6,
    12: 0.6,
}

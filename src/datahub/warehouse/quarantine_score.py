"""Score the quarantine against the generator's injected defects (``_truth/records.csv``).

A truth row is *expected in quarantine* when one of its defect labels maps to a
quarantine reason (``datahub.generate.defects.expected_reason``); labels that
normalisation fixes or that only matter for linkage must not be quarantined.
Predicted = rows in ``quarantine.*`` of currently loaded batches. The
warehouse is opened read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from datahub.config import Paths
from datahub.warehouse.db import connect


@dataclass
class QuarantineScore:
    true_positive: int
    false_positive: int
    false_negative: int
    reason_agree: int
    by_reason: pd.DataFrame

    @property
    def precision(self) -> float:
        n = self.true_positive + self.false_positive
        return self.true_positive / n if n else 1.0

    @property
    def recall(self) -> float:
        n = self.true_positive + self.false_negative
        return self.true_positive / n if n else 1.0

    def render(self) -> str:
        lines = [
            f"quarantine precision {self.precision:.3f}  recall {self.recall:.3f}  "
            f"(tp {self.true_positive}, fp {self.false_positive}, fn {self.false_negative}; "
            f"expected reason among the row's reasons for {self.reason_agree} of {self.true_positive})",
            self.by_reason.to_string(index=False),
        ]
        return "\n".join(lines)


def _truth(sources: Path) -> pd.DataFrame:
    from datahub.generate.defects import expected_reason

    rec = pd.read_csv(sources / "_truth" / "records.csv", dtype=str, keep_default_na=False)
    rec["expected"] = rec["defects"].map(expected_reason)
    exp = rec[rec["expected"].notna()].drop_duplicates(["file", "row_number"])
    return pd.DataFrame(
        {
            "file": exp["file"],
            "row_number": exp["row_number"].astype(int),
            "expected": exp["expected"],
        }
    )


def _predicted(paths: Paths) -> pd.DataFrame:
    con = connect(paths.warehouse, read_only=True)
    try:
        tables = [
            str(t)
            for (t,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'quarantine'"
            ).fetchall()
        ]
        parts = []
        for t in tables:
            dept = t.split("__", 1)[0]
            df = con.execute(
                f"SELECT ? || '/' || q._source_file AS file, q._row_number AS row_number, q._reasons AS reasons "
                f'FROM quarantine."{t}" q JOIN audit.batch_ledger l ON l.batch_id = q._batch_id '
                "WHERE l.status = 'loaded'",
                [dept],
            ).df()
            parts.append(df)
    finally:
        con.close()
    if not parts:
        return pd.DataFrame({"file": [], "row_number": [], "reasons": []})
    return pd.concat(parts, ignore_index=True)


def quarantine_score(paths: Paths, sources: Path) -> QuarantineScore:
    """Compare quarantined rows with the rows the truth says must be quarantined."""
    truth = _truth(sources)
    pred = _predicted(paths)
    pred["row_number"] = pred["row_number"].astype(int)
    m = truth.merge(pred, on=["file", "row_number"], how="outer", indicator=True)
    tp = m[m["_merge"] == "both"]
    agree = int(
        sum(e in str(r).split(";") for e, r in zip(tp["expected"], tp["reasons"], strict=True))
    )
    by_reason = (
        m.assign(
            reason=m["expected"].fillna("(not expected)"),
            caught=m["_merge"] == "both",
            missed=m["_merge"] == "left_only",
            extra=m["_merge"] == "right_only",
        )
        .groupby("reason", as_index=False)[["caught", "missed", "extra"]]
        .sum()
    )
    return QuarantineScore(
        true_positive=len(tp),
        false_positive=int((m["_merge"] == "right_only").sum()),
        false_negative=int((m["_merge"] == "left_only").sum()),
        reason_agree=agree,
        by_reason=by_reason,
    )

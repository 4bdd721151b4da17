"""Score a linkage against the generator's ground truth (``<sources>/_truth/records.csv``).

Pairwise: a pair of records is predicted linked when both have the same
person_key, truly linked when both belong to the same true person. Records
without any usable identifier (see :func:`datahub.linkage.records.usable`) are
scored separately; records whose identifiers were quarantined never reach the
warehouse and are therefore out of scope.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from datahub.linkage.clustering import RULE_UNUSABLE


@dataclass(frozen=True)
class LinkageScore:
    """Pairwise precision / recall / F1 plus split and merge shares of true persons."""

    records: int
    persons: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float
    split_share: float  # true persons spread over more than one person_key
    merged_share: float  # true persons sharing a person_key with another true person
    unusable_records: int  # no ID, no mobile, no name+address: not scored
    unmatched_records: int  # linked records the truth does not list

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def read_truth(sources: Path) -> pd.DataFrame:
    """The truth rows: ``source_file`` (base name), ``source_row``, ``role``, ``person_id``."""
    truth = pd.read_csv(sources / "_truth" / "records.csv", dtype=str, keep_default_na=False)
    file_col = "file" if "file" in truth.columns else "source_file"
    row_col = "row_number" if "row_number" in truth.columns else "source_row"
    out = pd.DataFrame(
        {
            "source_file": truth[file_col].map(lambda p: Path(p).name),
            "source_row": pd.to_numeric(truth[row_col]).astype("int64"),
            "role": truth["role"],
            "person_id": truth["person_id"],
        }
    )
    return out[out["person_id"] != ""]


def score_linkage(xref: pd.DataFrame, truth: pd.DataFrame) -> LinkageScore:
    """Score ``xref`` (source_file, source_row, role, person_key, link_rule) against truth."""
    x = xref.copy()
    x["source_file"] = x["source_file"].map(lambda p: Path(str(p)).name)
    x["source_row"] = x["source_row"].astype("int64")
    unusable = int((x["link_rule"] == RULE_UNUSABLE).sum())
    x = x[x["link_rule"] != RULE_UNUSABLE]
    joined = x.merge(truth, on=["source_file", "source_row", "role"], how="left")
    unmatched = int(joined["person_id"].isna().sum())
    joined = joined[joined["person_id"].notna()]
    true_pairs = _pairs(joined.groupby("person_id").size())
    predicted = _pairs(joined.groupby("person_key").size())
    correct = _pairs(joined.groupby(["person_key", "person_id"]).size())
    precision = correct / predicted if predicted else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    keys_per_person = joined.groupby("person_id")["person_key"].nunique()
    persons_per_key = joined.groupby("person_key")["person_id"].nunique()
    merged_keys = set(persons_per_key[persons_per_key > 1].index)
    merged_persons = joined[joined["person_key"].isin(merged_keys)]["person_id"].nunique()
    n_persons = int(keys_per_person.size)
    return LinkageScore(
        records=len(joined),
        persons=n_persons,
        true_pairs=true_pairs,
        predicted_pairs=predicted,
        correct_pairs=correct,
        precision=precision,
        recall=recall,
        f1=f1,
        split_share=float((keys_per_person > 1).sum() / n_persons) if n_persons else 0.0,
        merged_share=float(merged_persons / n_persons) if n_persons else 0.0,
        unusable_records=unusable,
        unmatched_records=unmatched,
    )

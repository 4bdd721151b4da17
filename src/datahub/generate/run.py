"""The generate job: world → drafts → defects → files + ground truth."""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from datahub.generate.config import GenerateConfig
from datahub.generate.feeds import build_all
from datahub.generate.inject import Counts, inject
from datahub.generate.world import build_world
from datahub.generate.writer import TRUTH_DIR, WrittenFile, write_feed, write_truth
from datahub.sources.contracts import DEPARTMENTS

GENERATOR_VERSION = 1


@dataclass(frozen=True)
class GenerateResult:
    out: Path
    files: list[WrittenFile]
    rows_by_feed: dict[str, int]
    manifest: dict[str, object]


def _rng(seed: int, *parts: str) -> np.random.Generator:
    # crc32 of the feed key: each feed has its own stream, stable across Python runs
    return np.random.default_rng([seed, *(zlib.crc32(p.encode()) for p in parts)])


def generate(
    out: Path, config: GenerateConfig, progress: Callable[[str], None] | None = None
) -> GenerateResult:
    """Write all feeds for ``config`` below ``out`` (department folders are replaced)."""
    say = progress or (lambda _msg: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for d in (*DEPARTMENTS, TRUTH_DIR):
        if (out / d).exists():
            shutil.rmtree(out / d)
    say(f"building the world: {config.persons} persons, window {config.start} → {config.end}")
    world = build_world(config, _rng(config.seed, "world"))
    drafts = build_all(world, lambda key: _rng(config.seed, "feed", key))
    rates = config.effective_rates
    counts = Counts()
    files: list[WrittenFile] = []
    records: list[np.ndarray] = []
    rows_by_feed: dict[str, int] = {}
    for draft in drafts:
        rendered = inject(draft, world, rates, _rng(config.seed, "defects", draft.feed.key), counts)
        written = write_feed(out, rendered, world, records)
        files.extend(written)
        rows_by_feed[draft.feed.key] = len(rendered)
        say(f"  {draft.feed.key:<34} {len(written):>3} files {len(rendered):>9,} rows")
    manifest: dict[str, object] = {
        "generator_version": GENERATOR_VERSION,
        "seed": config.seed,
        "persons": config.persons,
        "window": {"start": config.start.isoformat(), "end": config.end.isoformat()},
        "defect_scale": config.defect_scale,
        "incidents_per_day": config.base_incidents_per_day,
        "defect_rates": rates.as_dict(),
        "defect_counts": {
            label: {"eligible": counts.eligible[label], "applied": counts.applied[label]}
            for label in counts.eligible
        },
        "rows_by_feed": rows_by_feed,
        "files": [asdict(f) for f in files],
    }
    say("writing ground truth to _truth/")
    write_truth(out, world, records, manifest)
    return GenerateResult(out, files, rows_by_feed, manifest)

"""The committed ``sample_sources/`` is what the generator makes, and its README is in sync."""

from __future__ import annotations

import json
from pathlib import Path

from datahub.config import SAMPLE_SOURCES
from datahub.generate import GenerateConfig, generate
from datahub.generate.readme import render_readme
from datahub.sources.contracts import FEEDS


def _manifest(root: Path) -> dict[str, object]:
    return json.loads((root / "_truth" / "manifest.json").read_text(encoding="utf-8"))


def test_readme_in_sync_with_contracts_and_sample() -> None:
    committed = (SAMPLE_SOURCES / "README.md").read_text(encoding="utf-8")
    assert committed == render_readme(_manifest(SAMPLE_SOURCES)), "run `make sample`"
    for feed in FEEDS:
        assert f"`{feed.department}/{feed.name}` — {feed.label}" in committed
        for c in feed.columns:
            assert f"| `{c.name}` | {c.label} |" in committed


def test_committed_sample_is_the_generator_output(tmp_path: Path) -> None:
    committed = _manifest(SAMPLE_SOURCES)
    # the Makefile's `make sample` settings (the defaults of GenerateConfig)
    result = generate(tmp_path, GenerateConfig(persons=3000, seed=20260601))
    fresh = result.manifest
    assert committed["persons"] == 3000 and committed["seed"] == 20260601
    assert [(f["path"], f["sha256"]) for f in committed["files"]] == [  # type: ignore[union-attr,index]
        (f["path"], f["sha256"])
        for f in fresh["files"]  # type: ignore[union-attr,index]
    ], "sample_sources/ is stale: run `make sample`"
    for name in ("persons.csv", "records.csv", "addresses.csv"):
        assert (tmp_path / "_truth" / name).read_bytes() == (
            SAMPLE_SOURCES / "_truth" / name
        ).read_bytes()

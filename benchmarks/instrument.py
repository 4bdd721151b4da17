"""Attribute the real pipeline's time to stages by wrapping its public functions.

Nothing is replaced: each wrapper calls the original function inside a
:class:`~measure.StageClock` stage. The wrappers are installed in the benchmark
child process only, on every ``datahub`` module that imported the function by
name, so ``datahub.pipeline`` runs exactly its own code path.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from measure import StageClock

#: stage → "module:attr" or "module:Class.method" (missing ones are skipped: the
#: benchmark follows the code as it is, and says which hooks it found).
STAGE_HOOKS: dict[str, tuple[str, ...]] = {
    "read": (
        "datahub.sources.reader:read_header",
        "datahub.sources.reader:iter_tables",
    ),
    # cleaning, typing, identifier normalisation (fast paths and caches), HMAC tokens,
    # check flags, expectation masks and reasons: one DuckDB query per chunk
    "normalise + pseudonymise (SQL)": ("datahub.prepare:SqlChunkEngine.process",),
    # identifier values no cache holds yet: odd spellings, names and pinyin in Python
    "normalise (new identifiers, Python)": ("datahub.prepare:SqlChunkEngine._learn",),
    # sealing new values (when learned) and the chunk's vault rows
    "pseudonymise: vault seal": (
        "datahub.prepare:SqlChunkEngine._seal",
        "datahub.privacy.cipher:VaultCipher.seal_many",
    ),
    "validate": (
        "datahub.quality.gx_runner:FileValidation.add_chunk",
        "datahub.quality.gx_runner:FileValidation.finish",
    ),
    "write staging": (
        "datahub.prepare:_Writers.write",
        "datahub.prepare:_Writers.close",
    ),
    "load": ("datahub.pipeline:load",),
    "build models": ("datahub.warehouse.models:run_models",),
    "link": ("datahub.linkage.link:link_persons",),
    "publish": ("datahub.warehouse.publish:publish_build",),
}


def _wrap(fn: Callable[..., Any], stage: str, clock: StageClock) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            gen = fn(*args, **kwargs)
            while True:
                with clock.stage(stage):
                    try:
                        item = next(gen)
                    except StopIteration:
                        return
                yield item

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with clock.stage(stage):
            return fn(*args, **kwargs)

    return wrapper


def install(clock: StageClock, hooks: dict[str, tuple[str, ...]] = STAGE_HOOKS) -> list[str]:
    """Wrap every hook that exists; return the hooks found (``stage=module:attr``)."""
    found: list[str] = []
    for stage, targets in hooks.items():
        for target in targets:
            module_name, attr = target.split(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            owner: Any = module
            *path, name = attr.split(".")
            for part in path:
                owner = getattr(owner, part, None)
            original = getattr(owner, name, None) if owner is not None else None
            if original is None or not callable(original):
                continue
            wrapped = _wrap(original, stage, clock)
            setattr(owner, name, wrapped)
            if not path:  # also rebind `from module import fn` copies in other datahub modules
                for mod in list(sys.modules.values()):
                    in_datahub = getattr(mod, "__name__", "").startswith("datahub")
                    if in_datahub and mod is not module and getattr(mod, name, None) is original:
                        setattr(mod, name, wrapped)
            found.append(f"{stage}={target}")
    return found


def label_per_feed(clock: StageClock) -> None:
    """Credit ingest time to the feed of each file.

    ``datahub.pipeline.prepare`` sets the process-wide label (GX runs in a
    helper thread within the prepare call), ``load_outcome`` labels the loader
    thread. Time inside either that no hooked stage claims is the stage
    ``other`` (file hashing, identification, result files, the ledger).
    """
    import datahub.pipeline as pipeline

    def feed_of(path: Any) -> str:
        from datahub.sources.contracts import feed_for_file

        p = Path(path)
        try:
            return feed_for_file(p.parent.name, p.name)[0].key
        except ValueError:
            return "unknown"

    prepare, load_outcome = pipeline.prepare, pipeline.load_outcome

    @functools.wraps(prepare)
    def prepare_labelled(path: Any, **kwargs: Any) -> Any:
        clock.label = feed_of(path)
        try:
            with clock.stage("other"):
                return prepare(path, **kwargs)
        finally:
            clock.label = "all"

    @functools.wraps(load_outcome)
    def load_labelled(path: Any, batch: Any, **kwargs: Any) -> Any:
        with clock.thread_label(feed_of(path)), clock.stage("other"):
            return load_outcome(path, batch, **kwargs)

    pipeline.prepare = prepare_labelled  # type: ignore[assignment]
    pipeline.load_outcome = load_labelled  # type: ignore[assignment]

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
        "datahub.sources.reader:iter_chunks",
        "datahub.sources.parse:type_chunk",
        "datahub.sources.parse:raw_strings",
    ),
    "normalise": (
        "datahub.privacy.normalise:normalise_ids",
        "datahub.privacy.normalise:normalise_phones",
        "datahub.privacy.normalise:normalise_names",
        "datahub.privacy.normalise:name_dob_values",
    ),
    "pseudonymise": ("datahub.privacy.pseudonymise:pseudonymise_feed",),
    "validate": (
        "datahub.quality.gx_runner:FileValidation.add_chunk",
        "datahub.quality.gx_runner:FileValidation.finish",
        "datahub.quality.checks:add_check_columns",
        "datahub.quality.checks:reason_masks",
        "datahub.quality.checks:row_reasons",
        "datahub.quality.checks:duplicate_rows",
    ),
    "write staging": (
        "datahub.pipeline:_Writers.write",
        "datahub.pipeline:_Writers.close",
        "datahub.quality.staging:to_arrow",
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
    """Credit ingest time to the feed of each file (``datahub.pipeline.ingest_file``).

    Time inside ``ingest_file`` that no hooked stage claims is the stage ``other``
    (file hashing, identification, result files).
    """
    import datahub.pipeline as pipeline

    original = pipeline.ingest_file

    @functools.wraps(original)
    def ingest_file(path: Any, **kwargs: Any) -> Any:
        from datahub.sources.contracts import feed_for_file

        p = Path(path)
        try:
            clock.label = feed_for_file(p.parent.name, p.name)[0].key
        except ValueError:
            clock.label = "unknown"
        try:
            with clock.stage("other"):
                return original(path, **kwargs)
        finally:
            clock.label = "all"

    pipeline.ingest_file = ingest_file  # type: ignore[assignment]

"""Measurement primitives: run a step in a fresh child process, time it, take its peak RSS.

Each benchmark step runs as ``python benchmarks/run.py --child <step> <json>`` so that
its peak resident memory (``ru_maxrss`` from ``wait4``) is its own and not the
orchestrator's. The child prints one JSON object on its last stdout line.
Inside a child, :class:`StageClock` splits the time into named stages and samples
the process RSS (psutil) to give each stage its own peak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

RUN_PY = Path(__file__).resolve().parent / "run.py"
MB = 1024 * 1024


@dataclass(frozen=True)
class ChildResult:
    """Wall time, peak RSS and the JSON payload of one child step."""

    wall_s: float
    peak_rss_mb: float
    payload: dict[str, Any]


class StepFailed(RuntimeError):
    """A child step exited non-zero (its stderr tail is in the message)."""


def run_child(
    step: str, args: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> ChildResult:
    """Run one step in a fresh interpreter; return wall seconds, peak RSS and its payload."""
    argv = [sys.executable, str(RUN_PY), "--child", step, json.dumps(dict(args))]
    child_env = {**os.environ, **(env or {})}
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env, text=True
    )
    out, err = _communicate_rusage(proc)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise StepFailed(f"step {step} failed ({proc.returncode}):\n{err[-4000:]}")
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    payload = json.loads(lines[-1]) if lines else {}
    return ChildResult(wall, proc._bench_maxrss_kb / 1024, payload)  # type: ignore[attr-defined]


def _communicate_rusage(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Read the child's output, then reap it with wait4 to get its ru_maxrss (KiB on Linux)."""
    assert proc.stdout is not None and proc.stderr is not None
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    t_out = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()))  # type: ignore[union-attr]
    t_err = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()))  # type: ignore[union-attr]
    t_out.start()
    t_err.start()
    _, status, usage = os.wait4(proc.pid, 0)
    t_out.join()
    t_err.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc._bench_maxrss_kb = usage.ru_maxrss  # type: ignore[attr-defined]
    return "".join(out_chunks), "".join(err_chunks)


@dataclass
class StageClock:
    """Exclusive busy time and sampled peak RSS per named stage, inside one process.

    Stages nest within a thread (a prepare call runs the reader, the engine, the
    vault seal): time spent in an inner stage is not counted in the outer one.
    Each thread keeps its own stack, so a stage running in a background thread
    (GX one chunk behind the engine, the loader one file behind the prepare)
    is timed too; the seconds of a stage are then *busy* seconds, and stages of
    different threads overlap in wall time. Each RSS sample is credited to the
    innermost running stage of every thread. Time outside every stage is not
    recorded here.

    ``label`` (e.g. the feed being ingested) is process-wide; a thread may
    override it for itself with :meth:`thread_label`.
    """

    interval_s: float = 0.01
    #: label → stage → seconds / calls / peak_rss_mb
    stages: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    label: str = "all"

    def __post_init__(self) -> None:
        self._proc = psutil.Process()
        # thread → its stack of (label, stage, start of the stage's current slice)
        self._stacks: dict[int, list[tuple[str, str, float]]] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _entry(self, label: str, name: str) -> dict[str, float]:
        by_stage = self.stages.setdefault(label, {})
        return by_stage.setdefault(name, {"seconds": 0.0, "calls": 0, "peak_rss_mb": 0.0})

    def current_label(self) -> str:
        return getattr(self._local, "label", None) or self.label

    @contextmanager
    def thread_label(self, label: str) -> Iterator[None]:
        """Credit this thread's stages to ``label`` inside the block."""
        before = getattr(self._local, "label", None)
        self._local.label = label
        try:
            yield
        finally:
            self._local.label = before

    def _credit_rss(self) -> None:
        rss = self._proc.memory_info().rss / MB
        with self._lock:
            for stack in self._stacks.values():
                if stack:
                    label, name, _ = stack[-1]
                    e = self._entry(label, name)
                    e["peak_rss_mb"] = max(e["peak_rss_mb"], rss)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._credit_rss()
            time.sleep(self.interval_s)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a block as ``name``; calls accumulate (a stage may run once per chunk)."""
        now = time.perf_counter()
        label = self.current_label()
        with self._lock:
            stack = self._stacks.setdefault(threading.get_ident(), [])
            if stack:  # pause the enclosing stage of this thread
                outer_label, outer, since = stack[-1]
                self._entry(outer_label, outer)["seconds"] += now - since
            stack.append((label, name, now))
            self._entry(label, name)["calls"] += 1
        self._credit_rss()
        try:
            yield
        finally:
            self._credit_rss()
            now = time.perf_counter()
            with self._lock:
                stack = self._stacks[threading.get_ident()]
                inner_label, inner, since = stack.pop()
                self._entry(inner_label, inner)["seconds"] += now - since
                if stack:  # resume the enclosing stage
                    stack[-1] = (stack[-1][0], stack[-1][1], now)

    def close(self) -> dict[str, dict[str, dict[str, float]]]:
        self._stop.set()
        self._thread.join()
        return self.stages


def emit(payload: Mapping[str, Any]) -> None:
    """Print a child's result as the last stdout line."""
    sys.stdout.write("\n" + json.dumps(dict(payload), default=str) + "\n")
    sys.stdout.flush()


def rows_per_s(rows: float, seconds: float) -> float | None:
    return round(rows / seconds, 1) if seconds > 0 else None


def linear_fit_ok(
    scales: Sequence[float], seconds: Sequence[float], tolerance: float = 0.35
) -> bool:
    """True when time per unit of scale stays within ``tolerance`` of the base step's.

    Linear scaling means seconds/scale is constant; a fixed start-up cost makes
    larger scales *cheaper* per unit, so only growth beyond the tolerance fails.
    """
    if not scales:
        return True
    base = seconds[0] / scales[0]
    return all(s / k <= base * (1 + tolerance) for k, s in zip(scales, seconds, strict=True))


def memory_flat(peaks_mb: Sequence[float], factor: float = 1.5) -> bool:
    """True when the largest peak is within ``factor`` of the smallest."""
    return not peaks_mb or max(peaks_mb) <= factor * min(peaks_mb)

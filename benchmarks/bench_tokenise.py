"""Benchmark: tokenise N synthetic valid ID numbers, next to DuckDB's own sha256.

Usage::

    .venv/bin/python benchmarks/bench_tokenise.py [--n 2000000] [--json benchmarks/results/tokenise.json]

Reports values/s for each HMAC engine, for the full ``tokenise_series`` path
(factorize + HMAC + map back), for DuckDB ``sha256`` over the same column (an
unkeyed hash: the floor for any SQL-side hashing) and the ratio. Not part of
``make test``; the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from datahub.identifiers import ID_CHECK_MAP, ID_WEIGHTS
from datahub.privacy.tokens import tokenise_series, tokenise_unique
from datahub.warehouse.db import memory

KEY = hashlib.sha256(b"benchmark key, not a real one").digest()


def synthetic_ids(n: int, seed: int = 20260601) -> pd.Series:
    """``n`` valid 18-digit IDs (Sichuan regions, 1940–2010 births), built with numpy."""
    rng = np.random.default_rng(seed)
    regions = np.array([511181, 511102, 511111, 510104, 510107, 511123])[rng.integers(0, 6, n)]
    days = rng.integers(0, (pd.Timestamp("2010-12-31") - pd.Timestamp("1940-01-01")).days, n)
    births = (pd.Timestamp("1940-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y%m%d")
    seq = rng.integers(0, 1000, n)
    first17 = (
        pd.Series(regions.astype(str)) + pd.Series(births) + pd.Series(seq).map("{:03d}".format)
    )
    digits = np.frombuffer("".join(first17).encode(), dtype=np.uint8).reshape(n, 17) - ord("0")
    check = (digits.astype(np.int64) @ np.array(ID_WEIGHTS)) % 11
    return first17 + pd.Series(np.array(list(ID_CHECK_MAP))[check])


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all threads): CPU time stays meaningful on a busy machine."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--json", type=Path, default=None, help="write results as JSON here")
    ap.add_argument(
        "--python-sample", type=int, default=300_000, help="values for the slow per-value baselines"
    )
    args = ap.parse_args(argv)

    ids = synthetic_ids(args.n)
    uniques = ids.drop_duplicates().tolist()
    arrow_ids = pa.table({"v": pa.array(ids.tolist(), type=pa.string())})
    sample = uniques[: args.python_sample]
    rows: list[tuple[str, int, tuple[float, float]]] = []

    con = memory()
    con.register("ids", arrow_ids)
    sha = timed(lambda: con.sql("SELECT sha256(v) AS h FROM ids").to_arrow_table())
    con.close()
    rows.append(("duckdb sha256 (unkeyed, reference)", args.n, sha))
    rows.append(
        (
            "tokenise_series (factorize + auto engine)",
            args.n,
            timed(lambda: tokenise_series(KEY, 1, ids)),
        )
    )
    rows.append(
        (
            "HMAC engine duckdb (distinct values)",
            len(uniques),
            timed(lambda: tokenise_unique(KEY, 1, uniques, engine="duckdb")),
        )
    )
    rows.append(
        (
            "HMAC engine hashlib states (distinct)",
            len(uniques),
            timed(lambda: tokenise_unique(KEY, 1, uniques, engine="hashlib")),
        )
    )
    rows.append(
        (
            "python hmac.new per value (baseline)",
            len(sample),
            timed(
                lambda: [hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest()[:32] for v in sample]
            ),
        )
    )

    sha_rate = args.n / sha[0]
    results = []
    print(
        f"{'what':44s} {'values':>10s} {'seconds':>8s} {'values/s':>12s} {'vs sha256':>9s}"
        f" {'values/cpu-s':>13s}"
    )
    for what, n, (secs, cpu) in rows:
        rate = n / secs
        results.append(
            {
                "what": what,
                "values": n,
                "seconds": round(secs, 3),
                "cpu_seconds": round(cpu, 3),
                "values_per_s": round(rate),
                "values_per_cpu_s": round(n / cpu) if cpu else None,
                "ratio_to_sha256": round(rate / sha_rate, 3),
            }
        )
        print(
            f"{what:44s} {n:>10,d} {secs:>8.2f} {rate:>12,.0f} {rate / sha_rate:>9.2f}"
            f" {n / cpu if cpu else float('nan'):>13,.0f}"
        )
    load = os.getloadavg()[0]
    print(
        f"distinct IDs: {len(uniques):,} of {args.n:,}; cpus: {os.cpu_count()}; load avg {load:.1f}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "n": args.n,
            "distinct": len(uniques),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "load_avg_1m": load,
        }
        args.json.write_text(
            json.dumps({"meta": meta, "results": results}, indent=2), encoding="utf-8"
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""CLI commands: generate."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, keys_app: typer.Typer, audit_app: typer.Typer) -> None:
    """Register this area's commands."""

    @app.command("generate")
    def generate_cmd(
        out: Annotated[
            Path,
            typer.Option(
                "--out", help="Output folder; its department folders and _truth/ are replaced."
            ),
        ],
        persons: Annotated[
            int, typer.Option("--persons", min=200, help="Size of the hidden population.")
        ] = 3000,
        seed: Annotated[
            int,
            typer.Option("--seed", help="Random seed: same seed and options → identical bytes."),
        ] = 20260601,
        start: Annotated[
            dt.datetime,
            typer.Option("--start", formats=["%Y-%m-%d"], help="First day of the event window."),
        ] = dt.datetime(2026, 6, 1),
        end: Annotated[
            dt.datetime,
            typer.Option(
                "--end", formats=["%Y-%m-%d"], help="Last day; snapshots are stamped with it."
            ),
        ] = dt.datetime(2026, 7, 31),
        defect_scale: Annotated[
            float,
            typer.Option(
                "--defect-scale", min=0.0, help="Multiply every defect rate (0 = clean feeds)."
            ),
        ] = 1.0,
        incidents_per_day: Annotated[
            float | None,
            typer.Option(
                "--incidents-per-day",
                min=0.0,
                help="Mean 110 incidents per day before the tourist-season weight (default persons/150).",
            ),
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    ) -> None:
        """Write synthetic feeds for all 16 department feeds, with ground truth in OUT/_truth/.

        Feeds follow src/datahub/sources/contracts.py: OUT/<department>/<feed>_<stamp>.csv in each
        department's encoding (community GBK+CRLF, social security UTF-8 BOM+CRLF, others UTF-8).
        Event feeds get one file per day or month of the window, snapshots one file stamped with
        the window end. Defects are injected at known rates and labelled in _truth/records.csv.
        """
        from datahub.generate import GenerateConfig, generate
        from datahub.generate.readme import write_readme

        try:
            config = GenerateConfig(
                persons=persons,
                seed=seed,
                start=start.date(),
                end=end.date(),
                defect_scale=defect_scale,
                incidents_per_day=incidents_per_day,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        t0 = time.perf_counter()
        result = generate(out, config, progress=None if quiet else typer.echo)
        write_readme(out / "README.md", result.manifest)
        if not quiet:
            total = sum(result.rows_by_feed.values())
            typer.echo(
                f"done: {len(result.files)} files, {total:,} rows in {out} "
                f"({time.perf_counter() - t0:.1f} s); ground truth in {out / '_truth'}"
            )

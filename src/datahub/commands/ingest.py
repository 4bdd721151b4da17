"""CLI commands: ingest, run, demo, suites, airflow-standalone, audit quarantine-score."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from datahub.config import EXPECTATIONS_DIR, SAMPLE_SOURCES, Paths


def _quiet() -> None:
    from datahub.quality.gx_runner import quiet_gx_logging

    quiet_gx_logging()


def _print_outcome(i: int, n: int, o: object) -> None:
    from datahub.pipeline import FileOutcome

    assert isinstance(o, FileOutcome)
    line = (
        f"[{i:>4}/{n}] {o.path.name:<34} {o.status:<22} read {o.rows_read:>6}  "
        f"loaded {o.rows_loaded:>6}  quarantined {o.rows_quarantined:>5}  rejected {o.rows_rejected:>6}"
    )
    typer.echo(line)
    if o.status in ("rejected", "failed") and o.message:
        typer.echo(f"         {o.message}", err=True)


def _summary_table(df: object) -> None:
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    assert isinstance(df, pd.DataFrame)
    t = Table(title="ingestion summary (rows per feed)")
    for c in df.columns:
        t.add_column(str(c), justify="left" if c == "feed" else "right")
    for row in df.itertuples(index=False):
        t.add_row(*[str(v) for v in row])
    Console().print(t)


def register(app: typer.Typer, keys_app: typer.Typer, audit_app: typer.Typer) -> None:
    """Register this area's commands."""

    @app.command("ingest")
    def ingest_cmd(
        department: Annotated[
            str, typer.Argument(help="police | government | social_security | community")
        ],
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="one feed file")],
        sources: Annotated[
            Path | None,
            typer.Option(
                help="sources folder for reference codes (default: the file's grandparent)"
            ),
        ] = None,
    ) -> None:
        """Ingest one feed file (prepare + load) and print its ledger outcome."""
        _quiet()
        from datahub import pipeline
        from datahub.privacy.keys import KeyProblem, ensure_dev_keys
        from datahub.warehouse.loader import open_warehouse

        paths = Paths.from_env()
        try:
            keyring = ensure_dev_keys(paths)
            with open_warehouse(paths) as con:
                o = pipeline.ingest_file(
                    file,
                    paths=paths,
                    keyring=keyring,
                    department=department,
                    sources_root=sources,
                    con=con,
                )
        except (KeyProblem, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        _print_outcome(1, 1, o)
        if o.message and o.status not in ("rejected", "failed"):
            typer.echo(f"         {o.message}")
        if o.status in ("rejected", "failed"):
            raise typer.Exit(1)

    @app.command("run")
    def run_cmd(
        sources: Annotated[
            Path, typer.Option(help="sources folder with one sub-folder per department")
        ] = SAMPLE_SOURCES,
        docs: Annotated[bool, typer.Option(help="build GX Data Docs at the end")] = True,
        workers: Annotated[
            int,
            typer.Option(
                min=1,
                help="processes preparing files in parallel (read → pseudonymise → validate); "
                "this process alone loads them, in file order",
            ),
        ] = 1,
        prune: Annotated[
            bool,
            typer.Option(
                "--prune-staging/--keep-staging",
                help="afterwards delete the staged Parquet of batches the ledger has settled "
                "(as the DAGs' prune_staging task does); --keep-staging leaves it for inspection",
            ),
        ] = True,
        feed: Annotated[
            list[str] | None,
            typer.Option(
                help="only this feed (e.g. police.incidents; repeatable); the folder's "
                "government code tables still serve the code checks",
            ),
        ] = None,
    ) -> None:
        """Ingest every feed file of a sources folder: snapshots first, then events by date.

        One process prepares each file (DuckDB on every core, GX in a second thread)
        while a background thread loads the one before, in file order."""
        _quiet()
        from datahub import pipeline
        from datahub.privacy.keys import KeyProblem, ensure_dev_keys
        from datahub.sources.contracts import FEEDS_BY_KEY

        unknown = sorted(set(feed or ()) - set(FEEDS_BY_KEY))
        if unknown:
            typer.echo(
                f"error: unknown feed(s) {', '.join(unknown)}; one of {', '.join(FEEDS_BY_KEY)}",
                err=True,
            )
            raise typer.Exit(2)
        paths = Paths.from_env()
        try:
            keyring = ensure_dev_keys(paths)
            outcomes = pipeline.run_sources(
                sources,
                paths=paths,
                keyring=keyring,
                progress=_print_outcome,
                build_docs=docs,
                workers=workers,
                feeds=tuple(feed) if feed else None,
            )
        except KeyProblem as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        _summary_table(pipeline.summarise(outcomes))
        if docs:
            typer.echo(f"Data Docs: {paths.data_docs / 'index.html'}")
        if prune:
            typer.echo("staging: " + pipeline.prune_staged(paths).summary())
        bad = [o for o in outcomes if o.status in ("rejected", "failed")]
        if bad:
            typer.echo(f"{len(bad)} file(s) rejected; see audit.batch_ledger", err=True)
            raise typer.Exit(1)

    @app.command("prune-staging")
    def prune_staging_cmd(
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="report what would be removed, remove nothing")
        ] = False,
    ) -> None:
        """Remove staged Parquet of batches the ledger has settled (loaded, rejected, duplicate,
        superseded). Batches waiting for their load and failed ones are kept."""
        from datahub import pipeline

        paths = Paths.from_env()
        typer.echo(pipeline.prune_staged(paths, dry_run=dry_run).summary(dry_run=dry_run))

    @app.command("demo")
    def demo_cmd(
        sources: Annotated[Path, typer.Option(help="sources folder")] = SAMPLE_SOURCES,
    ) -> None:
        """Create dev keys if needed, ingest the sample sources, print a summary and the Data Docs path."""
        _quiet()
        from datahub import pipeline

        paths = Paths.from_env()
        summary, docs = pipeline.demo(paths, sources, progress=_print_outcome)
        _summary_table(summary)
        typer.echo(f"warehouse: {paths.warehouse}")
        typer.echo(f"Data Docs: {docs}")
        from datahub.commands.warehouse import run_demo_build  # build + publish + example queries

        run_demo_build()

    @app.command("suites")
    def suites_cmd(
        write: bool = typer.Option(
            False, "--write", help="(re)write expectations/*.json from the contracts"
        ),
    ) -> None:
        """Check (default) or rewrite the GX suites in expectations/ against the contracts."""
        from datahub.quality.suites import stale_suites, write_suites

        if write:
            for p in write_suites(EXPECTATIONS_DIR):
                typer.echo(f"wrote {p}")
            return
        stale = stale_suites(EXPECTATIONS_DIR)
        if stale:
            typer.echo(
                f"suites out of date: {', '.join(stale)}; run `datahub suites --write` and review",
                err=True,
            )
            raise typer.Exit(1)
        typer.echo("all suites match the contracts")

    @app.command("data-docs")
    def data_docs_cmd() -> None:
        """Rebuild GX Data Docs from the stored validation results."""
        _quiet()
        from datahub import pipeline

        typer.echo(str(pipeline.build_data_docs(Paths.from_env())))

    @audit_app.command("quarantine-score")
    def quarantine_score_cmd(
        sources: Annotated[
            Path, typer.Argument(exists=True, file_okay=False, help="sources folder with _truth/")
        ],
        target: Annotated[float, typer.Option(help="minimum precision and recall")] = 0.95,
    ) -> None:
        """Precision/recall of the quarantine against the injected defects (reads the warehouse read-only)."""
        from datahub.warehouse.quarantine_score import quarantine_score

        paths = Paths.from_env()
        score = quarantine_score(paths, sources)
        typer.echo(score.render())
        if score.precision < target or score.recall < target:
            raise typer.Exit(1)

    @app.command("airflow-standalone")
    def airflow_standalone_cmd(
        port: int = typer.Option(8080, help="API server port"),
    ) -> None:
        """Run `airflow standalone` with this project's DAGs (AIRFLOW_HOME under DATAHUB_HOME)."""
        from datahub.airflow_support import airflow_env, ensure_pool
        from datahub.privacy.keys import ensure_dev_keys

        paths = Paths.from_env()
        ensure_dev_keys(paths)  # DAG tasks refuse to run without a key; create it before they start
        env = airflow_env(paths, port=port)
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        airflow = shutil.which("airflow", path=env["PATH"]) or "airflow"
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        ensure_pool(env)
        home = Path(env["AIRFLOW_HOME"])
        typer.echo(f"AIRFLOW_HOME={home}")
        typer.echo(
            f"UI: http://127.0.0.1:{port}/  user admin, password in {home / 'simple_auth_manager_passwords.json.generated'}"
        )
        raise typer.Exit(subprocess.call([airflow, "standalone"], env=env))

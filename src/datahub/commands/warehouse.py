"""CLI commands: build, publish, sql, catalog, audit linkage-score."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

FORMATS = ("table", "csv", "json")


def _print_frame(frame: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    """Print a result as a rich table, CSV or JSON (records)."""
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False))
        return
    if fmt == "json":
        sys.stdout.write(
            frame.to_json(orient="records", force_ascii=False, date_format="iso") + "\n"
        )
        return
    from rich.console import Console
    from rich.table import Table

    # piped output is not a terminal: give rich room instead of 80 columns
    console = Console(width=None if sys.stdout.isatty() else 250)
    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(str(col))
    for row in frame.itertuples(index=False):
        table.add_row(*("" if _isna(v) else _fmt(v) for v in row))
    console.print(table)


def _isna(value: object) -> bool:
    import math

    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    return fmt


def _published(home: Path | None) -> Path:
    from datahub.config import Paths

    path = Paths.from_env(home).published
    if not path.exists():
        raise typer.BadParameter(f"no published snapshot at {path}: run `datahub build` first")
    return path


def register(app: typer.Typer, keys_app: typer.Typer, audit_app: typer.Typer) -> None:
    """Register this area's commands."""

    @app.command()
    def build(
        sources: Annotated[
            Path | None,
            typer.Option(
                help="ingest this sources folder first (already loaded files are skipped)"
            ),
        ] = None,
        no_publish: Annotated[
            bool, typer.Option("--no-publish", help="stop after the mart gates")
        ] = False,
        home: Annotated[Path | None, typer.Option(help="DATAHUB_HOME")] = None,
    ) -> None:
        """Run SQL models, person linkage, marts and mart gates, then publish the snapshot."""
        from datahub.config import Paths
        from datahub.pipeline import build_warehouse, ingest_sources_for_build
        from datahub.warehouse.mart_gates import MartGateFailed

        paths = Paths.from_env(home)
        if sources is not None:
            ingest_sources_for_build(paths, sources)
        try:
            result = build_warehouse(paths, publish=not no_publish)
        except MartGateFailed as exc:
            typer.echo(f"not published: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))

    @app.command()
    def publish(
        jurisdiction: Annotated[
            str | None,
            typer.Option(help="division code: extract only this township/community and below"),
        ] = None,
        out: Annotated[Path | None, typer.Option(help="extract file (with --jurisdiction)")] = None,
        threshold: Annotated[
            int, typer.Option(help="suppress counts below this in aggregate marts")
        ] = 5,
        home: Annotated[Path | None, typer.Option(help="DATAHUB_HOME")] = None,
    ) -> None:
        """Publish the snapshot again, or write a jurisdiction extract of the published marts."""
        from datahub.config import Paths
        from datahub.pipeline import publish_extract_file, publish_warehouse

        paths = Paths.from_env(home)
        if jurisdiction is None:
            if out is not None:
                raise typer.BadParameter("--out needs --jurisdiction")
            typer.echo(json.dumps(publish_warehouse(paths), ensure_ascii=False, indent=2))
            return
        if out is None:
            raise typer.BadParameter("--jurisdiction needs --out FILE")
        try:
            counts = publish_extract_file(paths, jurisdiction, out, threshold=threshold)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(json.dumps(counts, ensure_ascii=False, indent=2))

    @app.command()
    def sql(
        query: Annotated[
            str | None, typer.Argument(help="SQL; omit for an interactive prompt")
        ] = None,
        format: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
        home: Annotated[Path | None, typer.Option(help="DATAHUB_HOME")] = None,
    ) -> None:
        """Query the published snapshot read-only (marts by bare name, e.g. mart_dispatch)."""
        import duckdb

        from datahub.warehouse.catalog import query as run_query

        fmt = _check_format(format)
        path = _published(home)
        if query is not None:
            try:
                frame = run_query(path, query)
            except duckdb.Error as exc:
                typer.echo(f"query failed: {exc}", err=True)
                raise typer.Exit(1) from exc
            _print_frame(frame, fmt)
            return
        typer.echo(
            "datahub sql — read-only on the published snapshot; end with ; — empty line or \\q quits"
        )
        buffer: list[str] = []
        while True:
            try:
                line = input("sql> " if not buffer else "...> ")
            except EOFError:
                break
            if line.strip() in ("\\q", "quit", "exit") or (not buffer and not line.strip()):
                break
            buffer.append(line)
            if line.rstrip().endswith(";"):
                text = "\n".join(buffer)
                buffer = []
                try:
                    _print_frame(run_query(path, text), fmt)
                except duckdb.Error as exc:
                    typer.echo(f"query failed: {exc}", err=True)

    @app.command()
    def catalog(
        table: Annotated[str | None, typer.Argument(help="only this table")] = None,
        home: Annotated[Path | None, typer.Option(help="DATAHUB_HOME")] = None,
    ) -> None:
        """List published tables and columns with their (bilingual) comments."""
        from rich.console import Console
        from rich.table import Table

        from datahub.warehouse.catalog import read_catalog

        console = Console()
        for entry in read_catalog(_published(home)):
            if table is not None and table not in (entry.name, entry.table):
                continue
            t = Table(title=f"{entry.name} — {entry.comment or ''}", title_justify="left")
            t.add_column("column")
            t.add_column("type")
            t.add_column("comment")
            for name, dtype, comment in entry.columns:
                t.add_row(name, dtype, comment or "")
            console.print(t)

    @audit_app.command("linkage-score")
    def linkage_score(
        sources: Annotated[Path, typer.Argument(help="sources folder with _truth/records.csv")],
        home: Annotated[Path | None, typer.Option(help="DATAHUB_HOME")] = None,
    ) -> None:
        """Pairwise precision / recall / F1 of the person linkage against the generator's truth."""
        from datahub.config import Paths
        from datahub.pipeline import linkage_score

        if not (sources / "_truth" / "records.csv").exists():
            raise typer.BadParameter(f"{sources} has no _truth/records.csv")
        score = linkage_score(Paths.from_env(home), sources)
        for key, value in score.items():
            typer.echo(
                f"{key:>20}: {value:.4f}" if isinstance(value, float) else f"{key:>20}: {value}"
            )


def run_demo_build(home: Path | None = None) -> None:
    """``datahub demo``'s second half: build, gate, publish, then three example analyst queries."""
    from datahub.config import Paths
    from datahub.pipeline import build_warehouse, demo_queries

    paths = Paths.from_env(home)
    result = build_warehouse(paths)
    typer.echo(
        f"built: {len(result['models'])} models, {result['linkage'].get('persons', 0)} persons "
        f"from {result['linkage'].get('records', 0)} person records; published {result['published']}"
    )
    for title, query, frame in demo_queries(paths):
        typer.echo(f'\n-- {title}\n$ datahub sql "{query}"')
        _print_frame(frame, "table")

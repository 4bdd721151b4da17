"""The ``datahub`` command.

Commands live in ``datahub.commands.<area>``; each module registers its own
commands on the groups below. Heavy imports (Airflow, GX, Splink) happen inside
the command functions so that ``datahub --help`` stays instant.
"""

from __future__ import annotations

import typer

from datahub.commands import generate, ingest, privacy, warehouse

app = typer.Typer(
    name="datahub",
    help="峨眉山市 public-safety data hub: generate, ingest, pseudonymise, validate, link and publish.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold raw identifiers
)
keys_app = typer.Typer(help="Pseudonymisation keys: init, status, rotate.", no_args_is_help=True)
audit_app = typer.Typer(
    help="Auditor tools: leak scan, audit-log verification, quality and linkage scores.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")

for _module in (generate, privacy, ingest, warehouse):
    _module.register(app, keys_app, audit_app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

"""CLI commands: keys init|status|rotate, reidentify, audit verify, audit leaks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HomeOpt = typer.Option(None, "--home", help="DATAHUB_HOME (default: $DATAHUB_HOME or ./.datahub)")


def _paths(home: Path | None):  # -> Paths (imported lazily to keep --help instant)
    from datahub.config import Paths

    return Paths.from_env(home)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def keys_init(home: Path | None = HomeOpt) -> None:
    """Create the key file (refuses to overwrite an existing one)."""
    from datahub.privacy.keys import KeyProblem, init_keys

    paths = _paths(home)
    try:
        ring = init_keys(paths)
    except KeyProblem as exc:
        _fail(str(exc))
        return
    typer.echo(
        f"created {ring.path} (mode 0600): version {ring.current_version}, fingerprint {ring.fingerprint()}"
    )
    typer.echo("keep this file out of git and back it up: without it no token can be re-identified")


def keys_status(home: Path | None = HomeOpt) -> None:
    """Key file location, versions, fingerprints and whether the vault/warehouse match it."""
    import duckdb

    from datahub.privacy.keys import KeyProblem, check_canary, load_keyring
    from datahub.privacy.vault import open_vault
    from datahub.warehouse.db import connect
    from datahub.warehouse.retokenise import read_warehouse_canary

    paths = _paths(home)
    try:
        ring = load_keyring(paths)
    except KeyProblem as exc:
        _fail(str(exc))
        return
    typer.echo(f"key file:        {ring.path}")
    typer.echo(f"current version: {ring.current_version}")
    if ring.pending_version:
        typer.echo(
            f"pending version: {ring.pending_version} (rotation interrupted: run `datahub keys rotate`)"
        )
    for v in ring.versions:
        typer.echo(f"  v{v} fingerprint {ring.fingerprint(v)}")
    typer.echo(f"vault key fingerprint {ring.vault_fingerprint()}")
    problems = 0
    if paths.vault.exists():
        try:
            with open_vault(paths, ring, read_only=True) as vault:
                typer.echo(f"vault:           {paths.vault}: key matches, {vault.count()} tokens")
        except KeyProblem as exc:
            problems += 1
            typer.secho(f"vault:           {exc}", fg=typer.colors.RED)
        except duckdb.Error:
            typer.echo(f"vault:           {paths.vault}: in use by another process")
    else:
        typer.echo("vault:           not created yet")
    if paths.warehouse.exists():
        try:
            con = connect(paths.warehouse, read_only=True)
            try:
                stored = read_warehouse_canary(con)
            finally:
                con.close()
            check_canary(ring, stored, where="the warehouse")
            typer.echo(
                f"warehouse:       {paths.warehouse}: "
                + ("key matches" if stored else "no canary yet")
            )
        except KeyProblem as exc:
            problems += 1
            typer.secho(f"warehouse:       {exc}", fg=typer.colors.RED)
        except duckdb.Error:
            typer.echo(f"warehouse:       {paths.warehouse}: in use by another process")
    else:
        typer.echo("warehouse:       not created yet")
    if problems:
        raise typer.Exit(1)


def keys_rotate(home: Path | None = HomeOpt) -> None:
    """Create key version n+1 and re-tokenise the vault and the warehouse."""
    from datahub.privacy.keys import KeyProblem
    from datahub.privacy.rotation import rotate_keys

    paths = _paths(home)
    try:
        report = rotate_keys(paths)
    except KeyProblem as exc:
        _fail(str(exc))
        return
    verb = "resumed and finished" if report.resumed else "rotated"
    typer.echo(f"{verb}: key version {report.old_version} → {report.new_version}")
    typer.echo(f"vault: {report.vault_tokens} tokens re-computed")
    if report.warehouse is None:
        typer.echo("warehouse: not created yet (nothing to re-tokenise)")
    else:
        typer.echo(
            f"warehouse: {report.warehouse.total} values in {len(report.warehouse.updated)} token columns re-tokenised"
        )
    if report.build is not None:
        typer.echo(
            f"build file: {report.build.total} values in {len(report.build.updated)} token columns re-tokenised"
        )
    if report.republished is not None:
        typer.echo(f"published snapshot rebuilt: {report.republished}")


def reidentify(
    token: str = typer.Argument(..., help="a token k<version>_<32 hex>"),
    reason: str = typer.Option(..., "--reason", help="why (case number, legal basis); logged"),
    actor: str | None = typer.Option(None, "--actor", help="who asks (default: the OS user)"),
    home: Path | None = HomeOpt,
) -> None:
    """Show the original value behind a token. Needs a reason; every call is audit-logged."""
    from datahub.privacy.keys import KeyProblem, load_keyring
    from datahub.privacy.vault import ReidentificationError, open_vault

    paths = _paths(home)
    try:
        ring = load_keyring(paths)
        if not paths.vault.exists():
            _fail(f"no vault at {paths.vault}")
        with open_vault(paths, ring) as vault:
            value = vault.reidentify(token, reason, actor)
    except (KeyProblem, ReidentificationError) as exc:
        _fail(str(exc))
        return
    typer.echo(value)


def audit_verify(home: Path | None = HomeOpt) -> None:
    """Verify the re-identification audit log's hash chain (exit 1 if tampered)."""
    from datahub.privacy.audit_log import verify_audit_log
    from datahub.privacy.vault import read_audit_head

    paths = _paths(home)
    report = verify_audit_log(paths.audit_log, read_audit_head(paths))
    if report.ok:
        typer.echo(f"{paths.audit_log}: {report.entries} entries, chain intact")
        return
    for p in report.problems:
        typer.secho(f"{paths.audit_log}: {p}", fg=typer.colors.RED)
    raise typer.Exit(1)


def audit_leaks(
    targets: Annotated[
        list[Path] | None,
        typer.Argument(help="files/folders (default: warehouse, published, data_docs, gx, logs)"),
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option("--sources", help="feed folder: also look for its exact identifier values"),
    ] = None,
    home: Path | None = HomeOpt,
) -> None:
    """Scan outputs for raw identifiers (exit 1 when anything is found)."""
    from datahub.privacy.leaks import collect_source_values, scan_paths

    paths = _paths(home)
    roots = (
        list(targets)
        if targets
        else [
            paths.warehouse,
            paths.build,
            paths.build_previous,
            paths.published.parent,
            paths.data_docs,
            paths.gx_results,
            paths.logs,
        ]
    )
    values = collect_source_values(sources) if sources else None
    if values is not None:
        typer.echo(f"looking for {len(values)} distinct identifier values from {sources}")
    report = scan_paths(roots, values)
    for e in report.errors:
        typer.secho(f"warning: {e}", fg=typer.colors.YELLOW, err=True)
    for f in report.findings:
        typer.secho(str(f), fg=typer.colors.RED)
    typer.echo(f"scanned {len(report.scanned)} files/columns: {len(report.findings)} findings")
    if report.findings:
        raise typer.Exit(1)


def register(app: typer.Typer, keys_app: typer.Typer, audit_app: typer.Typer) -> None:
    """Register this area's commands."""
    keys_app.command("init")(keys_init)
    keys_app.command("status")(keys_status)
    keys_app.command("rotate")(keys_rotate)
    app.command("reidentify")(reidentify)
    audit_app.command("verify")(audit_verify)
    audit_app.command("leaks")(audit_leaks)

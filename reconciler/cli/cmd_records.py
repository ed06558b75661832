"""``records``: move and restore record data: export, import (between accounts), restore (a backup)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli import common

if TYPE_CHECKING:
    from reconciler.client import Client
    from reconciler.config import Target
    from reconciler.model import Schema
    from reconciler.records.restore import RestoreResult
    from reconciler.records.transfer import ImportResult


@common.cli.group()
def records() -> None:
    """Move and restore record data (export, import, restore a backup)."""


def _target(g: common.Globals, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
            what: str) -> Target:
    return common.single_target(common.project_of(g), envs, url, sandbox, rate, what)


async def _schema(client: Client, slug: str) -> Schema:
    found = await client.find_schema_by_slug(slug)
    if found is None or found.id is None:
        raise common.CommandError(f"no schema {slug} in the account (see `reconciler plan` or `reconciler export`)")
    return found


class _Progress:
    """``restoring: 120/137, about 3 s left`` on one rewritten line of a terminal's standard error;
    nothing elsewhere (CI logs get the summary line only)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = time.monotonic()
        self.shown = False
        self.on = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.on or total <= 0:
            return
        spent = time.monotonic() - self.started
        left = spent / done * (total - done) if done else None
        eta = f", about {left:.0f} s left" if left is not None and done < total else ""
        click.echo(f"\r{self.what}: {done}/{total}{eta}\033[K", err=True, nl=False)
        self.shown = True

    def end(self) -> None:
        if self.shown:
            click.echo("", err=True)


@records.command("export")
@common.global_options
@common.env_option
@common.account_options
@click.argument("slug")
@click.option("--format", "fmt_", type=click.Choice(["ndjson", "csv"]), default="ndjson", show_default=True)
@click.option("--filter", "filters", multiple=True, metavar="FIELD:OP:VALUE",
              help="Only the records matching (repeatable, ANDed), e.g. order-total:gte:100 or order-link:not_blank.")
@click.option("--out", type=click.Path(path_type=Path), help="File to write (default: standard output).")
@click.option("--drop-relationships", is_flag=True, help="Leave the relationships (contacts, accounts, deals) out.")
@click.pass_obj
def export_cmd(g: common.Globals, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
               timeout: float | None, slug: str, fmt_: str, filters: tuple[str, ...], out: Path | None,
               drop_relationships: bool) -> int:
    """Write the records of schema SLUG (portable: externalId, fields, relationships)."""
    from reconciler.records.transfer import export_records, filter_params
    from reconciler.writes import check_writable

    params = filter_params(filters)
    if out is not None and str(out) != common.STDOUT:
        check_writable(out)
    else:
        out = None
    target = _target(g, envs, url, sandbox, rate, "records export")
    common.say_target(target, "text" if out is not None else "stderr")

    async def job() -> int:
        async with common.client_for(target, common.deadline_of(timeout)) as client:
            schema = await _schema(client, slug)
            result = await export_records(client, schema, out, format=fmt_,  # type: ignore[arg-type]
                                          filters=params, drop_relationships=drop_relationships)
            return result.count

    count = common.run_async(job())
    line = f"Exported {count} record{'s' if count != 1 else ''} of {slug} to {out or 'standard output'}."
    if out is not None:
        click.echo(line)
    else:
        common.err(line)
    return common.EXIT_OK


@records.command("import")
@common.global_options
@common.env_option
@common.account_options
@click.argument("slug")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt_", type=click.Choice(["ndjson", "csv"]), default=None,
              help="The file's format (default: csv for a .csv file, else ndjson).")
@click.option("--drop-relationships", is_flag=True,
              help="Import without relationships (e.g. contacts of another account).")
@click.pass_obj
def import_cmd(g: common.Globals, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
               timeout: float | None, slug: str, file: Path, fmt_: str | None, drop_relationships: bool) -> int:
    """Upsert the records of FILE into schema SLUG by externalId (a re-run adds nothing)."""
    from reconciler.records.transfer import import_records

    if not file.is_file():
        raise common.CommandError(f"{file}: no such file")
    target = _target(g, envs, url, sandbox, rate, "records import")
    common.say_target(target)

    async def job() -> ImportResult:
        async with common.client_for(target, common.deadline_of(timeout)) as client:
            schema = await _schema(client, slug)
            return await import_records(client, schema, file, format=fmt_,  # type: ignore[arg-type]
                                        drop_relationships=drop_relationships)

    result = common.run_async(job())
    click.echo(f"Imported {file} into {slug}: {result.summary()}.")
    if result.failed:
        key, why = result.failures[0]
        raise common.CommandError(f"{result.failed} record{'s' if result.failed != 1 else ''} not imported; "
                                  f"the first, {key}: {why}")
    return common.EXIT_OK


@records.command("restore")
@common.global_options
@common.env_option
@common.account_options
@click.argument("backup", type=click.Path(path_type=Path))
@click.option("--field", "fields", multiple=True, metavar="ID", help="The backed-up field to restore.")
@click.option("--into", "intos", multiple=True, metavar="ID",
              help="The field to restore it into (e.g. the field re-created under a new id); one per --field.")
@click.pass_obj
def restore_cmd(g: common.Globals, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
                timeout: float | None, backup: Path, fields: tuple[str, ...], intos: tuple[str, ...]) -> int:
    """Put the values of the backup in directory BACKUP back (resumable: a re-run skips what is done)."""
    from reconciler.records.restore import restore_records

    if len(fields) != len(intos):
        raise click.UsageError("--field and --into go in pairs (--field OLD --into NEW)")
    if backup.name == "manifest.json":
        backup = backup.parent
    if not backup.is_dir():
        raise common.CommandError(f"{backup}: no such backup directory")
    target = _target(g, envs, url, sandbox, rate, "records restore")
    common.say_target(target)
    progress = _Progress("restoring")

    async def job() -> RestoreResult:
        async with common.client_for(target, common.deadline_of(timeout)) as client:
            return await restore_records(client, backup, field_map=dict(zip(fields, intos, strict=True)) or None,
                                         on_progress=progress)

    try:
        result = common.run_async(job())
    finally:
        progress.end()
    click.echo(f"Restored {backup}: {result.summary()}.")
    if result.failed:
        rid, why = result.failures[0]
        raise common.CommandError(f"{result.failed} record{'s' if result.failed != 1 else ''} not restored "
                                  f"(a re-run retries them); the first, {rid}: {why}")
    return common.EXIT_OK

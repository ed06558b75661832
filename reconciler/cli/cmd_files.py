"""Commands on the schema files: ``validate``, ``fmt``, ``export`` (bootstrap from an account) and
``json-schema``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler.cli import common


@common.cli.command()
@common.global_options
@click.pass_obj
def validate(g: common.Globals) -> int:
    """Parse and check the schema files (and reconciler.yaml) offline; report every problem."""
    from reconciler.files import FilesError

    errors: list[Any] = []
    p: common.Project | None = None
    try:
        p = common.project_of(g)
    except FilesError as exc:
        errors += exc.errors
    if p is None:
        from reconciler.project import PROJECT_FILE, ProjectConfig

        file = g.config or Path(PROJECT_FILE)
        p = common.Project(ProjectConfig(), file, g.dir if g.dir is not None else file.parent / "schemas")
    try:
        loaded = common.load_desired(p)
    except FilesError as exc:
        errors += exc.errors
    except common.CommandError:
        if not errors:
            raise
    if errors:  # the project file's problems (the directory is only a guess then) and the files'
        raise FilesError(errors)
    n = len(loaded.schemas)
    click.echo(f"{n} schema{'s' if n != 1 else ''} in {p.schemas_dir}/ valid.")
    return common.EXIT_OK


@common.cli.command()
@common.global_options
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when a file is not canonical.")
@click.option("--diff", "show_diff", is_flag=True, help="Print what would change as a unified diff.")
@click.pass_obj
def fmt(g: common.Globals, check: bool, show_diff: bool) -> int:
    """Rewrite the schema files in canonical form, keeping comments (invalid files are refused)."""
    from reconciler.files import fmt_dir

    p = common.project_of(g)
    common.require_schema_files(p)
    changed = fmt_dir(p.schemas_dir, check=check, schema_ref=common.schema_ref(p, p.schemas_dir),
                      project_file=p.file)  # refuses invalid files (the validate errors), writes nothing then
    for change in changed:
        if show_diff:
            click.echo(change.diff(), nl=False)
        click.echo(f"{'would reformat' if check else 'reformatted'} {change.path}")
    if check and changed:
        return common.EXIT_ERROR
    if not changed:
        click.echo("All schema files are canonical.")
    return common.EXIT_OK


@common.cli.command()
@common.global_options
@common.env_option
@common.account_options
@click.option("--slug", "slugs", multiple=True, help="Export only this schema (repeatable).")
@click.option("--out-dir", "out_dir", type=click.Path(path_type=Path),
              help="Where to write (default: the schemas directory).")
@click.option("--force", is_flag=True, help="Overwrite files that differ.")
@click.pass_obj
def export(g: common.Globals, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
           timeout: float | None, slugs: tuple[str, ...], out_dir: Path | None, force: bool) -> int:
    """Write live schemas as canonical YAML files (bootstrap a repository)."""
    from reconciler.files import export_schemas

    p = common.project_of(g)
    target = common.single_target(p, envs, url, sandbox, rate, "export")
    common.err(target.describe())
    live = common.live_schemas(target, timeout)
    if not live:
        click.echo("The account has no schemas: nothing to export.")
        return common.EXIT_OK
    if slugs:
        missing = sorted(set(slugs) - {s.slug for s in live})
        if missing:
            raise common.CommandError(f"no schema with slug {', '.join(missing)} in the account")
        live = [s for s in live if s.slug in slugs]
    from reconciler.json_schema import modeline_ref, write_copies

    directory = out_dir or p.schemas_dir
    # The editor schema lives in the project; files exported elsewhere get no modeline and no copy.
    inside = directory.resolve().is_relative_to(p.root)
    written = export_schemas(live, directory, force=force, project_file=p.file,
                             schema_ref=modeline_ref(p.root, directory) if inside else None)
    copies = write_copies(p.root, only_missing=True) if inside and written else []
    for path in [*written, *copies]:
        click.echo(f"wrote {path}")
    if not written:
        click.echo("Nothing to export: every file is up to date.")
    return common.EXIT_OK



@common.cli.command("json-schema")
@common.global_options
@click.option("--kind", type=click.Choice(["schema", "config", "plan", "events"]), default="schema", show_default=True,
              help="schema: for schemas/*.yaml; config: for reconciler.yaml; plan: for plan files (--out); "
                   "events: for the lines of apply --json.")
@click.option("--write", is_flag=True,
              help="Write both to json-schema/ next to reconciler.yaml (the copies the files' modeline points at).")
@click.pass_obj
def json_schema_cmd(g: common.Globals, kind: str, write: bool) -> int:
    """Print the JSON Schema of schema files or reconciler.yaml (editor completion and checks)."""
    from reconciler.json_schema import json_schema_text, write_copies

    if write:
        written = write_copies(common.project_of(g).root)  # a --config that does not exist is an error here too
        for path in written:
            click.echo(f"wrote {path}")
        if not written:
            click.echo("The JSON Schema copies are up to date.")
        return common.EXIT_OK
    click.echo(json_schema_text(kind), nl=False)
    return common.EXIT_OK



"""Command-line interface: a thin shell over the library.

Every command is a plain function that returns its exit code; only :func:`main` exits. Library
modules are imported inside the commands so that ``reconciler --help`` stays fast and loads no web
framework.

Exit codes: 0 ok / no changes, 1 error, 2 changes (``plan --detailed-exitcode``, ``drift``),
3 refused by a safety gate (``apply``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler import __version__

if TYPE_CHECKING:
    from reconciler.config import Target
    from reconciler.plan import Plan
    from reconciler.planner import PlanOptions
    from reconciler.project import ProjectConfig

T = TypeVar("T")

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_REFUSED = 0, 1, 2, 3


@dataclass
class Globals:
    dir: Path | None
    config: Path | None
    color: bool | None  # None: decide per stream (TTY and no NO_COLOR)

    def use_color(self, stream: Any = None) -> bool:
        if self.color is not None:
            return self.color
        stream = stream or sys.stdout
        return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


class CommandError(Exception):
    """A user-facing failure: printed as one ``Error:`` line, exit code 1 (or ``code``)."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


def _err(message: str) -> None:
    click.echo(message, err=True)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio

    return asyncio.run(coro)


# ---------------------------------------------------------------------------------------------
# Shared steps: project config, schema files, target, live state, planning


def _project(g: Globals) -> tuple[ProjectConfig, Path]:
    from reconciler.project import load_project

    path = g.config or Path("reconciler.yaml")
    return load_project(path), path


def _schemas_dir(g: Globals, project: ProjectConfig) -> Path:
    return g.dir if g.dir is not None else Path(project.schemas_dir)


def _load_desired(directory: Path) -> Any:
    from reconciler.files import load_dir

    return load_dir(directory)


def _target(project: ProjectConfig, env: str | None, url: str | None = None, token: str | None = None) -> Target:
    from reconciler.config import resolve_target

    return resolve_target(url=url, token=token, env=env, project=project, environ=os.environ, workdir=Path.cwd())


def _plan_options(project: ProjectConfig, target: Target, targets: tuple[str, ...], excludes: tuple[str, ...],
                  empty_dir: bool) -> PlanOptions:
    from datetime import datetime, timezone

    from reconciler.planner import PlanOptions

    return PlanOptions(
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        prune=project.prune,
        protect=frozenset(target.protect),
        targets=tuple(targets),
        excludes=tuple(excludes),
        target_url=target.url,
        desired_is_empty_dir=empty_dir,
    )


async def _fresh_plan(target: Target, desired: Any, options: PlanOptions, *, count: bool = True) -> Plan:
    from reconciler.impact import count_impacts
    from reconciler.planner import plan as make_plan

    async with target.client() as client:
        live = {s.slug: s for s in await client.list_schemas()}
        plan = make_plan(desired.schemas, live, options)
        if count:
            plan = await count_impacts(plan, client)
    return plan


def _render(plan: Plan, fmt: str, color: bool) -> str:
    from reconciler.render import render

    return render(plan, fmt, color=color)


def _step_summary(markdown: str) -> None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` when it is set (GitHub Actions); else nothing."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip("\n") + "\n\n")
    except OSError as exc:
        _err(f"Warning: cannot write the step summary {path} ({exc.strerror or exc})")


def _project_root(g: Globals) -> Path:
    """The folder of reconciler.yaml (the current directory by default): where json-schema/ lives."""
    return (g.config or Path("reconciler.yaml")).resolve().parent


def _schema_ref(g: Globals, directory: Path) -> str | None:
    """The modeline target for files in ``directory``, when the committed JSON Schema copy exists."""
    from reconciler.json_schema import copy_path, modeline_ref

    root = _project_root(g)
    return modeline_ref(root, directory) if copy_path(root).exists() else None


def _many(envs: tuple[str, ...], all_envs: bool) -> bool:
    return all_envs or len(envs) > 1


def _resolve_many(project: ProjectConfig, url: str | None, envs: tuple[str, ...], all_envs: bool,
                  what: str) -> tuple[list[str], Callable[[str], Target]]:
    """The environments of a multi-environment run and how to resolve each (from reconciler.yaml only)."""
    from reconciler.config import ENV_URL, resolve_target
    from reconciler.envs import environment_names

    if url:
        raise CommandError(f"--url cannot be combined with several environments ({what} --env A --env B / --all-envs)")
    names = environment_names(project.environments, envs, all_envs)
    environ = {k: v for k, v in os.environ.items() if k != ENV_URL}
    if os.environ.get(ENV_URL):
        _err(f"Note: ${ENV_URL} is ignored with several environments: each uses its url from reconciler.yaml")

    def resolve(name: str) -> Target:
        return resolve_target(url=None, token=None, env=name, project=project, environ=environ, workdir=Path.cwd())

    return names, resolve


def _section_head(name: str, target: Target | None, fmt_: str) -> str:
    if fmt_ == "markdown":
        where = f" · {target.describe()}" if target is not None else ""
        return f"## Environment `{name}`{where}\n"
    where = f"\n{target.describe()}" if target is not None else ""
    return f'=== Environment "{name}" ==={where}\n'


# ---------------------------------------------------------------------------------------------
# Commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--dir", "dir_", type=click.Path(path_type=Path), help="Schemas directory (default: schemas/).")
@click.option("--config", type=click.Path(path_type=Path), help="Project file (default: reconciler.yaml).")
@click.option("--no-color", is_flag=True, help="No ANSI colour (also: the NO_COLOR variable).")
@click.pass_context
def cli(ctx: click.Context, dir_: Path | None, config: Path | None, no_color: bool) -> None:
    """Schema-as-code for ActiveCampaign Custom Objects."""
    ctx.obj = Globals(dir=dir_, config=config, color=False if no_color else None)


def _target_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--env", "env", help="Environment from reconciler.yaml.")(f)
    f = click.option("--url", help="API URL (overrides AC_API_URL).")(f)
    return f


def _envs_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--all-envs", is_flag=True,
                     help="Every environment of reconciler.yaml, concurrently: one section each.")(f)
    f = click.option("--env", "envs", multiple=True,
                     help="Environment from reconciler.yaml (repeatable: one section per environment).")(f)
    f = click.option("--url", help="API URL (overrides AC_API_URL).")(f)
    return f


@cli.command()
@click.pass_obj
def validate(g: Globals) -> int:
    """Parse and check the schema files (and reconciler.yaml) offline; report every problem."""
    from reconciler.files import FilesError
    from reconciler.project import ProjectConfig

    errors: list[Any] = []
    try:
        project, _ = _project(g)
    except FilesError as exc:
        errors += exc.errors
        project = ProjectConfig()
    directory = _schemas_dir(g, project)
    try:
        loaded = _load_desired(directory)
    except FilesError as exc:
        errors += exc.errors
    if errors:
        raise FilesError(errors)
    if loaded.missing:
        raise CommandError(f"no schema directory {directory}/")
    n = len(loaded.schemas)
    click.echo(f"{n} schema{'s' if n != 1 else ''} in {directory}/ valid.")
    return EXIT_OK


@cli.command()
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when a file is not canonical.")
@click.pass_obj
def fmt(g: Globals, check: bool) -> int:
    """Rewrite the schema files in canonical form, keeping comments."""
    from reconciler.files import fmt_dir

    project, _ = _project(g)
    directory = _schemas_dir(g, project)
    changed = fmt_dir(directory, check=check, schema_ref=_schema_ref(g, directory))
    for path in changed:
        click.echo(f"{'would reformat' if check else 'reformatted'} {path}")
    if check and changed:
        return EXIT_ERROR
    if not changed:
        click.echo("All schema files are canonical.")
    return EXIT_OK


@cli.command()
@_target_options
@click.option("--slug", "slugs", multiple=True, help="Export only this schema (repeatable).")
@click.option("--out-dir", "out_dir", type=click.Path(path_type=Path), help="Where to write (default: the schemas directory).")
@click.option("--force", is_flag=True, help="Overwrite files that differ.")
@click.pass_obj
def export(g: Globals, env: str | None, url: str | None, slugs: tuple[str, ...], out_dir: Path | None, force: bool) -> int:
    """Write live schemas as canonical YAML files (bootstrap a repository)."""
    from reconciler.files import export_schemas

    project, _ = _project(g)
    target = _target(project, env, url)
    _err(target.describe())

    async def fetch() -> list[Any]:
        async with target.client() as client:
            return await client.list_schemas()

    live = _run(fetch())
    if slugs:
        missing = sorted(set(slugs) - {s.slug for s in live})
        if missing:
            raise CommandError(f"no schema with slug {', '.join(missing)} in the account")
        live = [s for s in live if s.slug in slugs]
    from reconciler.json_schema import modeline_ref, write_copies

    directory = out_dir or _schemas_dir(g, project)
    root = _project_root(g)
    written = export_schemas(live, directory, force=force, schema_ref=modeline_ref(root, directory))
    for path in [*written, *write_copies(root, only_missing=True)]:  # + the editor schema they point at
        click.echo(f"wrote {path}")
    if not written:
        click.echo("Nothing to export: every file is up to date.")
    return EXIT_OK


@cli.command()
@_envs_options
@click.option("--out", type=click.Path(path_type=Path), help="Save the plan (JSON) for `apply PLANFILE`.")
@click.option("--format", "fmt_", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--target", "targets", multiple=True, help="Plan only this schema slug (repeatable).")
@click.option("--exclude", "excludes", multiple=True, help="Leave this schema slug out (repeatable).")
@click.pass_obj
def plan(g: Globals, envs: tuple[str, ...], all_envs: bool, url: str | None, out: Path | None, fmt_: str,
         detailed_exitcode: bool, targets: tuple[str, ...], excludes: tuple[str, ...]) -> int:
    """Compare the schema files with the account and print what apply would do."""
    project, _ = _project(g)
    directory = _schemas_dir(g, project)
    desired = _load_desired(directory)
    if _many(envs, all_envs):
        if out is not None:
            raise CommandError("--out saves the plan of one account: pick one --env")
        return _plan_many(g, project, desired, url, envs, all_envs, fmt_, detailed_exitcode, targets, excludes)
    target = _target(project, envs[0] if envs else None, url)
    _say_target(target, fmt_)
    options = _plan_options(project, target, targets, excludes, desired.empty)
    the_plan = _run(_fresh_plan(target, desired, options))
    if out is not None:
        from reconciler.writes import write_atomic

        write_atomic(out, the_plan.to_json())
    click.echo(_render(the_plan, fmt_, g.use_color()))
    _step_summary(_render(the_plan, "markdown", False))
    if out is not None:
        _err(f"Saved the plan to {out}. Apply exactly this plan with: reconciler apply {out}")
    return _plan_code(the_plan, detailed_exitcode)


def _plan_code(the_plan: Plan, detailed_exitcode: bool) -> int:
    if the_plan.has_errors:
        return EXIT_ERROR
    if detailed_exitcode and the_plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def _plan_many(g: Globals, project: ProjectConfig, desired: Any, url: str | None, envs: tuple[str, ...],
               all_envs: bool, fmt_: str, detailed_exitcode: bool, targets: tuple[str, ...],
               excludes: tuple[str, ...]) -> int:
    """``plan`` for several environments at once: one section (and one exit code) per environment."""

    from reconciler.envs import run_environments

    names, resolve = _resolve_many(project, url, envs, all_envs, "plan")

    async def job(target: Target) -> Plan:
        return await _fresh_plan(target, desired, _plan_options(project, target, targets, excludes, desired.empty))

    results = _run(run_environments(names, resolve, job))
    return _report_environments(g, results, fmt_, "plan", _render,
                                lambda p: _plan_code(p, detailed_exitcode))


def _report_environments(g: Globals, results: list[Any], fmt_: str, key: str,
                         render_one: Callable[[Any, str, bool], str], code_of: Callable[[Any], int]) -> int:
    """One section per environment (text, markdown or JSON), the step summary, and the most severe
    exit code (an environment that failed counts as an error)."""
    import json

    from reconciler.envs import most_severe

    codes = [EXIT_ERROR if r.value is None else code_of(r.value) for r in results]
    markdown = []
    for r in results:
        body = f"**Error:** {r.error}" if r.value is None else render_one(r.value, "markdown", False)
        markdown.append(_section_head(r.name, r.target, "markdown") + "\n" + body)
    if fmt_ == "json":
        click.echo(json.dumps({"environments": {
            r.name: {"target": r.target.url if r.target else None, "error": r.error,
                     key: r.value.to_dict() if r.value is not None else None}
            for r in results}}, indent=2, ensure_ascii=False))
    elif fmt_ == "markdown":
        click.echo("\n".join(markdown))
    else:
        for r in results:
            click.echo(_section_head(r.name, r.target, "text"))
            click.echo(f"Error: {r.error}" if r.value is None else render_one(r.value, "text", g.use_color()))
            click.echo("")
    for r in results:
        if r.error is not None:
            _err(f'Error in environment "{r.name}": {r.error}')
    _step_summary("\n".join(markdown))
    return most_severe(codes)


def _say_target(target: Target, fmt_: str = "text") -> None:
    """The first line of every command that talks to an account: which one (never the token)."""
    if fmt_ == "text":
        click.echo(target.describe())
        click.echo("")
    else:
        _err(target.describe())


@cli.command()
@click.argument("planfile", type=click.Path(path_type=Path))
@click.option("--format", "fmt_", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.pass_obj
def show(g: Globals, planfile: Path, fmt_: str) -> int:
    """Render a saved plan file."""
    the_plan = _read_plan(planfile)
    if fmt_ == "text":
        click.echo(f"Target: {the_plan.target or 'unknown'} (saved plan of {the_plan.created_at or 'unknown date'})")
    click.echo(_render(the_plan, fmt_, g.use_color()))
    return EXIT_OK


def _read_plan(planfile: Path) -> Plan:
    from reconciler.plan import Plan

    try:
        text = planfile.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{planfile}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{planfile}: cannot read the plan file ({exc.__class__.__name__})") from None
    return Plan.from_json(text, source=str(planfile))


@cli.command()
@_target_options
@click.argument("planfile", required=False, type=click.Path(path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (needed when not on a TTY).")
@click.option("--allow-data-loss", is_flag=True, help="Allow changes that delete records or field values (DL codes).")
@click.option("--target", "targets", multiple=True, help="Apply only this schema slug (repeatable).")
@click.option("--exclude", "excludes", multiple=True, help="Leave this schema slug out (repeatable).")
@click.pass_obj
def apply(g: Globals, env: str | None, url: str | None, planfile: Path | None, auto_approve: bool,
          allow_data_loss: bool, targets: tuple[str, ...], excludes: tuple[str, ...]) -> int:
    """Execute a fresh plan, or exactly the saved PLANFILE."""
    project, _ = _project(g)
    directory = _schemas_dir(g, project)
    desired = _load_desired(directory)
    target = _target(project, env, url)
    _say_target(target)
    saved = planfile is not None
    if planfile is not None:
        the_plan = _read_plan(planfile)
        if the_plan.target != target.url:
            raise CommandError(
                f"{planfile} was made for {the_plan.target}, not for {target.url}; plan again for this target"
            )
        if the_plan.narrowed_by:
            targets, excludes = tuple(the_plan.narrowed_by.get("targets", ())), tuple(
                the_plan.narrowed_by.get("excludes", ())
            )
        options = _plan_options(project, target, targets, excludes, desired.empty)
    else:
        options = _plan_options(project, target, targets, excludes, desired.empty)
        the_plan = _run(_fresh_plan(target, desired, options))
        click.echo(_render(the_plan, "text", g.use_color()))

    outcome: list[str] = []
    try:
        code = _apply_checked(g, target, the_plan, desired, options, allow_data_loss, saved, auto_approve, outcome)
    except CommandError as exc:
        outcome.append(f"Apply failed: {exc}")
        raise
    finally:
        if outcome:
            applied = _render(the_plan, "markdown", False).replace("### Reconciler plan", "#### The plan", 1)
            _step_summary("### Reconciler apply\n\n" + "\n\n".join(f"**{line}**" for line in outcome)
                          + "\n\n" + applied)
    return code


def _apply_checked(g: Globals, target: Target, the_plan: Plan, desired: Any, options: PlanOptions,
                   allow_data_loss: bool, saved: bool, auto_approve: bool, outcome: list[str]) -> int:
    """Gates, confirmation and the writes; ``outcome`` gets the one-line result for the step summary."""
    from reconciler.applier import gate_reasons

    reasons = gate_reasons(the_plan, allow_data_loss=allow_data_loss)
    if reasons:
        _err("Apply refused; nothing was changed:")
        for line in reasons:
            _err(f"  {line}")
        outcome.append("Apply refused; nothing was changed: " + "; ".join(reasons))
        return EXIT_REFUSED
    if not the_plan.has_changes:
        if saved:
            click.echo("No changes. The account matches the files.")
        outcome.append("No changes. The account matches the files.")
        return EXIT_OK
    if not saved and not auto_approve:
        if not sys.stdin.isatty():
            raise CommandError("apply needs --auto-approve when not run on a terminal (or apply a saved plan file)")
        click.echo("\nDo you want to perform these actions? Only 'yes' will be accepted.")
        if click.prompt("  Enter a value", default="", show_default=False).strip() != "yes":
            click.echo("Apply cancelled.")
            outcome.append("Apply cancelled.")
            return EXIT_ERROR
    return _run(_apply(g, target, the_plan, desired, options, allow_data_loss, saved, outcome))


async def _apply(g: Globals, target: Target, the_plan: Plan, desired: Any, options: PlanOptions,
                 allow_data_loss: bool, saved: bool, outcome: list[str] | None = None) -> int:
    import asyncio

    from reconciler.applier import ApplyRefused, PreflightFailed, StalePlan, StepResult, apply_plan
    from reconciler.plan import desired_digest

    def note(line: str) -> None:
        if outcome is not None:
            outcome.append(line)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on the main thread / Windows
        loop.add_signal_handler(signal.SIGINT, stop.set)

    def progress(r: StepResult) -> None:
        mark = "done" if r.status == "done" else "FAILED"
        for change in r.step.changes:
            click.echo(f"{r.step.slug}: {change.action} {change.describe()} … {mark} {r.elapsed:.2f}s")
        if r.error:
            click.echo(f"    {r.error}")

    try:
        async with target.client() as client:
            result = await apply_plan(
                the_plan, client, desired=desired.schemas, options=options, allow_data_loss=allow_data_loss,
                saved=saved, desired_digest=desired_digest(desired.schemas) if saved else None,
                on_step=progress, stop=stop,
            )
    except ApplyRefused as exc:
        _err("Apply refused; nothing was changed:")
        for line in exc.reasons:
            _err(f"  {line}")
        note("Apply refused; nothing was changed: " + "; ".join(exc.reasons))
        return EXIT_REFUSED
    except (StalePlan, PreflightFailed) as exc:
        raise CommandError(f"{exc}. Nothing was changed.") from None
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)

    added, changed, destroyed = result.counts()
    if result.failed or result.not_started:
        click.echo("")
        click.echo("Apply stopped" + (" (interrupted)" if result.interrupted else "") + ":")
        for r in result.results:
            for change in r.step.changes:
                detail = f": {r.error}" if r.error else ""
                click.echo(f"  {r.status:<11} {r.step.slug}: {change.describe()}{detail}")
        click.echo(f"Resources: {added} added, {changed} changed, {destroyed} destroyed. "
                   "Run apply again to converge.")
        note(f"Apply stopped: {added} added, {changed} changed, {destroyed} destroyed. Run apply again to converge.")
        return EXIT_ERROR
    if result.verify_error is not None:
        click.echo("")
        click.echo(f"Resources: {added} added, {changed} changed, {destroyed} destroyed, but the account could "
                   f"not be read back to verify them: {result.verify_error}")
        click.echo("Run `reconciler plan` to check; `apply` again converges.")
        note("The writes were done but could not be verified.")
        return EXIT_ERROR
    if not result.verified:
        click.echo("")
        click.echo("The account still differs from the files after the writes:")
        assert result.remaining is not None
        click.echo(_render(result.remaining, "text", g.use_color()))
        note("The account still differs from the files after the writes.")
        return EXIT_ERROR
    click.echo("")
    click.echo(f"Apply complete! Resources: {added} added, {changed} changed, {destroyed} destroyed.")
    note(f"Apply complete! Resources: {added} added, {changed} changed, {destroyed} destroyed.")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Drift and editor support


@cli.command()
@_envs_options
@click.option("--format", "fmt_", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--ignore", "ignores", multiple=True, metavar="PATTERN",
              help="Leave this drift alone: a glob on slug.field.property, e.g. '*.description' (repeatable; "
                   "added to reconciler.yaml's ignore list).")
@click.pass_obj
def drift(g: Globals, envs: tuple[str, ...], all_envs: bool, url: str | None, fmt_: str,
          ignores: tuple[str, ...]) -> int:
    """Read-only: report what changed in the account outside the files (exit 2 when it drifted)."""
    from reconciler.drift import fetch_drift, render_drift

    project, _ = _project(g)
    desired = _load_desired(_schemas_dir(g, project))
    patterns = (*project.ignore, *ignores)

    async def job(target: Target) -> Any:
        options = _plan_options(project, target, (), (), desired.empty)
        async with target.client() as client:
            return await fetch_drift(client, desired.schemas, options, ignore=patterns)

    if _many(envs, all_envs):
        return _drift_many(g, project, url, envs, all_envs, fmt_, job)
    target = _target(project, envs[0] if envs else None, url)
    _say_target(target, fmt_)
    report = _run(job(target))
    click.echo(render_drift(report, fmt_, g.use_color()))  # type: ignore[arg-type]
    _step_summary(render_drift(report, "markdown"))
    return EXIT_OK if report.in_sync else EXIT_CHANGES


def _drift_many(g: Globals, project: ProjectConfig, url: str | None, envs: tuple[str, ...], all_envs: bool,
                fmt_: str, job: Callable[[Target], Coroutine[Any, Any, Any]]) -> int:

    from reconciler.drift import render_drift
    from reconciler.envs import run_environments

    names, resolve = _resolve_many(project, url, envs, all_envs, "drift")
    results = _run(run_environments(names, resolve, job))
    return _report_environments(g, results, fmt_, "drift", render_drift,
                                lambda d: EXIT_OK if d.in_sync else EXIT_CHANGES)


@cli.command("json-schema")
@click.option("--kind", type=click.Choice(["schema", "config"]), default="schema", show_default=True,
              help="schema: for schemas/*.yaml; config: for reconciler.yaml.")
@click.option("--write", is_flag=True,
              help="Write both to json-schema/ next to reconciler.yaml (the copies the files' modeline points at).")
@click.pass_obj
def json_schema_cmd(g: Globals, kind: str, write: bool) -> int:
    """Print the JSON Schema of schema files or reconciler.yaml (editor completion and checks)."""
    from reconciler.json_schema import json_schema_text, write_copies

    if write:
        written = write_copies(_project_root(g))
        for path in written:
            click.echo(f"wrote {path}")
        if not written:
            click.echo("The JSON Schema copies are up to date.")
        return EXIT_OK
    click.echo(json_schema_text(kind), nl=False)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Sandbox


@cli.group()
def sandbox() -> None:
    """The embedded ActiveCampaign Custom Objects emulator."""


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--db", type=click.Path(path_type=Path), help="SQLite file (default: in memory).")
@click.option("--token", default=None, help="The Api-Token clients must send (default: sandbox-token).")
@click.option("--rate-limit", default=5.0, show_default=True, type=float, help="Requests per second; 0 turns it off.")
@click.option("--faults", default="", help="Fault SPEC, e.g. 429=0.2,drop=0.05,latency=100ms.")
@click.option("--seed", default=None, type=int, help="Seed for reproducible faults.")
def serve(host: str, port: int, db: Path | None, token: str | None, rate_limit: float, faults: str,
          seed: int | None) -> int:
    """Run the emulator over HTTP."""
    from reconciler.sandbox import Faults, SandboxSettings
    from reconciler.sandbox.server import serve as run_server

    try:
        Faults.parse(faults, seed)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    settings = SandboxSettings(rate_limit=rate_limit, faults=faults, fault_seed=seed)
    if token:
        settings.token = token
    click.echo(f"Sandbox listening on http://{host}:{port}/api/3 ({db or 'in memory'})", err=True)
    run_server(host=host, port=port, db=str(db) if db else None, settings=settings)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Entry point


def _known_errors() -> tuple[type[BaseException], ...]:
    from reconciler.errors import ReconcilerError

    return (ReconcilerError,)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (for tests and embedding)."""
    try:
        rc = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _err("Aborted.")
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:  # exit 1, one line: 2 means "changes" for plan and drift
        where = exc.ctx.command_path if exc.ctx is not None else "reconciler"
        _err(f"Error: {exc.format_message()} (see '{where} --help')")
        return EXIT_ERROR
    except click.ClickException as exc:
        _err(f"Error: {exc.format_message()}")
        return EXIT_ERROR
    except CommandError as exc:
        _err(f"Error: {exc}")
        return exc.code
    except Exception as exc:
        from reconciler.files import FilesError

        if isinstance(exc, FilesError):
            for error in exc.errors:
                _err(str(error))
            return EXIT_ERROR
        if isinstance(exc, _known_errors()):
            _err(f"Error: {exc}")
            return EXIT_ERROR
        if os.environ.get("RECONCILER_DEBUG"):
            raise
        _err(f"Internal error: {exc.__class__.__name__}: {exc} (set RECONCILER_DEBUG=1 for a traceback)")
        return EXIT_ERROR
    return rc if isinstance(rc, int) else EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Console entry point: the only place that exits the process."""
    sys.exit(run(argv))

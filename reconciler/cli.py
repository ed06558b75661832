"""Command-line interface: a thin shell over the library.

Every command is a plain function that returns its exit code; only :func:`main` exits. Library
modules are imported inside the commands so that ``reconciler --help`` stays fast and loads no web
framework.

Exit codes: 0 ok / no changes, 1 error, 2 changes (``plan --detailed-exitcode``, ``drift``),
3 refused by a safety gate (``apply``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler import __version__

if TYPE_CHECKING:
    from reconciler.applier import Approved
    from reconciler.client import Client
    from reconciler.config import Target
    from reconciler.files import LoadedSchemas
    from reconciler.plan import Plan
    from reconciler.planner import PlanOptions
    from reconciler.project import ProjectConfig

T = TypeVar("T")

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_REFUSED = 0, 1, 2, 3
#: ``--out -``: the plan file goes to standard output (and the rendered plan to standard error).
STDOUT = "-"


@dataclass
class Globals:
    dir: Path | None = None
    config: Path | None = None
    color: bool | None = None  # None: decide per stream (TTY and no NO_COLOR)

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


def _inert(text: str) -> str:
    from reconciler.render.text import inert

    return inert(text)


def _err(message: str) -> None:
    """One line on standard error, control characters shown escaped (texts may come from the API)."""
    click.echo(_inert(message), err=True)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio

    return asyncio.run(coro)


# ---------------------------------------------------------------------------------------------
# Shared steps: project, schema files, target, client, planning


@dataclass(frozen=True)
class Project:
    """``reconciler.yaml`` and where it puts things: ``schemas_dir`` is relative to the file's folder."""

    config: ProjectConfig
    file: Path  # as given (relative to the current directory when it was)
    schemas_dir: Path

    @property
    def root(self) -> Path:
        """The project folder: where reconciler.yaml, json-schema/ and .reconciler/ live."""
        return self.file.resolve().parent


def _project(g: Globals) -> Project:
    from reconciler.project import PROJECT_FILE, load_project

    file = g.config or Path(PROJECT_FILE)
    config = load_project(file, required=g.config is not None)
    schemas_dir = g.dir if g.dir is not None else file.parent / config.schemas_dir
    return Project(config, file, schemas_dir)


def _no_schema_files(p: Project, missing: bool) -> CommandError:
    where = f"{p.schemas_dir}/"
    if missing:
        return CommandError(f"no schema directory {where} (check --dir, or schemas_dir in {p.file})")
    return CommandError(f"{where} holds no schema file (*.yaml): nothing to compare. Write one, or "
                        "bootstrap it from the account with `reconciler export`")


def _load_desired(p: Project) -> LoadedSchemas:
    """The schema files; a missing or empty directory is an error, never "no changes"."""
    from reconciler.files import load_dir

    loaded = load_dir(p.schemas_dir, project_file=p.file)
    if loaded.missing or loaded.empty:
        raise _no_schema_files(p, loaded.missing)
    return loaded


def _require_schema_files(p: Project) -> None:
    """A missing or empty schemas directory is an error (without parsing the files)."""
    from reconciler.files import schema_files

    if not p.schemas_dir.exists():
        raise _no_schema_files(p, True)
    if not schema_files(p.schemas_dir, project_file=p.file):
        raise _no_schema_files(p, False)


def _target(p: Project, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
            what: str) -> Target:
    """The one account of a single-account command (two ``--env`` are refused, never "the last one")."""
    from reconciler.config import resolve_target

    if len(envs) > 1:
        raise CommandError(f"{what} works on one account, but --env was given {len(envs)} times "
                           f"({', '.join(envs)})")
    return resolve_target(url=url, env=envs[0] if envs else None, sandbox=sandbox, project=p.config,
                          environ=os.environ, workdir=p.root, rate=rate)


def _wait_line(message: str) -> None:
    _err(message)


@dataclass(frozen=True)
class Deadline:
    """``--timeout``: the instant (``time.monotonic()``) after which the command gives up, with a report."""

    at: float
    label: str


def _deadline(timeout: float | None) -> Deadline | None:
    return Deadline(time.monotonic() + timeout, f"the {timeout:g} s --timeout") if timeout else None


def _client(target: Target, deadline: Deadline | None) -> Client:
    """The command's client: waits announced on stderr, the ``--timeout`` deadline, hints naming the
    token's variable."""
    limits: dict[str, Any] = {} if deadline is None else {"deadline": deadline.at, "deadline_label": deadline.label}
    return target.client(on_wait=_wait_line, **limits)


def _plan_options(p: Project, target: Target, targets: tuple[str, ...], excludes: tuple[str, ...],
                  empty_dir: bool) -> PlanOptions:
    from datetime import datetime

    from reconciler.planner import PlanOptions
    from reconciler.quirks import required_options

    return PlanOptions(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        prune=p.config.prune,
        protect=frozenset(target.protect),
        targets=tuple(targets),
        excludes=tuple(excludes),
        target_url=target.url,
        desired_is_empty_dir=empty_dir,
        **required_options(target.url, p.root, target.required,
                           setting_source=f"reconciler.yaml (environments.{target.name}.required)"),
    )


async def _fresh_plan(target: Target, desired: LoadedSchemas, options: PlanOptions, deadline: Deadline | None,
                      *, saved: bool = False, uncounted: str | None = None) -> Plan:
    from reconciler.pipeline import plan_account

    async with _client(target, deadline) as client:
        return await plan_account(client, desired.schemas, options, uncounted=uncounted, saved=saved)


def _render(plan: Plan, fmt: str, color: bool) -> str:
    from reconciler.render import render

    return render(plan, fmt, color=color)  # type: ignore[arg-type]


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


def _schema_ref(p: Project, directory: Path) -> str | None:
    """The modeline target for files in ``directory``, when the committed JSON Schema copy exists."""
    from reconciler.json_schema import copy_path, modeline_ref

    return modeline_ref(p.root, directory) if copy_path(p.root).exists() else None


def _many(envs: tuple[str, ...], all_envs: bool) -> bool:
    return all_envs or len(envs) > 1


def _resolve_many(p: Project, url: str | None, sandbox: bool, rate: float | None, envs: tuple[str, ...],
                  all_envs: bool, what: str) -> tuple[list[str], Callable[[str], Target]]:
    """The environments of a multi-environment run and how to resolve each (from reconciler.yaml only)."""
    from reconciler.config import ENV_URL, resolve_target
    from reconciler.envs import environment_names

    if url or sandbox:
        flag = "--url" if url else "--sandbox"
        raise CommandError(f"{flag} cannot be combined with several environments ({what} --env A --env B / "
                           "--all-envs)")
    names = environment_names(p.config.environments, envs, all_envs)
    environ = {k: v for k, v in os.environ.items() if k != ENV_URL}
    if os.environ.get(ENV_URL):
        _err(f"Note: ${ENV_URL} is ignored with several environments: each uses its url from reconciler.yaml")

    def resolve(name: str) -> Target:
        return resolve_target(url=None, env=name, project=p.config, environ=environ, workdir=p.root, rate=rate)

    return names, resolve


def _section_head(name: str, target: Target | None, fmt_: str) -> str:
    if fmt_ == "markdown":
        from reconciler.render.markdown import md_code, md_text

        where = f" · {md_text(target.describe())}" if target is not None else ""
        return f"## Environment {md_code(name)}{where}\n"
    where = f"\n{target.describe()}" if target is not None else ""
    return f'=== Environment "{name}" ==={where}\n'


# ---------------------------------------------------------------------------------------------
# Options


def _set_global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """``--dir``/``--config``/``--no-color`` written after the subcommand: the same as before it."""
    if value is None or value is False:
        return
    g = ctx.find_object(Globals)
    assert g is not None
    if param.name == "no_color":
        g.color = False
        return
    name = str(param.name)
    current = getattr(g, name)
    if current is not None and current != value:
        raise click.UsageError(f"--{name} was given twice ({current} and {value})")
    setattr(g, name, value)


_DIR_HELP = "Schemas directory (default: schemas_dir of reconciler.yaml, else schemas/)."
_CONFIG_HELP = "Project file (default: reconciler.yaml; a path given here must exist)."
_COLOR_HELP = "No ANSI colour (also: the NO_COLOR variable, or output that is not a terminal)."


def _global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--no-color", "no_color", is_flag=True, expose_value=False, callback=_set_global,
                     help=_COLOR_HELP)(f)
    f = click.option("--config", "config", type=click.Path(path_type=Path), expose_value=False,
                     callback=_set_global, help=_CONFIG_HELP)(f)
    f = click.option("--dir", "dir", type=click.Path(path_type=Path), expose_value=False,
                     callback=_set_global, help=_DIR_HELP)(f)
    return f


def _account_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """How to talk to the account: the target (``--env``/``--url``/``--sandbox``), pace and deadline."""
    f = click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                     help="Give up (with a report) when the whole command has run this long.")(f)
    f = click.option("--rate", type=click.FloatRange(min=0, min_open=True, max=100), metavar="REQ/S",
                     help="Requests per second to use (default: the environment's rate_limit, else 5).")(f)
    f = click.option("--sandbox", is_flag=True, help="Use the embedded sandbox (.reconciler/sandbox.sqlite3).")(f)
    f = click.option("--url", help="API URL (overrides AC_API_URL); the token comes from AC_API_TOKEN.")(f)
    return f


def _env_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--env", "envs", multiple=True, metavar="NAME",
                        help="Environment from reconciler.yaml.")(f)


def _envs_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--all-envs", is_flag=True,
                     help="Every environment of reconciler.yaml, concurrently: one section each.")(f)
    f = click.option("--env", "envs", multiple=True, metavar="NAME",
                     help="Environment from reconciler.yaml (repeatable: one section per environment).")(f)
    return f


# ---------------------------------------------------------------------------------------------
# Commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(__version__, prog_name="reconciler")
@click.option("--dir", "dir_", type=click.Path(path_type=Path), help=_DIR_HELP)
@click.option("--config", type=click.Path(path_type=Path), help=_CONFIG_HELP)
@click.option("--no-color", is_flag=True, help=_COLOR_HELP)
@click.pass_context
def cli(ctx: click.Context, dir_: Path | None, config: Path | None, no_color: bool) -> int | None:
    """Schema-as-code for ActiveCampaign Custom Objects."""
    ctx.obj = Globals(dir=dir_, config=config, color=False if no_color else None)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        return EXIT_OK
    return None


@cli.command()
@_global_options
@click.pass_obj
def validate(g: Globals) -> int:
    """Parse and check the schema files (and reconciler.yaml) offline; report every problem."""
    from reconciler.files import FilesError

    errors: list[Any] = []
    p: Project | None = None
    try:
        p = _project(g)
    except FilesError as exc:
        errors += exc.errors
    if p is None:
        from reconciler.project import PROJECT_FILE, ProjectConfig

        file = g.config or Path(PROJECT_FILE)
        p = Project(ProjectConfig(), file, g.dir if g.dir is not None else file.parent / "schemas")
    try:
        loaded = _load_desired(p)
    except FilesError as exc:
        errors += exc.errors
    except CommandError:
        if not errors:
            raise
    if errors:  # the project file's problems (the directory is only a guess then) and the files'
        raise FilesError(errors)
    n = len(loaded.schemas)
    click.echo(f"{n} schema{'s' if n != 1 else ''} in {p.schemas_dir}/ valid.")
    return EXIT_OK


@cli.command()
@_global_options
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when a file is not canonical.")
@click.option("--diff", "show_diff", is_flag=True, help="Print what would change as a unified diff.")
@click.pass_obj
def fmt(g: Globals, check: bool, show_diff: bool) -> int:
    """Rewrite the schema files in canonical form, keeping comments (invalid files are refused)."""
    from reconciler.files import fmt_dir

    p = _project(g)
    _require_schema_files(p)
    changed = fmt_dir(p.schemas_dir, check=check, schema_ref=_schema_ref(p, p.schemas_dir),
                      project_file=p.file)  # refuses invalid files (the validate errors), writes nothing then
    for change in changed:
        if show_diff:
            click.echo(change.diff(), nl=False)
        click.echo(f"{'would reformat' if check else 'reformatted'} {change.path}")
    if check and changed:
        return EXIT_ERROR
    if not changed:
        click.echo("All schema files are canonical.")
    return EXIT_OK


@cli.command()
@_global_options
@_env_option
@_account_options
@click.option("--slug", "slugs", multiple=True, help="Export only this schema (repeatable).")
@click.option("--out-dir", "out_dir", type=click.Path(path_type=Path),
              help="Where to write (default: the schemas directory).")
@click.option("--force", is_flag=True, help="Overwrite files that differ.")
@click.pass_obj
def export(g: Globals, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
           timeout: float | None, slugs: tuple[str, ...], out_dir: Path | None, force: bool) -> int:
    """Write live schemas as canonical YAML files (bootstrap a repository)."""
    from reconciler.files import export_schemas

    p = _project(g)
    target = _target(p, envs, url, sandbox, rate, "export")
    _err(target.describe())
    deadline = _deadline(timeout)

    async def fetch() -> list[Any]:
        async with _client(target, deadline) as client:
            return await client.list_schemas()

    live = _run(fetch())
    if not live:
        click.echo("The account has no schemas: nothing to export.")
        return EXIT_OK
    if slugs:
        missing = sorted(set(slugs) - {s.slug for s in live})
        if missing:
            raise CommandError(f"no schema with slug {', '.join(missing)} in the account")
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
    return EXIT_OK


@cli.command()
@_global_options
@_envs_options
@_account_options
@click.option("--out", type=click.Path(path_type=Path, allow_dash=True),
              help="Save the plan (JSON) for `apply PLANFILE`; - prints it to standard output.")
@click.option("--format", "fmt_", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--target", "targets", multiple=True, help="Plan only this schema slug (repeatable; globs).")
@click.option("--exclude", "excludes", multiple=True, help="Leave this schema slug out (repeatable; globs).")
@click.pass_obj
def plan(g: Globals, envs: tuple[str, ...], all_envs: bool, url: str | None, sandbox: bool, rate: float | None,
         timeout: float | None, out: Path | None, fmt_: str, detailed_exitcode: bool, targets: tuple[str, ...],
         excludes: tuple[str, ...]) -> int:
    """Compare the schema files with the account and print what apply would do."""
    from reconciler.writes import check_writable

    p = _project(g)
    desired = _load_desired(p)
    to_stdout = out is not None and str(out) == STDOUT
    if out is not None and not to_stdout:
        check_writable(out)  # a bad path fails before the account is contacted
    if _many(envs, all_envs):
        if out is not None:
            raise CommandError("--out saves the plan of one account: pick one --env")
        return _plan_many(g, p, desired, url, sandbox, rate, timeout, envs, all_envs, fmt_, detailed_exitcode,
                          targets, excludes)
    target = _target(p, envs, url, sandbox, rate, "plan --out" if out is not None else "plan")
    _say_target(target, "stderr" if to_stdout else fmt_)
    options = _plan_options(p, target, targets, excludes, desired.empty)
    the_plan = _run(_fresh_plan(target, desired, options, _deadline(timeout), saved=out is not None))
    rendered = _render(the_plan, fmt_, g.use_color(sys.stderr if to_stdout else sys.stdout))
    click.echo(rendered, err=to_stdout)
    _step_summary(_render(the_plan, "markdown", False))
    if out is not None:
        if the_plan.has_errors:
            n = len(the_plan.errors)
            raise CommandError(f"the plan was not saved to {out}: it has {n} error{'s' if n != 1 else ''} "
                               "(NA codes above) that the API would refuse; fix the files and plan again")
        if to_stdout:
            click.echo(the_plan.to_json(), nl=False)
        else:
            from reconciler.writes import write_atomic

            write_atomic(out, the_plan.to_json())
            _err(f"Saved the plan to {out}. Apply exactly this plan with: reconciler apply {out}")
    return _plan_code(the_plan, detailed_exitcode)


def _plan_code(the_plan: Plan, detailed_exitcode: bool) -> int:
    if the_plan.has_errors:
        return EXIT_ERROR
    if detailed_exitcode and the_plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def _plan_many(g: Globals, p: Project, desired: LoadedSchemas, url: str | None, sandbox: bool,
               rate: float | None, timeout: float | None, envs: tuple[str, ...], all_envs: bool, fmt_: str,
               detailed_exitcode: bool, targets: tuple[str, ...], excludes: tuple[str, ...]) -> int:
    """``plan`` for several environments at once: one section (and one exit code) per environment."""

    from reconciler.envs import run_environments

    names, resolve = _resolve_many(p, url, sandbox, rate, envs, all_envs, "plan")
    deadline = _deadline(timeout)

    async def job(target: Target) -> Plan:
        return await _fresh_plan(target, desired, _plan_options(p, target, targets, excludes, desired.empty),
                                 deadline)

    results = _run(run_environments(names, resolve, job))
    return _report_environments(g, results, fmt_, "plan", _render,
                                lambda plan: _plan_code(plan, detailed_exitcode))


def _report_environments(g: Globals, results: list[Any], fmt_: str, key: str,
                         render_one: Callable[[Any, Any, bool], str], code_of: Callable[[Any], int]) -> int:
    """One section per environment (text, markdown or JSON), the step summary, and the most severe
    exit code (an environment that failed counts as an error)."""
    import json

    from reconciler.envs import most_severe
    from reconciler.render.markdown import md_text

    codes = [EXIT_ERROR if r.value is None else code_of(r.value) for r in results]
    markdown = []
    for r in results:
        body = f"**Error:** {md_text(r.error)}" if r.value is None else render_one(r.value, "markdown", False)
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
            click.echo(f"Error: {_inert(r.error)}" if r.value is None
                       else render_one(r.value, "text", g.use_color()))
            click.echo("")
    for r in results:
        if r.error is not None:
            _err(f'Error in environment "{r.name}": {r.error}')
    _step_summary("\n".join(markdown))
    return most_severe(codes)


def _say_target(target: Target, fmt_: str = "text") -> None:
    """The first line of every command that talks to an account: which one (never the token).

    On standard output before a text rendering; on standard error when standard output carries
    JSON or markdown (or the plan file itself, ``fmt_="stderr"``).
    """
    if fmt_ == "text":
        click.echo(_inert(target.describe()))
        click.echo("")
    else:
        _err(target.describe())


@cli.command()
@_global_options
@click.argument("planfile", type=click.Path(path_type=Path))
@click.option("--format", "fmt_", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.pass_obj
def show(g: Globals, planfile: Path, fmt_: str) -> int:
    """Render a saved plan file."""
    the_plan = _read_plan(planfile)
    if fmt_ == "text":
        click.echo(_inert(f"Target: {the_plan.target or 'unknown'} "
                          f"(saved plan of {the_plan.created_at or 'unknown date'})"))
    click.echo(_render(the_plan, fmt_, g.use_color()))
    return EXIT_OK


#: A plan file larger than this is not read (a plan of 10,000 schemas is a few tens of MB).
PLAN_FILE_MAX_BYTES = 256 * 1024 * 1024


def _read_plan(planfile: Path) -> Plan:
    import stat

    from reconciler.plan import Plan

    try:
        st = planfile.stat()
    except FileNotFoundError:
        raise CommandError(f"{planfile}: no such plan file") from None
    except OSError as exc:
        raise CommandError(f"{planfile}: cannot read the plan file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise CommandError(f"{planfile}: not a plan file (not a regular file)")
    if st.st_size > PLAN_FILE_MAX_BYTES:
        raise CommandError(f"{planfile}: not a plan file (larger than {PLAN_FILE_MAX_BYTES // 2**20} MiB)")
    try:
        text = planfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{planfile}: cannot read the plan file ({exc.__class__.__name__})") from None
    return Plan.from_json(text, source=str(planfile))


def _other_target_hint(p: Project, plan_url: str | None) -> str:
    """What to pass so that a saved plan's account is the target (``--env production``)."""
    from reconciler.client import normalize_base_url
    from reconciler.config import SANDBOX_URL
    from reconciler.errors import ConfigError

    if plan_url == SANDBOX_URL:
        return "pass --sandbox"
    for name, entry in p.config.environments.items():
        try:
            if normalize_base_url(entry.url) == plan_url:
                return f"pass --env {name}"
        except ConfigError:
            continue
    return "plan again for this target"


@cli.command()
@_global_options
@_env_option
@_account_options
@click.argument("planfile", required=False, type=click.Path(path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (needed when not on a TTY).")
@click.option("--allow-data-loss", is_flag=True, help="Allow changes that delete records or field values (DL codes).")
@click.option("--preflight", is_flag=True,
              help="Check before writing: every update validated by the API (validateOnly) before any write, each "
                   "schema read again right before its first delete. The plan says what it costs.")
@click.option("--target", "targets", multiple=True, help="Apply only this schema slug (repeatable; globs).")
@click.option("--exclude", "excludes", multiple=True, help="Leave this schema slug out (repeatable; globs).")
@click.pass_obj
def apply(g: Globals, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
          timeout: float | None, planfile: Path | None, auto_approve: bool, allow_data_loss: bool,
          preflight: bool, targets: tuple[str, ...], excludes: tuple[str, ...]) -> int:
    """Execute a fresh plan, or exactly the saved PLANFILE."""
    p = _project(g)
    desired = _load_desired(p)
    target = _target(p, envs, url, sandbox, rate, "apply")
    _say_target(target)
    deadline = _deadline(timeout)
    saved = planfile is not None
    if planfile is not None:
        if targets or excludes:
            raise CommandError("--target/--exclude cannot narrow a saved plan: it is applied exactly as planned")
        the_plan = _read_plan(planfile)
        options = _plan_options(p, target, (), (), desired.empty)  # apply narrows as the saved plan was
    else:
        options = _plan_options(p, target, targets, excludes, desired.empty)
        # nobody reads the counts of a plan that is approved in advance, data loss included
        skip = ("apply --auto-approve --allow-data-loss does not wait for them"
                if auto_approve and allow_data_loss else None)
        the_plan = _run(_fresh_plan(target, desired, options, deadline, uncounted=skip))
        click.echo(_render(the_plan, "text", g.use_color()))

    outcome: list[str] = []
    try:
        code = _apply_checked(g, p, target, the_plan, desired, options, allow_data_loss, saved, auto_approve,
                              preflight, deadline, outcome, planfile)
    except CommandError as exc:
        outcome.append(_md("Apply failed: {}", str(exc)))
        raise
    finally:
        if outcome:
            applied = _render(the_plan, "markdown", False).replace("### Reconciler plan", "#### The plan", 1)
            _step_summary("### Reconciler apply\n\n" + "\n\n".join(f"**{line}**" for line in outcome)
                          + "\n\n" + applied)
    return code


def _apply_checked(g: Globals, p: Project, target: Target, the_plan: Plan, desired: LoadedSchemas,
                   options: PlanOptions, allow_data_loss: bool, saved: bool, auto_approve: bool, preflight: bool,
                   deadline: Deadline | None, outcome: list[str], planfile: Path | None) -> int:
    """Gates, confirmation and the writes; ``outcome`` gets the one-line result for the step summary
    (markdown: our own words, and any text from the API escaped by :func:`_md`)."""
    from reconciler.applier import ApplyRefused, WrongTarget, approve
    from reconciler.client import normalize_base_url

    try:
        approved = approve(the_plan, allow_data_loss=allow_data_loss,
                           saved_for=normalize_base_url(target.url, allow_http=True) if saved else None)
    except WrongTarget as exc:
        from reconciler.config import SANDBOX_URL

        def host(u: str | None) -> str:
            return "the local sandbox" if u in (SANDBOX_URL, f"{SANDBOX_URL}/api/3") else str(u).removesuffix("/api/3")

        raise CommandError(f"{planfile} was made for {host(exc.planned)}, not for {host(exc.actual)}: "
                           f"{_other_target_hint(p, exc.planned)}") from None
    except ApplyRefused as exc:
        _refused(exc.reasons, outcome)
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
    return _run(_apply(g, p, target, approved, desired, options, saved, preflight, deadline, outcome))


def _md(template: str, *values: str) -> str:
    """A step-summary line: ``template`` is ours, ``values`` are escaped (they may hold API error texts)."""
    from reconciler.render.markdown import md

    return md(template, *values)


def _refused(reasons: list[str], outcome: list[str]) -> None:
    _err("Apply refused; nothing was changed:")
    for line in reasons:
        _err(f"  {line}")
    outcome.append(_md("Apply refused; nothing was changed: {}", "; ".join(reasons)))


@contextmanager
def _interrupts(control: Any) -> Iterator[None]:
    """SIGINT and SIGTERM during the writes: the first stops new steps (said at once), the second
    cancels the requests in flight. Outside the writes both end the command as ``KeyboardInterrupt``."""
    import asyncio
    import contextlib

    loop = asyncio.get_running_loop()
    hits = 0

    def on_signal() -> None:
        nonlocal hits
        hits += 1
        n = control.in_flight
        if hits == 1:
            _err(f"Interrupt received: finishing {n} request{'s' if n != 1 else ''} in flight, starting nothing "
                 "new (interrupt again to cancel them)")
            control.stop.set()
        else:
            _err(f"Second interrupt: cancelling {n} request{'s' if n != 1 else ''} in flight")
            control.abort.set()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not main thread / Windows
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)  # puts back SIG_DFL for SIGTERM, not our handler:
        if signal.SIGTERM in installed:
            signal.signal(signal.SIGTERM, _sigterm)  # the rest of the command stops as on Ctrl-C


async def _apply(g: Globals, p: Project, target: Target, approved: Approved, desired: LoadedSchemas,
                 options: PlanOptions, saved: bool, preflight: bool, deadline: Deadline | None,
                 outcome: list[str]) -> int:
    from reconciler.applier import (
        ApplyControl,
        PreflightFailed,
        PreflightIncomplete,
        StalePlan,
        StepResult,
        apply_plan,
    )
    from reconciler.lock import apply_lock

    control = ApplyControl()

    def progress(r: StepResult) -> None:
        mark = {"done": "done", "failed": "FAILED"}.get(r.status, r.status)
        for change in r.step.changes:
            click.echo(_inert(f"{r.step.slug}: {change.action} {change.describe} … {mark} {r.elapsed:.2f}s"))
        if r.error:
            click.echo(_inert(f"    {r.error}"))

    try:
        with apply_lock(target.url, target.db_path), _interrupts(control):
            async with _client(target, deadline) as client:
                result = await apply_plan(
                    approved, client, desired=desired.schemas, options=options, saved=saved, on_step=progress,
                    control=control, preflight=preflight,
                )
    except (StalePlan, PreflightFailed) as exc:
        raise CommandError(f"{exc}. Nothing was changed.") from None
    except PreflightIncomplete as exc:
        raise CommandError(str(exc)) from None

    if result.required_line:  # the account ignores required: said once, remembered for this target
        from reconciler.errors import ReconcilerError
        from reconciler.quirks import record_required_ignored

        click.echo(_inert(result.required_line))
        outcome.append(_md("{}", result.required_line))
        if target.required is None:
            try:
                record_required_ignored(target.url, p.root)
            except (OSError, ReconcilerError) as exc:
                _err(f"Warning: not recorded in .reconciler/quirks.json: {exc}")
    added, changed, destroyed = result.counts()
    counts = f"{added} added, {changed} changed, {destroyed} destroyed"
    if result.stopped:
        click.echo("")
        click.echo("Apply stopped" + (" (interrupted)" if result.interrupted else "") + ":")
        for r in result.results:
            for change in r.step.changes:
                detail = f": {r.error}" if r.error else ""
                click.echo(_inert(f"  {r.status:<11} {r.step.slug}: {change.describe}{detail}"))
        click.echo(f"Resources: {counts}. Run `reconciler plan` to see what is left; `apply` again converges.")
        outcome.append(f"Apply stopped: {counts}. Run apply again to converge.")
        return EXIT_ERROR
    if result.verify_error is not None:
        click.echo("")
        click.echo(_inert(f"Resources: {counts}, but the account could not be read back to verify them: "
                          f"{result.verify_error}"))
        click.echo("Run `reconciler plan` to check; `apply` again converges.")
        outcome.append("The writes were done but could not be verified.")
        return EXIT_ERROR
    if not result.verified:
        click.echo("")
        click.echo("The account still differs from the files after the writes:")
        assert result.remaining is not None
        click.echo(_render(result.remaining, "text", g.use_color()))
        outcome.append("The account still differs from the files after the writes.")
        return EXIT_ERROR
    click.echo("")
    click.echo(f"Apply complete! Resources: {counts}.")
    outcome.append(f"Apply complete! Resources: {counts}.")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Drift and editor support


@cli.command()
@_global_options
@_envs_options
@_account_options
@click.option("--format", "fmt_", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--ignore", "ignores", multiple=True, metavar="PATTERN",
              help="Leave this drift alone: a glob on slug.field.property, e.g. '*.description' (repeatable; "
                   "added to reconciler.yaml's ignore list).")
@click.pass_obj
def drift(g: Globals, envs: tuple[str, ...], all_envs: bool, url: str | None, sandbox: bool, rate: float | None,
          timeout: float | None, fmt_: str, ignores: tuple[str, ...]) -> int:
    """Read-only: report what differs between the account and the files (exit 2 when it drifted)."""
    from reconciler.pipeline import check_drift
    from reconciler.render import render_drift

    p = _project(g)
    desired = _load_desired(p)
    patterns = (*p.config.ignore, *ignores)
    deadline = _deadline(timeout)

    async def job(target: Target) -> Any:
        options = _plan_options(p, target, (), (), desired.empty)
        async with _client(target, deadline) as client:
            return await check_drift(client, desired.schemas, options, ignore=patterns, sources=desired.sources)

    if _many(envs, all_envs):
        from reconciler.envs import run_environments

        names, resolve = _resolve_many(p, url, sandbox, rate, envs, all_envs, "drift")
        results = _run(run_environments(names, resolve, job))
        return _report_environments(g, results, fmt_, "drift", render_drift,
                                    lambda d: EXIT_OK if d.in_sync else EXIT_CHANGES)
    target = _target(p, envs, url, sandbox, rate, "drift")
    _say_target(target, fmt_)
    report = _run(job(target))
    click.echo(render_drift(report, fmt_, g.use_color()))  # type: ignore[arg-type]
    _step_summary(render_drift(report, "markdown"))
    return EXIT_OK if report.in_sync else EXIT_CHANGES


@cli.command("json-schema")
@_global_options
@click.option("--kind", type=click.Choice(["schema", "config", "plan"]), default="schema", show_default=True,
              help="schema: for schemas/*.yaml; config: for reconciler.yaml; plan: for plan files (--out).")
@click.option("--write", is_flag=True,
              help="Write both to json-schema/ next to reconciler.yaml (the copies the files' modeline points at).")
@click.pass_obj
def json_schema_cmd(g: Globals, kind: str, write: bool) -> int:
    """Print the JSON Schema of schema files or reconciler.yaml (editor completion and checks)."""
    from reconciler.json_schema import json_schema_text, write_copies

    if write:
        written = write_copies(_project(g).root)  # a --config that does not exist is an error here too
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


def _listen(host: str, port: int) -> Any:
    """A bound socket for ``sandbox serve`` (port 0: a free one), or one line saying why not."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(f"port {port} on {host} is already in use: pick another with --port "
                               "(--port 0 picks a free one)") from None
        raise CommandError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="0 picks a free port (printed).")
@click.option("--db", type=click.Path(path_type=Path), help="SQLite file (default: in memory).")
@click.option("--token", default=None, help="The Api-Token clients must send (default: sandbox-token).")
@click.option("--rate-limit", default=None, type=float,
              help="Requests per second; 0 turns it off (default: the profile's, 5).")
@click.option("--faults", default="", help="Fault SPEC, e.g. 429=0.2,drop=0.05,latency=100ms.")
@click.option("--seed", default=None, type=int, help="Seed for reproducible faults (and shuffled lists).")
@click.option("--log-requests", is_flag=True, help="Print one line per request (method, path, status, time, fault).")
@click.option("--profile", type=click.Choice(["documented", "pessimistic"]), default="documented", show_default=True,
              help="How undocumented behaviour is emulated: as documented, or against the client.")
@click.option("--quirk", "quirks", multiple=True, metavar="NAME=VALUE",
              help="Set one quirk over the profile (repeatable; --list-quirks lists them).")
@click.option("--list-quirks", is_flag=True, help="List every quirk with both profiles' values and its source.")
def serve(host: str, port: int, db: Path | None, token: str | None, rate_limit: float | None, faults: str,
          seed: int | None, log_requests: bool, profile: str, quirks: tuple[str, ...], list_quirks: bool) -> int:
    """Run the emulator over HTTP."""
    from reconciler.sandbox import Faults, SandboxSettings
    from reconciler.sandbox.quirks import apply_quirks, table
    from reconciler.sandbox.server import serve as run_server

    if list_quirks:
        click.echo("\n".join(table()))
        return EXIT_OK
    try:
        Faults.parse(faults, seed)
        settings = apply_quirks(SandboxSettings.from_profile(profile), quirks)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    settings.faults, settings.fault_seed, settings.log_requests = faults, seed, log_requests
    if rate_limit is not None:
        settings.rate_limit = rate_limit
    if token:
        settings.token = token
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Sandbox listening on http://{shown}:{bound}/api/3 ({db or 'in memory'}, profile {profile})", err=True)
    run_server(sock=sock, db=str(db) if db else None, settings=settings)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Entry point


def _known_errors() -> tuple[type[BaseException], ...]:
    from reconciler.errors import ReconcilerError

    return (ReconcilerError,)


def _sigterm(signum: int, frame: Any) -> None:
    """SIGTERM (CI cancellation, ``docker stop``) ends a command like Ctrl-C does, with its report."""
    raise KeyboardInterrupt


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (for tests and embedding)."""
    try:
        with _sigterm_as_interrupt():
            rc = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _err("Interrupted.")
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

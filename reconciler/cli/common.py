"""What the commands share: the project, schema files, target, client, planning, options and output.

Library modules are imported inside the functions so that ``reconciler --help`` stays fast and loads
no web framework.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler import __version__

if TYPE_CHECKING:
    from reconciler.client import Client
    from reconciler.config import Target
    from reconciler.files import LoadedSchemas
    from reconciler.model import Schema
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


def inert(text: str) -> str:
    from reconciler.render.text import inert

    return inert(text)


def err(message: str) -> None:
    """One line on standard error, control characters shown escaped (texts may come from the API)."""
    click.echo(inert(message), err=True)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
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


def project_of(g: Globals) -> Project:
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


def load_desired(p: Project) -> LoadedSchemas:
    """The schema files; a missing or empty directory is an error, never "no changes"."""
    from reconciler.files import load_dir

    loaded = load_dir(p.schemas_dir, project_file=p.file)
    if loaded.missing or loaded.empty:
        raise _no_schema_files(p, loaded.missing)
    return loaded


def require_schema_files(p: Project) -> None:
    """A missing or empty schemas directory is an error (without parsing the files)."""
    from reconciler.files import schema_files

    if not p.schemas_dir.exists():
        raise _no_schema_files(p, True)
    if not schema_files(p.schemas_dir, project_file=p.file):
        raise _no_schema_files(p, False)


def single_target(p: Project, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
            what: str) -> Target:
    """The one account of a single-account command (two ``--env`` are refused, never "the last one")."""
    from reconciler.config import resolve_target

    if len(envs) > 1:
        raise CommandError(f"{what} works on one account, but --env was given {len(envs)} times "
                           f"({', '.join(envs)})")
    return resolve_target(url=url, env=envs[0] if envs else None, sandbox=sandbox, project=p.config,
                          environ=os.environ, workdir=p.root, rate=rate)


def _wait_line(message: str) -> None:
    err(message)


@dataclass(frozen=True)
class Deadline:
    """``--timeout``: the instant (``time.monotonic()``) after which the command gives up, with a report."""

    at: float
    label: str


def deadline_of(timeout: float | None) -> Deadline | None:
    return Deadline(time.monotonic() + timeout, f"the {timeout:g} s --timeout") if timeout else None


def client_for(target: Target, deadline: Deadline | None, on_wait: Callable[[str], None] | None = None) -> Client:
    """The command's client: waits announced on stderr (or to ``on_wait``), the ``--timeout``
    deadline, hints naming the token's variable."""
    limits: dict[str, Any] = {} if deadline is None else {"deadline": deadline.at, "deadline_label": deadline.label}
    return target.client(on_wait=on_wait or _wait_line, **limits)


def live_schemas(target: Target, timeout: float | None) -> list[Schema]:
    """Every schema the account holds (``export``, ``graph --live``)."""
    deadline = deadline_of(timeout)

    async def fetch() -> list[Schema]:
        async with client_for(target, deadline) as client:
            return await client.list_schemas()

    return run_async(fetch())


def plan_options(p: Project, target: Target, targets: tuple[str, ...], excludes: tuple[str, ...],
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


async def fresh_plan(target: Target, desired: LoadedSchemas, options: PlanOptions, deadline: Deadline | None,
                      *, saved: bool = False, uncounted: str | None = None) -> Plan:
    from reconciler.pipeline import plan_account

    async with client_for(target, deadline) as client:
        return await plan_account(client, desired.schemas, options, uncounted=uncounted, saved=saved)


def render_plan(plan: Plan, fmt: str, color: bool) -> str:
    from reconciler.render import render

    return render(plan, fmt, color=color)  # type: ignore[arg-type]


def step_summary(markdown: str) -> None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` when it is set (GitHub Actions); else nothing."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip("\n") + "\n\n")
    except OSError as exc:
        err(f"Warning: cannot write the step summary {path} ({exc.strerror or exc})")


def schema_ref(p: Project, directory: Path) -> str | None:
    """The modeline target for files in ``directory``, when the committed JSON Schema copy exists."""
    from reconciler.json_schema import copy_path, modeline_ref

    return modeline_ref(p.root, directory) if copy_path(p.root).exists() else None


def many(envs: tuple[str, ...], all_envs: bool) -> bool:
    return all_envs or len(envs) > 1


def resolve_many(p: Project, url: str | None, sandbox: bool, rate: float | None, envs: tuple[str, ...],
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
        err(f"Note: ${ENV_URL} is ignored with several environments: each uses its url from reconciler.yaml")

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


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--no-color", "no_color", is_flag=True, expose_value=False, callback=_set_global,
                     help=_COLOR_HELP)(f)
    f = click.option("--config", "config", type=click.Path(path_type=Path), expose_value=False,
                     callback=_set_global, help=_CONFIG_HELP)(f)
    f = click.option("--dir", "dir", type=click.Path(path_type=Path), expose_value=False,
                     callback=_set_global, help=_DIR_HELP)(f)
    return f


def account_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """How to talk to the account: the target (``--env``/``--url``/``--sandbox``), pace and deadline."""
    f = click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                     help="Give up (with a report) when the whole command has run this long.")(f)
    f = click.option("--rate", type=click.FloatRange(min=0, min_open=True, max=100), metavar="REQ/S",
                     help="Requests per second to use (default: the environment's rate_limit, else 5).")(f)
    f = click.option("--sandbox", is_flag=True, help="Use the embedded sandbox (.reconciler/sandbox.sqlite3).")(f)
    f = click.option("--url", help="API URL (overrides AC_API_URL); the token comes from AC_API_TOKEN.")(f)
    return f


def env_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--env", "envs", multiple=True, metavar="NAME",
                        help="Environment from reconciler.yaml.")(f)


def envs_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--all-envs", is_flag=True,
                     help="Every environment of reconciler.yaml, concurrently: one section each.")(f)
    f = click.option("--env", "envs", multiple=True, metavar="NAME",
                     help="Environment from reconciler.yaml (repeatable: one section per environment).")(f)
    return f



def report_environments(g: Globals, results: list[Any], fmt_: str, key: str,
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
                     key: json.loads(render_one(r.value, "json", False)) if r.value is not None else None}
            for r in results}}, indent=2, ensure_ascii=False))
    elif fmt_ == "markdown":
        click.echo("\n".join(markdown))
    else:
        for r in results:
            click.echo(_section_head(r.name, r.target, "text"))
            click.echo(f"Error: {inert(r.error)}" if r.value is None
                       else render_one(r.value, "text", g.use_color()))
            click.echo("")
    for r in results:
        if r.error is not None:
            err(f'Error in environment "{r.name}": {r.error}')
    step_summary("\n".join(markdown))
    return most_severe(codes)


def say_target(target: Target, fmt_: str = "text") -> None:
    """The first line of every command that talks to an account: which one (never the token).

    On standard output before a text rendering; on standard error when standard output carries
    JSON or markdown (or the plan file itself, ``fmt_="stderr"``).
    """
    if fmt_ == "text":
        click.echo(inert(target.describe()))
        click.echo("")
    else:
        err(target.describe())


#: A plan file larger than this is not read (a plan of 10,000 schemas is a few tens of MB).
PLAN_FILE_MAX_BYTES = 256 * 1024 * 1024


def read_plan(planfile: Path) -> Plan:
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


def sigterm_handler(signum: int, frame: Any) -> None:
    """SIGTERM (CI cancellation, ``docker stop``) ends a command like Ctrl-C does, with its report."""
    raise KeyboardInterrupt



# ---------------------------------------------------------------------------------------------
# The root group (commands register on it in the cmd_* modules)

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

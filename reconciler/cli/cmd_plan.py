"""``plan`` (one account or several) and ``show`` (a saved plan)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    STDOUT,
    CommandError,
    Globals,
    Project,
    account_options,
    cli,
    deadline_of,
    envs_options,
    err,
    fresh_plan,
    global_options,
    inert,
    load_desired,
    many,
    plan_options,
    project_of,
    read_plan,
    render_plan,
    report_environments,
    resolve_many,
    run_async,
    say_target,
    single_target,
    step_summary,
)

if TYPE_CHECKING:
    from reconciler.config import Target
    from reconciler.files import LoadedSchemas
    from reconciler.plan import Plan

@cli.command()
@global_options
@envs_options
@account_options
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

    p = project_of(g)
    desired = load_desired(p)
    to_stdout = out is not None and str(out) == STDOUT
    if out is not None and not to_stdout:
        check_writable(out)  # a bad path fails before the account is contacted
    if many(envs, all_envs):
        if out is not None:
            raise CommandError("--out saves the plan of one account: pick one --env")
        return _plan_many(g, p, desired, url, sandbox, rate, timeout, envs, all_envs, fmt_, detailed_exitcode,
                          targets, excludes)
    target = single_target(p, envs, url, sandbox, rate, "plan --out" if out is not None else "plan")
    say_target(target, "stderr" if to_stdout else fmt_)
    options = plan_options(p, target, targets, excludes, desired.empty)
    the_plan = run_async(fresh_plan(target, desired, options, deadline_of(timeout), saved=out is not None))
    rendered = render_plan(the_plan, fmt_, g.use_color(sys.stderr if to_stdout else sys.stdout))
    click.echo(rendered, err=to_stdout)
    step_summary(render_plan(the_plan, "markdown", False))
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
            err(f"Saved the plan to {out}. Apply exactly this plan with: reconciler apply {out}")
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

    names, resolve = resolve_many(p, url, sandbox, rate, envs, all_envs, "plan")
    deadline = deadline_of(timeout)

    async def job(target: Target) -> Plan:
        return await fresh_plan(target, desired, plan_options(p, target, targets, excludes, desired.empty),
                                 deadline)

    results = run_async(run_environments(names, resolve, job))
    return report_environments(g, results, fmt_, "plan", render_plan,
                                lambda plan: _plan_code(plan, detailed_exitcode))



@cli.command()
@global_options
@click.argument("planfile", type=click.Path(path_type=Path))
@click.option("--format", "fmt_", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.pass_obj
def show(g: Globals, planfile: Path, fmt_: str) -> int:
    """Render a saved plan file."""
    the_plan = read_plan(planfile)
    if fmt_ == "text":
        click.echo(inert(f"Target: {the_plan.target or 'unknown'} "
                          f"(saved plan of {the_plan.created_at or 'unknown date'})"))
    click.echo(render_plan(the_plan, fmt_, g.use_color()))
    return EXIT_OK



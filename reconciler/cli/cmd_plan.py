"""``plan`` (one account or several) and ``show`` (a saved plan)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli import common

if TYPE_CHECKING:
    from reconciler.config import Target
    from reconciler.files import LoadedSchemas
    from reconciler.plan import Plan

@common.cli.command()
@common.global_options
@common.envs_options
@common.account_options
@click.option("--out", type=click.Path(path_type=Path, allow_dash=True),
              help="Save the plan (JSON) for `apply PLANFILE`; - prints it to standard output.")
@click.option("--format", "fmt_", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--target", "targets", multiple=True, help="Plan only this schema slug (repeatable; globs).")
@click.option("--exclude", "excludes", multiple=True, help="Leave this schema slug out (repeatable; globs).")
@click.pass_obj
def plan(g: common.Globals, envs: tuple[str, ...], all_envs: bool, url: str | None, sandbox: bool, rate: float | None,
         timeout: float | None, out: Path | None, fmt_: str, detailed_exitcode: bool, targets: tuple[str, ...],
         excludes: tuple[str, ...]) -> int:
    """Compare the schema files with the account and print what apply would do."""
    from reconciler.writes import check_writable

    p = common.project_of(g)
    desired = common.load_desired(p)
    to_stdout = out is not None and str(out) == common.STDOUT
    if out is not None and not to_stdout:
        check_writable(out)  # a bad path fails before the account is contacted
    if common.many(envs, all_envs):
        if out is not None:
            raise common.CommandError("--out saves the plan of one account: pick one --env")
        return _plan_many(g, p, desired, url, sandbox, rate, timeout, envs, all_envs, fmt_, detailed_exitcode,
                          targets, excludes)
    target = common.single_target(p, envs, url, sandbox, rate, "plan --out" if out is not None else "plan")
    common.say_target(target, "stderr" if to_stdout else fmt_)
    options = common.plan_options(p, target, targets, excludes, desired.empty)
    the_plan = common.run_async(common.fresh_plan(target, desired, options, common.deadline_of(timeout), saved=out is not None))
    rendered = common.render_plan(the_plan, fmt_, g.use_color(sys.stderr if to_stdout else sys.stdout))
    click.echo(rendered, err=to_stdout)
    common.step_summary(common.render_plan(the_plan, "markdown", False))
    if out is not None:
        if the_plan.has_errors:
            n = len(the_plan.errors)
            raise common.CommandError(f"the plan was not saved to {out}: it has {n} error{'s' if n != 1 else ''} "
                               "(NA codes above) that the API would refuse; fix the files and plan again")
        if to_stdout:
            click.echo(the_plan.to_json(), nl=False)
        else:
            from reconciler.writes import write_atomic

            write_atomic(out, the_plan.to_json())
            common.err(f"Saved the plan to {out}. Apply exactly this plan with: reconciler apply {out}")
    return _plan_code(the_plan, detailed_exitcode)


def _plan_code(the_plan: Plan, detailed_exitcode: bool) -> int:
    if the_plan.has_errors:
        return common.EXIT_ERROR
    if detailed_exitcode and the_plan.has_changes:
        return common.EXIT_CHANGES
    return common.EXIT_OK


def _plan_many(g: common.Globals, p: common.Project, desired: LoadedSchemas, url: str | None, sandbox: bool,
               rate: float | None, timeout: float | None, envs: tuple[str, ...], all_envs: bool, fmt_: str,
               detailed_exitcode: bool, targets: tuple[str, ...], excludes: tuple[str, ...]) -> int:
    """``plan`` for several environments at once: one section (and one exit code) per environment."""

    from reconciler.envs import run_environments

    names, resolve = common.resolve_many(p, url, sandbox, rate, envs, all_envs, "plan")
    deadline = common.deadline_of(timeout)

    async def job(target: Target) -> Plan:
        return await common.fresh_plan(target, desired, common.plan_options(p, target, targets, excludes, desired.empty),
                                 deadline)

    results = common.run_async(run_environments(names, resolve, job))
    return common.report_environments(g, results, fmt_, "plan", common.render_plan,
                                lambda plan: _plan_code(plan, detailed_exitcode))



@common.cli.command()
@common.global_options
@click.argument("planfile", type=click.Path(path_type=Path))
@click.option("--format", "fmt_", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.pass_obj
def show(g: common.Globals, planfile: Path, fmt_: str) -> int:
    """Render a saved plan file."""
    the_plan = common.read_plan(planfile)
    if fmt_ == "text":
        click.echo(common.inert(f"Target: {the_plan.target or 'unknown'} "
                          f"(saved plan of {the_plan.created_at or 'unknown date'})"))
    click.echo(common.render_plan(the_plan, fmt_, g.use_color()))
    return common.EXIT_OK



"""``drift``: read-only, what differs between the account and the files (exit 2 when it drifted)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from reconciler.cli import common

if TYPE_CHECKING:
    from reconciler.config import Target

@common.cli.command()
@common.global_options
@common.envs_options
@common.account_options
@click.option("--format", "fmt_", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--ignore", "ignores", multiple=True, metavar="PATTERN",
              help="Leave this drift alone: a glob on slug.field.property, e.g. '*.description' (repeatable; "
                   "added to reconciler.yaml's ignore list).")
@click.pass_obj
def drift(g: common.Globals, envs: tuple[str, ...], all_envs: bool, url: str | None, sandbox: bool, rate: float | None,
          timeout: float | None, fmt_: str, ignores: tuple[str, ...]) -> int:
    """Read-only: report what differs between the account and the files (exit 2 when it drifted)."""
    from reconciler.pipeline import check_drift
    from reconciler.render import render_drift

    p = common.project_of(g)
    desired = common.load_desired(p)
    patterns = (*p.config.ignore, *ignores)
    deadline = common.deadline_of(timeout)

    async def job(target: Target) -> Any:
        options = common.plan_options(p, target, (), (), desired.empty)
        async with common.client_for(target, deadline) as client:
            return await check_drift(client, desired.schemas, options, ignore=patterns, sources=desired.sources)

    if common.many(envs, all_envs):
        from reconciler.envs import run_environments

        names, resolve = common.resolve_many(p, url, sandbox, rate, envs, all_envs, "drift")
        results = common.run_async(run_environments(names, resolve, job))
        return common.report_environments(g, results, fmt_, "drift", render_drift,
                                    lambda d: common.EXIT_OK if d.in_sync else common.EXIT_CHANGES)
    target = common.single_target(p, envs, url, sandbox, rate, "drift")
    common.say_target(target, fmt_)
    report = common.run_async(job(target))
    click.echo(render_drift(report, fmt_, g.use_color()))  # type: ignore[arg-type]
    common.step_summary(render_drift(report, "markdown"))
    return common.EXIT_OK if report.in_sync else common.EXIT_CHANGES



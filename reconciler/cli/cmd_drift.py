"""``drift``: read-only, what differs between the account and the files (exit 2 when it drifted)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.common import (
    EXIT_CHANGES,
    EXIT_OK,
    Globals,
    account_options,
    cli,
    client_for,
    deadline_of,
    envs_options,
    global_options,
    load_desired,
    many,
    plan_options,
    project_of,
    report_environments,
    resolve_many,
    run_async,
    say_target,
    single_target,
    step_summary,
)

if TYPE_CHECKING:
    from reconciler.config import Target

@cli.command()
@global_options
@envs_options
@account_options
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

    p = project_of(g)
    desired = load_desired(p)
    patterns = (*p.config.ignore, *ignores)
    deadline = deadline_of(timeout)

    async def job(target: Target) -> Any:
        options = plan_options(p, target, (), (), desired.empty)
        async with client_for(target, deadline) as client:
            return await check_drift(client, desired.schemas, options, ignore=patterns, sources=desired.sources)

    if many(envs, all_envs):
        from reconciler.envs import run_environments

        names, resolve = resolve_many(p, url, sandbox, rate, envs, all_envs, "drift")
        results = run_async(run_environments(names, resolve, job))
        return report_environments(g, results, fmt_, "drift", render_drift,
                                    lambda d: EXIT_OK if d.in_sync else EXIT_CHANGES)
    target = single_target(p, envs, url, sandbox, rate, "drift")
    say_target(target, fmt_)
    report = run_async(job(target))
    click.echo(render_drift(report, fmt_, g.use_color()))  # type: ignore[arg-type]
    step_summary(render_drift(report, "markdown"))
    return EXIT_OK if report.in_sync else EXIT_CHANGES



"""``envs``: the environments of reconciler.yaml, for people and for CI fan-out (a GitHub Actions
matrix, GitLab ``parallel:matrix``, one Kubernetes CronJob per account). Offline; never a token."""

from __future__ import annotations

import json
from typing import Any

import click

from reconciler.cli import common


def environment_rows(config: Any) -> list[dict[str, str]]:
    """One ``{"name", "url", "token_env"}`` per environment, in file order. ``token_env`` is the variable
    the environment's token is read from: its own ``token_env``, else ``AC_API_TOKEN`` (as ``--env`` does)."""
    from reconciler.config import ENV_TOKEN

    return [{"name": name, "url": entry.url, "token_env": entry.token_env or ENV_TOKEN}
            for name, entry in config.environments.items()]


@common.cli.command()
@common.global_options
@click.option("--json", "as_json", is_flag=True,
              help='A JSON array of {"name", "url", "token_env"} (for a CI matrix: fromJSON in GitHub Actions).')
@click.pass_obj
def envs(g: common.Globals, as_json: bool) -> int:
    """List the environments of reconciler.yaml: name, URL and the variable holding the token."""
    p = common.project_of(g)
    rows = environment_rows(p.config)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return common.EXIT_OK
    if not rows:
        click.echo(f"No environments in {p.file}: without them, commands use AC_API_URL/AC_API_TOKEN, "
                   "--url, or --sandbox.")
        return common.EXIT_OK
    default = p.config.default_env
    width = max(len(r["name"]) for r in rows) + (2 if default else 0)
    url_width = max(len(r["url"]) for r in rows)
    for r in rows:
        name = r["name"] + (" *" if r["name"] == default else "")
        click.echo(common.inert(f"{name:<{width}}  {r['url']:<{url_width}}  ${r['token_env']}"))
    if default:
        click.echo("\n* default_env: the target when none is given (no --env, --url, --sandbox or AC_API_URL)")
    return common.EXIT_OK

"""``graph``: an ER diagram of the schema files, or of the account with ``--live``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler.cli import common


@common.cli.command()
@common.global_options
@common.env_option
@common.account_options
@click.option("--format", "fmt_", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid", show_default=True,
              help="Mermaid erDiagram source, Graphviz DOT source, or SVG drawn by Graphviz's dot.")
@click.option("--live", is_flag=True, help="Draw the account's schemas instead of the files'.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the diagram to this file (default: print it).")
@click.pass_obj
def graph(g: common.Globals, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
          timeout: float | None, fmt_: str, live: bool, out: Path | None) -> int:
    """Draw the schemas as an ER diagram: fields, and relationships to contacts and each other."""
    from reconciler.render.graph import diagram, to_dot, to_mermaid
    from reconciler.writes import check_writable, write_atomic

    if out is not None:
        check_writable(out)  # a bad path fails before anything is read
    if fmt_ == "svg":
        from reconciler.graphviz import find_dot

        find_dot()  # no Graphviz: one line before the account is contacted
    p = common.project_of(g)
    if live:
        target = common.single_target(p, envs, url, sandbox, rate, "graph --live")
        common.err(target.describe())
        schemas: Any = common.live_schemas(target, timeout)
    else:
        common.require_schema_files(p)
        schemas = common.load_desired(p).schemas
    d = diagram(schemas)
    if fmt_ == "svg":
        from reconciler.graphviz import to_svg

        text = to_svg(d).decode("utf-8")
    else:
        text = to_mermaid(d) if fmt_ == "mermaid" else to_dot(d)
    if out is None:
        click.echo(text, nl=False)
    else:
        write_atomic(out, text)
        common.err(f"Wrote the {fmt_} diagram of {d.schema_count} schema{'s' if d.schema_count != 1 else ''} to {out}")
    return common.EXIT_OK

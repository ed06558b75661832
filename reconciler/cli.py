"""Command-line interface: a thin shell over the library.

Every command is a plain function that returns its exit code; only :func:`main` exits.
"""

from __future__ import annotations

import sys

import click

from reconciler import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
def cli() -> None:
    """Schema-as-code for ActiveCampaign Custom Objects."""


@cli.group()
def sandbox() -> None:
    """The embedded ActiveCampaign Custom Objects emulator."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: the only place that exits the process."""
    try:
        rc = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        rc = 1
    except click.ClickException as exc:
        exc.show()
        rc = 1
    sys.exit(rc if isinstance(rc, int) else 0)

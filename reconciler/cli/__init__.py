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
from collections.abc import Iterator
from contextlib import contextmanager

import click

# the commands register on the root group when their modules are imported
from reconciler.cli import (  # noqa: F401
    cmd_apply,
    cmd_drift,
    cmd_envs,
    cmd_files,
    cmd_graph,
    cmd_init,
    cmd_plan,
    cmd_records,
    cmd_sandbox,
)
from reconciler.cli.common import EXIT_ERROR, EXIT_OK, CommandError, cli, err, sigterm_handler

__all__ = ["cli", "main", "run"]



@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGTERM, sigterm_handler)
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
        err("Interrupted.")
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:  # exit 1, one line: 2 means "changes" for plan and drift
        where = exc.ctx.command_path if exc.ctx is not None else "reconciler"
        err(f"Error: {exc.format_message()} (see '{where} --help')")
        return EXIT_ERROR
    except click.ClickException as exc:
        err(f"Error: {exc.format_message()}")
        return EXIT_ERROR
    except CommandError as exc:
        err(f"Error: {exc}")
        return exc.code
    except Exception as exc:
        from reconciler.errors import ReconcilerError
        from reconciler.fileerrors import FilesError

        if isinstance(exc, FilesError):  # one file:line:col line per problem
            for error in exc.errors:
                err(str(error))
            return EXIT_ERROR
        if isinstance(exc, ReconcilerError):
            err(f"Error: {exc}")
            return EXIT_ERROR
        if os.environ.get("RECONCILER_DEBUG"):
            raise
        err(f"Internal error: {exc.__class__.__name__}: {exc} (set RECONCILER_DEBUG=1 for a traceback)")
        return EXIT_ERROR
    return rc if isinstance(rc, int) else EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Console entry point: the only place that exits the process."""
    sys.exit(run(argv))

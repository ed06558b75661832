"""The runtime dependency closure of pyproject.toml, as installed here, and constraints.txt.

``python -m tests.support.constraints > constraints.txt`` regenerates the file from the current
virtual environment (only the runtime dependencies and their own runtime dependencies: no extras,
nothing from ``[dev]``); tests/test_release.py checks that the file and the closure agree.

Markers are evaluated for this interpreter (CPython 3.11+ on Linux, as in the image and the CI
runners): a dependency that only another platform needs is not in the file.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"

HEADER = """\
# Pinned runtime dependencies of activecampaign-reconciler (the closure of pyproject.toml's
# [project] dependencies, no extras), as tested. Used by the Dockerfile and the CI examples:
#   pip install -c constraints.txt activecampaign-reconciler
# Regenerate from a virtual environment where the tests pass:
#   python -m tests.support.constraints > constraints.txt
# tests/test_release.py fails when a runtime dependency is missing here or a pin stops satisfying it.
"""


@dataclass
class Closure:
    """Every runtime distribution: its installed version and the specifiers that require it."""

    versions: dict[NormalizedName, str] = field(default_factory=dict)
    required_by: dict[NormalizedName, list[tuple[str, Requirement]]] = field(default_factory=dict)


def project_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return [Requirement(r) for r in data["project"]["dependencies"]]


def _applies(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate({"extra": ""})


def runtime_closure(roots: list[Requirement] | None = None) -> Closure:
    """Follow the installed metadata from pyproject's dependencies (``PackageNotFoundError`` when one
    is not installed: install the project first)."""
    closure = Closure()
    todo = [("pyproject.toml", r) for r in (roots if roots is not None else project_requirements())]
    while todo:
        parent, req = todo.pop()
        if not _applies(req):
            continue
        name = canonicalize_name(req.name)
        closure.required_by.setdefault(name, []).append((parent, req))
        if name in closure.versions:
            continue
        dist = md.distribution(req.name)
        closure.versions[name] = dist.version
        todo.extend((f"{name} {dist.version}", Requirement(r)) for r in dist.requires or [])
    return closure


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*(?:#.*)?$")


def read_pins(text: str) -> dict[NormalizedName, str]:
    """``name==version`` lines of a constraints file; anything else (but comments) is a ValueError."""
    pins: dict[NormalizedName, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _PIN.match(line)
        if not m:
            raise ValueError(f"constraints.txt:{number}: not an exact pin (name==version): {line}")
        name = canonicalize_name(m.group(1))
        if name in pins:
            raise ValueError(f"constraints.txt:{number}: {name} is pinned twice")
        pins[name] = m.group(2)
    return pins


def render(closure: Closure) -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(closure.versions.items()))


if __name__ == "__main__":
    sys.stdout.write(render(runtime_closure()))

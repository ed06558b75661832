"""Ready to ship (issue 17): the distribution name, the pinned runtime dependencies, the wheel, the
Docker image's shape (no Docker engine here: the Dockerfile is parsed) and shell completion."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import ROOT
from tests.support import constraints as cons

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DIST = "activecampaign-reconciler"
_NETWORK = ("NewConnectionError", "Network is unreachable", "Name or service not known",
            "Temporary failure in name resolution", "ConnectTimeout", "ReadTimeoutError")


# ---------------------------------------------------------------------------------------------
# Distribution name and constraints


def test_distribution_name_and_command() -> None:
    project = PYPROJECT["project"]
    # "reconciler" on PyPI is an unrelated package; this name was free when chosen (README, Install)
    assert project["name"] == DIST
    assert project["scripts"] == {"reconciler": "reconciler.cli:main"}
    assert PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"] == ["reconciler*"]


def test_jinja2_is_a_runtime_dependency_and_pinned() -> None:
    names = {canonicalize_name(r.name) for r in cons.project_requirements()}
    assert "jinja2" in names
    pins = cons.read_pins(cons.CONSTRAINTS.read_text(encoding="utf-8"))
    assert {"jinja2", "markupsafe"} <= set(pins)


def test_constraints_pin_exactly_the_runtime_closure() -> None:
    """Every runtime dependency (and theirs, from the installed metadata) is pinned, nothing else is,
    and each pin satisfies every specifier that asks for it: the file cannot go stale silently."""
    closure = cons.runtime_closure()
    pins = cons.read_pins(cons.CONSTRAINTS.read_text(encoding="utf-8"))
    missing = sorted(set(closure.versions) - set(pins))
    extra = sorted(set(pins) - set(closure.versions))
    assert not missing, f"not pinned in constraints.txt: {missing} (python -m tests.support.constraints)"
    assert not extra, f"pinned but no runtime dependency: {extra}"
    for name, version in pins.items():
        for parent, req in closure.required_by[name]:
            assert req.specifier.contains(version, prereleases=True), (
                f"constraints.txt pins {name}=={version}, but {parent} requires {req}")
    # the dev tools are not runtime dependencies
    assert not {"pytest", "ruff", "mypy", "hypothesis"} & set(pins)


def test_read_pins_refuses_loose_lines() -> None:
    assert cons.read_pins("# c\nhttpx==0.29.0  # why\n\n") == {"httpx": "0.29.0"}
    with pytest.raises(ValueError, match="not an exact pin"):
        cons.read_pins("httpx>=0.27\n")
    with pytest.raises(ValueError, match="pinned twice"):
        cons.read_pins("Jinja2==3.1.6\njinja2==3.1.6\n")


def test_the_committed_file_is_what_the_generator_writes() -> None:
    assert cons.CONSTRAINTS.read_text(encoding="utf-8") == cons.render(cons.runtime_closure())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and any(n in r.stdout + r.stderr for n in _NETWORK):
        pytest.skip("no package index reachable to fetch the build backend")
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("*.whl")
    return whl


def test_the_wheel_installs_the_reconciler_command_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    assert wheel.name.startswith("activecampaign_reconciler-")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    command = env_dir / "bin" / "reconciler"
    assert command.exists()
    # the dependencies come from this environment's site-packages (they are not downloaded again); the
    # reconciler package itself comes from the fresh venv, whose site-packages is searched first
    environ = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    r = subprocess.run([str(command), "--version"], capture_output=True, text=True, timeout=60, env=environ,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"reconciler, version {PYPROJECT['project']['version']}"
    where = subprocess.run([str(py), "-c", "import reconciler; print(reconciler.__file__)"], env=environ,
                           cwd=tmp_path, capture_output=True, text=True, timeout=60).stdout
    assert where.startswith(str(env_dir)), where
    meta = subprocess.run([str(py), "-c", f"import importlib.metadata as m; print(m.metadata({DIST!r})['Name'])"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60).stdout.strip()
    assert meta == DIST


def test_pip_resolves_the_wheel_with_the_constraints_to_exactly_the_pins(wheel: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--ignore-installed",
                        "--report", str(report), "-c", str(cons.CONSTRAINTS), str(wheel)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and any(n in r.stdout + r.stderr for n in _NETWORK):
        pytest.skip("no package index reachable")
    assert r.returncode == 0, r.stderr
    chosen = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
              for i in json.loads(report.read_text())["install"]}
    assert chosen.pop(DIST) == PYPROJECT["project"]["version"]
    assert chosen == cons.read_pins(cons.CONSTRAINTS.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Shell completion (Click's own): the README's command prints a script


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_script(shell: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"_RECONCILER_COMPLETE={shell}_source reconciler" in readme
    environ = dict(os.environ, _RECONCILER_COMPLETE=f"{shell}_source")
    r = subprocess.run([str(Path(sys.executable).parent / "reconciler")], env=environ, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "_RECONCILER_COMPLETE" in r.stdout and len(r.stdout.splitlines()) > 5
    if shell == "bash":
        assert re.search(r"complete .*-F _reconciler_completion reconciler", r.stdout), r.stdout


def test_shell_completion_completes_commands() -> None:
    environ = dict(os.environ, _RECONCILER_COMPLETE="bash_complete", COMP_WORDS="reconciler pl", COMP_CWORD="1")
    r = subprocess.run([str(Path(sys.executable).parent / "reconciler")], env=environ, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "plain,plan" in r.stdout.splitlines()

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


# ---------------------------------------------------------------------------------------------
# Docker (no engine here: the Dockerfile is parsed and its properties asserted; hadolint is not
# available either). tests/test_ci.py checks the base image pin, the non-root USER and .dockerignore.


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
INSTRUCTIONS = _instructions(DOCKERFILE)
FINAL = INSTRUCTIONS[max(i for i, (k, _) in enumerate(INSTRUCTIONS) if k == "FROM"):]


def _dockerignored(path: str) -> bool:
    import fnmatch

    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    return any(fnmatch.fnmatch(path, p.removeprefix("**/")) or path.split("/")[0] == p for p in patterns)


def test_docker_installs_with_the_constraints() -> None:
    runs = [a for k, a in FINAL if k == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert installs, "the final stage installs the wheel"
    for command in installs:
        m = re.search(r"(?:--constraint|-c)[ =](\S+)", command)
        assert m, f"pip install without constraints: {command}"
        copied = [a.split() for k, a in FINAL if k == "COPY" and not a.startswith("--from")]
        assert any(src == "constraints.txt" and dest == m.group(1) for src, dest in copied), copied
    assert not _dockerignored("constraints.txt"), "the build context has constraints.txt"
    for k, a in INSTRUCTIONS:
        if k == "COPY" and not a.startswith("--from"):
            for src in a.split()[:-1]:
                assert (ROOT / src).exists() and not _dockerignored(src), src


def test_docker_oci_labels() -> None:
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z.]+)="([^"]*)"',
                             " ".join(a for k, a in FINAL if k == "LABEL")))
    assert {"title", "description", "version", "revision", "licenses", "source"} <= {
        k.removeprefix("org.opencontainers.image.") for k in labels}
    assert labels["org.opencontainers.image.title"] == DIST
    assert labels["org.opencontainers.image.licenses"] == PYPROJECT["project"]["license"]["text"]
    args = {a.split("=")[0]: a.split("=", 1)[1] for k, a in FINAL if k == "ARG" and "=" in a}
    assert args["VERSION"] == PYPROJECT["project"]["version"]
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"


def test_docker_works_under_any_uid_and_handles_sigterm() -> None:
    env = " ".join(a for k, a in FINAL if k == "ENV")
    home = re.search(r"HOME=(\S+)", env)
    assert home, "HOME is set (an arbitrary --user has no passwd entry, so no home of its own)"
    assert any(re.search(rf"install -d -m 1777 .*{re.escape(home.group(1))}", a) for k, a in FINAL if k == "RUN")
    (user,) = [a for k, a in FINAL if k == "USER"]
    assert re.fullmatch(r"\d+:\d+", user), "numeric uid:gid: no user name that --user would have to match"
    assert ("WORKDIR", "/work") in FINAL
    assert ("STOPSIGNAL", "SIGTERM") in FINAL
    # exec form, so reconciler is PID 1 and receives the signal; its own handler turns SIGTERM into
    # the Ctrl-C path (tests/test_cli_signals.py sends a real SIGTERM to the real CLI)
    (entry,) = [a for k, a in FINAL if k == "ENTRYPOINT"]
    assert json.loads(entry) == ["reconciler"]
    from reconciler.cli import common

    with pytest.raises(KeyboardInterrupt):
        common.sigterm_handler(15, None)
    assert "--init" in DOCKERFILE and "--user" in DOCKERFILE


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to switch uid")
def test_the_cli_runs_as_a_uid_without_passwd_entry_and_writes_files_it_owns() -> None:
    """What `docker run --user "$(id -u):$(id -g)"` does: an arbitrary uid, no passwd entry, a HOME
    that is not its own; the work directory belongs to that uid, and so do the files written there."""
    import pwd
    import shutil
    import tempfile

    uid = 54321
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    with tempfile.TemporaryDirectory() as base:
        os.chmod(base, 0o755)
        home, work = Path(base) / "home", Path(base) / "work"
        home.mkdir(mode=0o1777)
        os.chmod(home, 0o1777)
        shutil.copytree(ROOT / "schemas", work / "schemas")
        for p in [work, *work.rglob("*")]:
            os.chown(p, uid, uid)
        environ = {"PATH": os.environ["PATH"], "HOME": str(home), "CI": "true", "NO_COLOR": "1"}
        command = str(Path(sys.executable).parent / "reconciler")
        try:
            subprocess.run([command, "--version"], cwd=work, env=environ, user=uid, group=uid, extra_groups=[],
                           capture_output=True, timeout=60, check=True)
        except (PermissionError, subprocess.CalledProcessError):
            pytest.skip(f"this Python ({os.path.realpath(sys.executable)}) is not readable by other users")
        for args in (["export", "--help"], ["plan", "--sandbox", "--out", "plan.json"], ["fmt"]):
            r = subprocess.run([command, *args], cwd=work, env=environ, user=uid, group=uid, extra_groups=[],
                               capture_output=True, text=True, timeout=120)
            assert r.returncode in (0, 2), (args, r.stdout, r.stderr)
        written = [work / "plan.json", *(work / ".reconciler").rglob("*")]
        assert (work / "plan.json").exists()
        assert {p.stat().st_uid for p in written} == {uid}


def test_the_wheel_ships_the_init_templates_as_files(wheel: Path) -> None:
    """The templates are symbolic links in the repository; the wheel holds their content."""
    import zipfile

    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        sources = {"reconciler/templates/orders.yaml": ROOT / "schemas" / "orders.yaml",
                   "reconciler/templates/gitlab-ci.yml": ROOT / "examples" / "gitlab" / ".gitlab-ci.yml",
                   **{f"reconciler/templates/github/{p.name}": p for p in (ROOT / "examples" / "github").glob("*.yml")}}
        for name, source in sources.items():
            assert name in names, name
            assert whl.read(name) == source.read_bytes(), name


def test_docker_build_stage_resolves_the_template_links() -> None:
    """Docker's COPY keeps symbolic links as links: their targets must be in the build stage too, or
    the wheel built there has no init templates."""
    build = INSTRUCTIONS[:max(i for i, (k, _) in enumerate(INSTRUCTIONS) if k == "FROM")]
    copied = [a.split()[:-1] for k, a in build if k == "COPY" and not a.startswith("--from")]
    sources = [src for group in copied for src in group]
    links = [p for p in (ROOT / "reconciler" / "templates").rglob("*") if p.is_symlink()]
    assert links
    for link in links:
        target = link.resolve().relative_to(ROOT).as_posix()
        assert any(target == s or target.startswith(s.rstrip("/") + "/") for s in sources), target
        assert not _dockerignored(target), target

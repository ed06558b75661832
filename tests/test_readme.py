"""The README says what the code does (issue 10, acceptance 6): its commands run, its tables of
commands, options and target errors match the CLI.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from reconciler.cli import cli
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def _run(cwd: Path, command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **env)
    return subprocess.run(shlex.split(command), cwd=cwd, env=environ, capture_output=True, text=True, timeout=120)


def test_the_main_job_runs_as_written_even_in_ci(tmp_path: Path) -> None:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block is not None
    first = next(line for line in block.group(1).splitlines() if line and not line.startswith("#"))
    steps = [s.strip() for s in first.split("&&")]
    assert steps[:3] == ["python3 -m venv .venv", ". .venv/bin/activate", "pip install -e ."]
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    outputs = []
    for step in steps[3:]:
        r = _run(tmp_path, step, {"CI": "true"})
        assert r.returncode == 0, (step, r.stdout, r.stderr)
        outputs.append(r.stdout)
    assert len(outputs) == 3
    assert "Plan: 1 to add" in outputs[0]
    assert "Apply complete!" in outputs[1]
    assert "No changes. The account matches the files." in outputs[2]


def test_the_test_command_is_what_ci_runs() -> None:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block is not None
    lines = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    test_command = lines[1].split("&& ", 3)[-1]
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _commands() -> dict[str, click.Command]:
    out: dict[str, click.Command] = {"reconciler": cli}

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in group.commands.items():
            out[f"{prefix} {name}"] = command
            if isinstance(command, click.Group):
                walk(command, f"{prefix} {name}")

    walk(cli, "reconciler")
    return out


ROWS = re.findall(r"^\| `(reconciler[^`]*)` \|", _section("Commands"), re.M)


@pytest.mark.parametrize("row", ROWS)
def test_every_command_and_option_in_the_table_exists(row: str) -> None:
    commands = _commands()
    words = row.replace("\\|", "|").split()
    path = "reconciler"
    for word in words[1:]:
        if f"{path} {word}" in commands:
            path = f"{path} {word}"
        else:
            break
    command = commands[path]
    options = {opt for p in command.params for opt in p.opts}
    for option in re.findall(r"(--[a-z][a-z-]*)", row):
        assert option in options, f"{path} has no {option}"


TARGET_ROWS = {
    # row of the README's Targets table -> how to reproduce it
    "`CI` is set": (["plan"], {"CI": "true", "AC_API_TOKN": "typo"}, None),
    "defines environments": (["plan"], {}, "environments:\n  staging: {url: https://a.api-us1.com}\n"
                                           "  production: {url: https://b.api-us1.com}\n"),
    "`--config PATH`": (["--config", "PATH", "plan"], {}, None),
    "a token variable set but no URL": (["plan"], {"AC_API_TOKEN": "x"}, None),
    "`--env` given twice": (["apply", "--env", "staging", "--env", "production"], {},
                            "environments:\n  staging: {url: https://a.api-us1.com}\n"
                            "  production: {url: https://b.api-us1.com}\n"),
    "`--target`/`--exclude`": (["plan", "--sandbox", "--target", "nope"], {}, None),
}


@pytest.mark.parametrize("row", sorted(TARGET_ROWS))
def test_the_targets_table_quotes_the_real_errors(row: str, tmp_path: Path) -> None:
    table = _section("Targets")
    line = next(x for x in table.splitlines() if x.startswith("| ") and row in x)
    quoted = line.rsplit("| `", 1)[1].rstrip("` |")
    args, env, config = TARGET_ROWS[row]
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    if config:
        (tmp_path / "reconciler.yaml").write_text(config, encoding="utf-8")
    r = _run(tmp_path, "reconciler " + " ".join(shlex.quote(a) for a in args), env)
    assert r.returncode == 1
    actual = r.stderr.strip().splitlines()[-1]
    for part in quoted.split("…"):
        assert part.strip() in actual, (quoted, actual)


def test_the_first_change_walkthrough_runs_as_written(tmp_path: Path) -> None:
    section = README[README.index("### A first change"):README.index("A plan reads like Terraform's")]
    addition = re.search(r"```yaml\n(.*?)```", section, re.S)
    console = re.search(r"```console\n(.*?)```", section, re.S)
    assert addition is not None and console is not None
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    assert _run(tmp_path, "reconciler apply --sandbox --auto-approve", {}).returncode == 0
    seed = tmp_path / "schemas" / "orders.yaml"
    text = seed.read_text(encoding="utf-8")
    seed.write_text(text.replace("relationships:\n", addition.group(1) + "relationships:\n", 1), encoding="utf-8")
    # each "$ command" of the block, then its output as printed ("…" stands for lines left out)
    blocks = re.split(r"^\$ ", console.group(1), flags=re.M)[1:]
    for block in blocks:
        command, _, expected = block.partition("\n")
        r = _run(tmp_path, command + " --no-color", {})
        assert r.returncode == 0, (command, r.stdout, r.stderr)
        want = [line for line in expected.splitlines() if line != "…"]
        got = r.stdout.rstrip("\n").splitlines()
        assert (got[-len(want):] if "…" in expected else got) == want, r.stdout


def test_the_python_api_example_runs_as_written(tmp_path: Path) -> None:
    """The README's library example, as a script in a fresh project: it plans the shipped schemas
    against the embedded sandbox, applies them, verifies, and then reports no drift."""
    code = re.search(r"```python\n(.*?)```", _section("Python API"), re.S)
    assert code is not None
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "example.py").write_text(code.group(1), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "AC_API_URL", "AC_API_TOKEN")}
    r = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert any(line.startswith("Plan: ") and " to add" in line for line in out), r.stdout
    assert "verified" in out and "No drift. The account matches the files." in out, r.stdout
    assert (tmp_path / ".reconciler" / "sandbox.sqlite3").is_file()

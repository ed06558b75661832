"""CI integration: the step summary (issue 6, acceptance 3), the example pipelines (acceptance 5),
the Dockerfile's shape and the pre-commit hooks."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.cli import run
from tests.conftest import ROOT, Cli, honours_required

EXAMPLES = sorted([*(ROOT / "examples" / "github").glob("*.yml"), ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"])
GLOBAL_FLAGS = {"--dir": True, "--config": True, "--no-color": False}  # flag -> takes a value


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# $GITHUB_STEP_SUMMARY


def test_step_summary_receives_markdown_when_set(seed_files: Cli, sandbox: Any, tmp_path: Path) -> None:
    cli = seed_files
    summary = tmp_path / "summary.md"
    cli.monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    assert cli("plan").code == 0
    text = summary.read_text()
    assert text.startswith("### Reconciler plan\n")
    assert "**Plan: 1 to add, 0 to change, 0 to destroy.**" in text

    assert cli("apply", "--auto-approve").code == 0
    text = summary.read_text()
    assert "### Reconciler apply" in text
    assert "**Apply complete! Resources: 1 added, 0 changed, 0 destroyed.**" in text

    assert cli("drift").code == 0
    text = summary.read_text()
    assert text.count("### Reconciler") == 3, "each command appends, none overwrites"
    drift_part = text.split("### Reconciler drift", 1)[1]
    assert "| 0 | 0 | 0 |" in drift_part or not honours_required(sandbox)
    assert "**No drift. The account matches the files" in drift_part  # (1 note) where required is ignored

    # a refused apply is summarised too
    cli.write("orders.yaml", (ROOT / "schemas" / "orders.yaml").read_text().replace(
        "  - id: order-link\n    type: text\n    labels: {singular: Receipt Link, plural: Receipt Links}\n", ""))
    assert cli("apply", "--auto-approve").code == 3
    assert "**Apply refused; nothing was changed: DL102" in summary.read_text()


def test_step_summary_untouched_when_unset(seed_files: Cli, tmp_path: Path) -> None:
    cli = seed_files
    cli.monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    before = sorted(p for p in tmp_path.rglob("*"))
    assert cli("plan").code == 0
    assert cli("apply", "--auto-approve").code == 0
    assert cli("drift").code == 0
    after = sorted(p for p in tmp_path.rglob("*") if ".reconciler" not in p.parts)
    assert after == before, "no summary file (or anything else) was written"
    cli.monkeypatch.setenv("GITHUB_STEP_SUMMARY", "")
    assert cli("plan").code == 0
    assert sorted(p for p in tmp_path.rglob("*") if ".reconciler" not in p.parts) == before


# ---------------------------------------------------------------------------------------------
# Example pipelines: parse, and every `reconciler` call uses commands and flags that exist


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


_CALL = re.compile(r"(?:^|&&|\|\||;|\||\$\(|\bthen\b|\bdo\b)\s*(?:[A-Z_]+=\S+\s+)*reconciler\s+([a-z-].*)$")
_STOP = {">", ">>", "|", "||", "&&", ";", "2>", "2>&1", ")", "<"}


def reconciler_calls(path: Path) -> list[tuple[list[str], list[str]]]:
    """Every ``reconciler`` invocation in a pipeline file: (command path, flags used)."""
    calls = []
    for text in _strings(load_yaml(path)):
        for line in text.splitlines():
            m = _CALL.search(line.strip())
            if not m:
                continue
            tokens = []
            for tok in shlex.split(m.group(1).split(";")[0], comments=True):
                if tok in _STOP or tok.startswith((">", "2>")):
                    break
                tokens.append(tok)
            i = 0
            while i < len(tokens) and tokens[i] in GLOBAL_FLAGS:
                i += 2 if GLOBAL_FLAGS[tokens[i]] else 1
            command = [tokens[i]]
            if tokens[i] == "sandbox":
                command.append(tokens[i + 1])
            flags = [t.split("=")[0] for t in tokens[i + len(command):] if t.startswith("-")]
            calls.append((command, flags))
    return calls


def test_examples_exist_and_parse() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"reconciler-plan.yml", "reconciler-apply.yml", "reconciler-drift.yml", ".gitlab-ci.yml"} <= names
    for path in EXAMPLES:
        assert isinstance(load_yaml(path), dict), path


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_call_only_existing_commands_and_flags(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls = reconciler_calls(path)
    assert calls, f"{path.name} calls reconciler"
    for command, flags in calls:
        capsys.readouterr()
        code = run([*command, "--help"])
        out = capsys.readouterr().out
        assert code == 0, f"{path.name}: reconciler {' '.join(command)} does not exist"
        for flag in flags:
            assert re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=]|$)", out, re.M), (
                f"{path.name}: reconciler {' '.join(command)} has no flag {flag}")


def test_github_workflows_do_what_the_readme_says() -> None:
    gh = ROOT / "examples" / "github"
    plan = load_yaml(gh / "reconciler-plan.yml")
    assert "pull_request" in plan["on"]
    assert plan["permissions"]["pull-requests"] == "write"
    plan_text = (gh / "reconciler-plan.yml").read_text()
    assert "<!-- reconciler-plan:$ENV_NAME -->" in plan_text and "-X PATCH" in plan_text  # one sticky comment per env
    assert "upload-artifact" in plan_text and "--out plan.json" in plan_text

    apply = load_yaml(gh / "reconciler-apply.yml")
    assert apply["on"]["push"]["branches"] == ["main"]
    assert apply["jobs"]["apply"]["environment"] == "${{ matrix.env.name }}"
    assert (["apply"], ["--env"]) in reconciler_calls(gh / "reconciler-apply.yml")

    drift = load_yaml(gh / "reconciler-drift.yml")
    assert drift["on"]["schedule"][0]["cron"]
    assert drift["permissions"]["issues"] == "write"
    assert (["drift"], ["--env", "--format"]) in reconciler_calls(gh / "reconciler-drift.yml")

    gitlab = load_yaml(ROOT / "examples" / "gitlab" / ".gitlab-ci.yml")
    assert {"validate", "plan", "apply", "drift"} <= set(gitlab)
    assert gitlab["apply"]["environment"]["name"] == "$RECONCILER_ENV"
    assert gitlab["apply"]["needs"] == ["plan"]


# ---------------------------------------------------------------------------------------------
# Dockerfile and pre-commit hooks (no Docker engine here: the shape is checked)


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_shape() -> None:
    ins = _instructions((ROOT / "Dockerfile").read_text())
    args = dict(a.split("=", 1) for k, a in ins if k == "ARG" and "=" in a)
    froms = [a.split()[0] for k, a in ins if k == "FROM"]
    assert froms, "a FROM"
    for image in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        name, _, digest = image.partition("@")
        repo, _, tag = name.partition(":")
        assert repo == "python" and "slim" in tag, image
        assert re.fullmatch(r"\d+\.\d+\.\d+-slim(-\w+)?", tag), f"full version tag: {image}"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"pinned by digest: {image}"
    final = ins[max(i for i, (k, _) in enumerate(ins) if k == "FROM"):]
    users = [a for k, a in final if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as a non-root user"
    assert ("ENTRYPOINT", '["reconciler"]') in final
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests", ".reconciler", "*.sqlite3"} <= set(ignore)


def test_pre_commit_hooks() -> None:
    hooks = {h["id"]: h for h in load_yaml(ROOT / ".pre-commit-hooks.yaml")}
    assert hooks["reconciler-validate"]["entry"] == "reconciler validate"
    assert hooks["reconciler-fmt"]["entry"] == "reconciler fmt"  # pre-commit's convention: the hook fixes
    assert hooks["reconciler-fmt-check"]["entry"] == "reconciler fmt --check --diff"
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        cmd = hook["entry"].split()[1:]
        assert run([cmd[0], "--help"]) == 0

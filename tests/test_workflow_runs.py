"""The example GitHub workflows run (issue 17, acceptance 2 and 3): each workflow's jobs and shell
steps executed by tests/support/workflow.py as a runner would, against sandboxes over HTTP, with a
fake GitHub (tests/support/fake_gh.py, a ``gh`` that records its calls and checks the token's
permissions). The scenarios: a pull request's plan and its sticky comment; the apply on merge of
exactly that plan; main moved since the plan, so it is re-planned behind an approval; the reviewed,
manually dispatched data-loss path; drift opening, updating and closing one issue; and the matrix
fed by ``reconciler envs --json`` running three accounts' jobs concurrently, each writing only to its
own account."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.sandbox.testing import RunningSandbox, running_sandbox
from tests.conftest import ROOT, profile_settings
from tests.support.fake_gh import FakeGitHub
from tests.support.tools import tool
from tests.support.workflow import Runner, WorkflowRun

WORKFLOWS = ROOT / "examples" / "github"
ORDERS = (ROOT / "schemas" / "orders.yaml").read_text(encoding="utf-8")
#: a field added by a second pull request
GIFT = ("  - id: order-gift\n    type: text\n    labels: {singular: Gift Note, plural: Gift Notes}\n")
LINK = "  - id: order-link\n    type: text\n    labels: {singular: Receipt Link, plural: Receipt Links}\n"


def token_of(name: str) -> str:
    return f"tok-{name}-3c9e"


def token_env(name: str) -> str:
    return f"AC_{name.upper()}_TOKEN"


@dataclass
class Project:
    """A GitOps repository (git, the example workflows in .github/workflows), its fake GitHub, the
    runner, and one sandbox per environment of its reconciler.yaml."""

    repo: Path
    gh: FakeGitHub
    runner: Runner
    boxes: dict[str, RunningSandbox]

    def git(self, *args: str) -> str:
        r = subprocess.run(["git", *args], cwd=self.repo, check=True, capture_output=True, text=True)
        return r.stdout.strip()

    def commit(self, message: str, files: dict[str, str | None]) -> str:
        for name, text in files.items():
            path = self.repo / name
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def branch(self, name: str, files: dict[str, str | None], base: str = "main") -> tuple[int, str]:
        """A pull request from a new branch off ``base`` with one commit: (number, head sha)."""
        self.git("checkout", "-q", "-b", name, base)
        sha = self.commit(f"change on {name}", files)
        self.git("checkout", "-q", "main")
        return self.gh.add_pull(name, sha), sha

    def merge(self, number: int, branch: str) -> str:
        self.git("merge", "-q", "--no-ff", "-m", f"Merge pull request #{number} from {branch}", branch)
        sha = self.git("rev-parse", "HEAD")
        self.gh.merge_pull(number, sha)
        return sha

    @property
    def secrets(self) -> dict[str, dict[str, str]]:
        """Each GitHub environment NAME and NAME-approval holds its account's token (as the README says)."""
        out = {}
        for name in self.boxes:
            out[name] = out[f"{name}-approval"] = {token_env(name): token_of(name)}
        return out

    def run(self, workflow: str, **kw: Any) -> WorkflowRun:
        kw.setdefault("secrets", self.secrets)
        return self.runner.run(WORKFLOWS / workflow, repo=self.repo, **kw)

    def plan_pr(self, number: int, branch: str, sha: str) -> WorkflowRun:
        return self.run("reconciler-plan.yml", event="pull_request", sha=sha, ref=f"refs/pull/{number}/merge",
                        head_ref=branch, payload={"number": number, "pull_request": {
                            "number": number, "head": {"sha": sha, "ref": branch}}})

    def push_main(self, sha: str, **kw: Any) -> WorkflowRun:
        return self.run("reconciler-apply.yml", event="push", sha=sha, ref="refs/heads/main", **kw)

    def dispatch(self, workflow: str, inputs: dict[str, str], **kw: Any) -> WorkflowRun:
        sha = self.git("rev-parse", "main")
        return self.run(workflow, event="workflow_dispatch", sha=sha, ref="refs/heads/main", inputs=inputs, **kw)

    def schemas(self, name: str) -> list[dict[str, Any]]:
        sb = self.boxes[name]
        r = httpx.get(f"{sb.url}/api/3/customObjects/schemas", headers={"Api-Token": token_of(name)})
        return list(r.json()["schemas"])

    def writes(self, name: str) -> list[str]:
        return [f"{e.method} {e.path}" for e in self.boxes[name].traffic.writes()]

    def clear_traffic(self) -> None:
        for sb in self.boxes.values():
            sb.traffic.clear()


def make_project(tmp_path: Path, names: tuple[str, ...]) -> Iterator[Project]:
    tool("git")
    tool("jq")
    with contextlib.ExitStack() as stack:
        boxes = {n: stack.enter_context(running_sandbox(profile_settings("documented", token=token_of(n))))
                 for n in names}
        repo = tmp_path / "repo"
        (repo / ".github" / "workflows").mkdir(parents=True)
        for wf in WORKFLOWS.glob("*.yml"):
            shutil.copy(wf, repo / ".github" / "workflows" / wf.name)
        lines = ["schemas_dir: schemas", "environments:"]
        lines += [f"  {n}: {{url: '{sb.url}', token_env: {token_env(n)}}}" for n, sb in boxes.items()]
        gh = FakeGitHub(tmp_path / "github", workflows_dir=repo / ".github" / "workflows")
        project = Project(repo, gh, Runner(tmp_path / "runner", gh), boxes)
        project.git("init", "-q", "-b", "main")
        project.git("config", "user.name", "Test")
        project.git("config", "user.email", "test@example.invalid")
        project.commit("initial", {"reconciler.yaml": "\n".join(lines) + "\n", "schemas/.keep": ""})
        yield project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    yield from make_project(tmp_path, ("staging", "production"))


def sticky(project: Project, pr: int) -> dict[str, dict[str, Any]]:
    """The PR's comments by environment marker."""
    out = {}
    for c in project.gh.comments(pr):
        first = c["body"].split("\n", 1)[0]
        if first.startswith("<!-- reconciler-plan:"):
            assert first not in out, "one sticky comment per environment"
            out[first.removeprefix("<!-- reconciler-plan:").removesuffix(" -->")] = c
    return out


# ---------------------------------------------------------------------------------------------
# PR plan


def test_pr_plan_comments_once_per_environment_and_keeps_the_plan(project: Project) -> None:
    pr, sha = project.branch("add-orders", {"schemas/orders.yaml": ORDERS})
    run = project.plan_pr(pr, "add-orders", sha)
    assert run.conclusion == "success", run.describe()
    assert json.loads(run.job("envs").outputs["matrix"]) == [
        {"name": n, "url": sb.url, "token_env": token_env(n)} for n, sb in project.boxes.items()]
    for name in project.boxes:
        job = run.job("plan", env=name)
        assert job.environment == name and job.concurrency == f"reconciler-plan-{pr}-{name}"
        assert job.step("plan").outputs == {"exitcode": "2"}
        saved = run.artifacts[f"reconciler-plan-{name}"]
        assert sorted(p.name for p in saved.iterdir()) == ["plan.json", "plan.md"]
        assert json.loads((saved / "plan.json").read_text())["changes"], "a plan with changes"
        assert project.writes(name) == [], "a plan writes nothing"
    comments = sticky(project, pr)
    assert set(comments) == set(project.boxes)
    for name, c in comments.items():
        assert f"#### Environment `{name}`" in c["body"] and "online-order" in c["body"]
        assert f"_Commit {sha[:7]} · [run](https://github.com/acme/schemas/actions/runs/{run.run_id})_" in c["body"]

    # a second push to the PR: the same comments edited in place, none added
    sha2 = project.git("rev-parse", "add-orders")
    project.git("checkout", "-q", "add-orders")
    sha2 = project.commit("more", {"schemas/orders.yaml": ORDERS.replace(LINK, LINK + GIFT)})
    project.git("checkout", "-q", "main")
    run2 = project.plan_pr(pr, "add-orders", sha2)
    assert run2.conclusion == "success", run2.describe()
    again = sticky(project, pr)
    assert {n: c["id"] for n, c in again.items()} == {n: c["id"] for n, c in comments.items()}
    assert all(c.get("edits") == 1 and "order-gift" in c["body"] and sha2[:7] in c["body"] for c in again.values())
    assert len(project.gh.comments(pr)) == 2
    calls = [c["argv"][:3] for c in project.gh.calls()]
    assert calls.count(["api", "-X", "POST"]) == 2 and calls.count(["api", "-X", "PATCH"]) == 2


def test_pr_plan_failure_is_commented_and_fails_the_check(project: Project) -> None:
    pr, sha = project.branch("bad-token", {"schemas/orders.yaml": ORDERS})
    secrets = project.secrets
    secrets["production"] = {token_env("production"): "tok-wrong"}
    run = project.run("reconciler-plan.yml", event="pull_request", sha=sha, ref=f"refs/pull/{pr}/merge",
                      head_ref="bad-token", secrets=secrets,
                      payload={"number": pr, "pull_request": {"number": pr, "head": {"sha": sha, "ref": "bad-token"}}})
    assert run.job("plan", env="staging").result == "success"
    bad = run.job("plan", env="production")
    assert bad.result == "failure", bad.log
    assert ("error", "reconciler plan failed for production") in bad.annotations
    assert "reconciler-plan-production" not in run.artifacts, "no artifact of a failed plan to apply"
    comments = sticky(project, pr)
    assert "**reconciler plan failed**" in comments["production"]["body"]
    assert "**reconciler plan failed**" not in comments["staging"]["body"]

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
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.sandbox.testing import RunningSandbox, running_sandbox
from tests.conftest import ROOT, profile_settings
from tests.support.fake_gh import FakeGitHub
from tests.support.gitlab import FakeGitLab, GitLabRunner, Pipeline, fake_gitlab
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

    def commit(self, message: str, files: Mapping[str, str | None]) -> str:
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

    def branch(self, name: str, files: Mapping[str, str | None], base: str = "main") -> tuple[int, str]:
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
        shutil.copy(ROOT / "examples" / "gitlab" / ".gitlab-ci.yml", repo / ".gitlab-ci.yml")
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


# ---------------------------------------------------------------------------------------------
# merge apply, main moved, data loss

TICKETS = """apiVersion: reconciler/v1
kind: CustomObjectSchema
slug: support-ticket
labels: {singular: Support Ticket, plural: Support Tickets}
fields:
  - id: ticket-number
    type: number
    labels: {singular: Ticket Number, plural: Ticket Numbers}
    scale: 0
"""


def slugs(project: Project, name: str) -> list[str]:
    return sorted(s["slug"] for s in project.schemas(name))


def field_ids(project: Project, name: str, slug: str) -> list[str]:
    (schema,) = [s for s in project.schemas(name) if s["slug"] == slug]
    return sorted(f["id"] for f in schema["fields"])


def pr_merged(project: Project, branch: str, files: Mapping[str, str | None]) -> tuple[WorkflowRun, str]:
    """A PR planned, then merged: (its plan run, the merge commit)."""
    pr, sha = project.branch(branch, files)
    plan = project.plan_pr(pr, branch, sha)
    assert plan.conclusion == "success", plan.describe()
    return plan, project.merge(pr, branch)


def test_merge_applies_exactly_the_reviewed_plan(project: Project) -> None:
    plan, merged = pr_merged(project, "add-orders", {"schemas/orders.yaml": ORDERS})
    run = project.push_main(merged)
    assert run.conclusion == "success", run.describe()
    for name in project.boxes:
        job = run.job("apply", env=name)
        assert job.concurrency == f"reconciler-apply-{name}"
        assert job.step("saved").outputs == {"found": "true"}
        assert job.step("compare").outputs == {"next": "apply"}
        applied = job.step("Apply exactly the reviewed plan")
        assert applied.outcome == "success" and "online-order" in applied.stdout
        assert job.step("Main moved since the reviewed plan - re-plan it behind an approval").outcome == "skipped"
        assert slugs(project, name) == ["online-order"]
        saved = json.loads((plan.artifacts[f"reconciler-plan-{name}"] / "plan.json").read_text())
        assert len(project.writes(name)) >= len(saved["changes"]) > 0
    assert project.gh.dispatches() == []
    downloads = [c["argv"] for c in project.gh.calls() if c["argv"][:2] == ["run", "download"]]
    assert sorted(d[4] for d in downloads) == [f"reconciler-plan-{n}" for n in sorted(project.boxes)]
    assert {d[2] for d in downloads} == {str(plan.run_id)}, "the merged PR's own plan run"

    # the next push with the same files: nothing to do, nothing written
    project.clear_traffic()
    again = project.push_main(project.commit("docs", {"README.md": "hello\n"}))
    assert again.conclusion == "success", again.describe()
    assert all(again.job("apply", env=n).step("compare").outputs == {"next": "none"} for n in project.boxes)
    assert all(project.writes(n) == [] for n in project.boxes)


def test_main_moved_replans_main_behind_an_approval(project: Project) -> None:
    pr1, sha1 = project.branch("add-orders", {"schemas/orders.yaml": ORDERS})
    pr2, sha2 = project.branch("add-tickets", {"schemas/tickets.yaml": TICKETS})
    assert project.plan_pr(pr1, "add-orders", sha1).conclusion == "success"
    assert project.plan_pr(pr2, "add-tickets", sha2).conclusion == "success"
    first = project.push_main(project.merge(pr1, "add-orders"))
    assert first.conclusion == "success" and slugs(project, "staging") == ["online-order"], first.describe()

    # the second merge: its PR's plan was made without the first one's change
    project.clear_traffic()
    second = project.push_main(project.merge(pr2, "add-tickets"))
    assert second.conclusion == "success", second.describe()
    for name in project.boxes:
        job = second.job("apply", env=name)
        assert job.step("compare").outputs == {"next": "review"}
        assert job.step("Apply exactly the reviewed plan").outcome == "skipped"
        assert "reconciler-reviewed.yml plans it again" in job.summary
        assert project.writes(name) == [], "nothing applied without a review"
    dispatches = project.gh.dispatches()
    assert sorted(d["inputs"]["environment"] for d in dispatches) == sorted(project.boxes)
    assert all(d["workflow"] == "reconciler-reviewed.yml" and d["ref"] == "main"
               and d["inputs"]["allow_data_loss"] == "false" for d in dispatches)

    # each dispatch runs the reviewed workflow; the approvers see the plan before they approve
    seen: dict[str, str] = {}

    def approve(run: WorkflowRun, job: Any) -> bool:
        plan_job = run.job("plan")
        assert plan_job.result == "success", "approval is asked after the plan job, never before"
        seen[job.environment] = plan_job.summary
        return job.environment != "production-approval"   # production's reviewers reject

    for d in dispatches:
        run = project.dispatch(d["workflow"], d["inputs"], protected={f"{n}-approval" for n in project.boxes},
                               approve=approve)
        env = d["inputs"]["environment"]
        assert run.job("plan").environment == env and run.job("apply").environment == f"{env}-approval"
        assert run.job("apply").concurrency == f"reconciler-apply-{env}", "one apply per account"
    assert set(seen) == {"staging-approval", "production-approval"}
    for summary in seen.values():
        assert "### Review for" in summary and "**Plan: 1 to add, 0 to change, 0 to destroy.**" in summary
        assert '<b>support-ticket</b> (create)' in summary, "the plan of main, with the second PR's change only"
    assert slugs(project, "staging") == ["online-order", "support-ticket"]
    assert slugs(project, "production") == ["online-order"], "rejected: nothing applied"
    assert project.writes("production") == []


def test_data_loss_refused_on_merge_then_applied_by_the_reviewed_dispatch(project: Project) -> None:
    _, merged = pr_merged(project, "add-orders", {"schemas/orders.yaml": ORDERS})
    assert project.push_main(merged).conclusion == "success"
    project.clear_traffic()

    _, merged = pr_merged(project, "drop-link", {"schemas/orders.yaml": ORDERS.replace(LINK, "")})
    run = project.push_main(merged)
    assert run.conclusion == "failure"
    job = run.job("apply", env="staging")
    assert job.step("compare").outputs == {"next": "apply"}
    assert job.step("Apply exactly the reviewed plan").outcome == "failure"
    assert ("error", "staging: the plan loses data; review it and run reconciler-reviewed.yml with "
            "allow_data_loss") in job.annotations
    assert all(project.writes(n) == [] for n in project.boxes)
    assert "order-link" in field_ids(project, "staging", "online-order")

    reviewers = {"staging-approval"}
    refused = project.dispatch("reconciler-reviewed.yml", {"environment": "staging", "reason": "drop receipt links"},
                               protected=reviewers, approve=lambda run, job: True)
    assert refused.job("plan").step("plan").outputs == {"exitcode": "2"}
    assert refused.job("apply").result == "failure", "allow_data_loss not ticked: refused"
    assert "Data loss allowed: false" in refused.job("plan").summary
    assert project.writes("staging") == []

    allowed = project.dispatch("reconciler-reviewed.yml", {"environment": "staging", "allow_data_loss": "true",
                                                           "reason": "drop receipt links"},
                               protected=reviewers, approve=lambda run, job: True)
    assert allowed.conclusion == "success", allowed.describe()
    assert "Reason: drop receipt links. Data loss allowed: true." in allowed.job("plan").summary
    assert "order-link" not in field_ids(project, "staging", "online-order")
    assert "order-link" in field_ids(project, "production", "online-order"), "the other account untouched"
    assert project.writes("production") == []


# ---------------------------------------------------------------------------------------------
# drift


def edit_by_hand(project: Project, name: str, description: str) -> None:
    sb = project.boxes[name]
    (schema,) = [s for s in project.schemas(name) if s["slug"] == "online-order"]
    r = httpx.put(f"{sb.url}/api/3/customObjects/schemas/{schema['id']}", headers={"Api-Token": token_of(name)},
                  json={"schema": {"description": description}})
    assert r.status_code == 200


def nightly(project: Project, **kw: Any) -> WorkflowRun:
    return project.run("reconciler-drift.yml", event="schedule", sha=project.git("rev-parse", "main"),
                       ref="refs/heads/main", **kw)


def test_drift_opens_updates_and_closes_one_issue(project: Project) -> None:
    _, merged = pr_merged(project, "add-orders", {"schemas/orders.yaml": ORDERS})
    assert project.push_main(merged).conclusion == "success"

    quiet = nightly(project)
    assert quiet.conclusion == "success", quiet.describe()
    assert project.gh.issues() == [] and project.gh.read()["labels"] == []

    edit_by_hand(project, "staging", "Changed in the web UI")
    opened = nightly(project)
    assert opened.conclusion == "success", opened.describe()
    assert opened.job("drift", env="staging").concurrency == "reconciler-drift-staging"
    (issue,) = project.gh.issues()
    assert issue["state"] == "open" and issue["title"] == "Schema drift detected"
    assert [lab["name"] for lab in issue["labels"]] == ["reconciler-drift"]
    assert "## Environment `staging`" in issue["body"] and "production" not in issue["body"]
    assert f"actions/runs/{opened.run_id}" in issue["body"]

    again = nightly(project)
    assert again.conclusion == "success", again.describe()
    (same,) = project.gh.issues()
    assert same["number"] == issue["number"] and f"actions/runs/{again.run_id}" in same["body"]
    (note,) = project.gh.comments(issue["number"])
    assert note["body"].startswith("Still drifted on ") and str(again.run_id) in note["body"]

    edit_by_hand(project, "staging", "Orders from the web shop")
    closed = nightly(project)
    assert closed.conclusion == "success", closed.describe()
    (done,) = project.gh.issues()
    assert done["state"] == "closed"
    assert project.gh.comments(issue["number"])[-1]["body"].startswith("No drift on ")
    creates = [c for c in project.gh.calls() if c["argv"][:2] == ["issue", "create"]]
    assert len(creates) == 1 and all(c["code"] == 0 for c in project.gh.calls() if c["argv"][0] == "issue")

    # drift again, then an account that cannot be checked: the run fails, the open issue is not closed
    edit_by_hand(project, "staging", "Changed again")
    assert nightly(project).conclusion == "success"
    edit_by_hand(project, "staging", "Orders from the web shop")
    secrets = project.secrets
    secrets["production"] = {token_env("production"): "tok-wrong"}
    broken = nightly(project, secrets=secrets)
    assert broken.conclusion == "failure"
    assert ("error", "environment production could not be checked") in broken.job("report").annotations
    latest = max(project.gh.issues(), key=lambda i: i["number"])
    assert latest["number"] != issue["number"] and latest["state"] == "open"


# ---------------------------------------------------------------------------------------------
# acceptance 3: the matrix from `reconciler envs --json`, three accounts concurrently


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Project]:
    yield from make_project(tmp_path, ("dev", "staging", "production"))


def seed(project: Project, tmp_path: Path, name: str, files: dict[str, str]) -> None:
    """Put ``files`` in one account with the CLI, as an earlier apply would have."""
    folder = tmp_path / f"seed-{name}"
    (folder / "schemas").mkdir(parents=True)
    shutil.copy(project.repo / "reconciler.yaml", folder / "reconciler.yaml")
    for file, text in files.items():
        (folder / "schemas" / file).write_text(text)
    env = {"PATH": f"{Path(shutil.which('reconciler') or '').parent}:/usr/bin:/bin", "CI": "true",
           token_env(name): token_of(name), "HOME": str(tmp_path)}
    r = subprocess.run(["reconciler", "apply", "--env", name, "--auto-approve"], cwd=folder, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_matrix_jobs_run_concurrently_each_applying_only_its_own_account(fleet: Project, tmp_path: Path) -> None:
    project = fleet
    seed(project, tmp_path, "staging", {"orders.yaml": ORDERS})
    seed(project, tmp_path, "production", {"orders.yaml": ORDERS, "tickets.yaml": TICKETS})
    project.clear_traffic()
    desired = {"schemas/orders.yaml": ORDERS.replace(LINK, LINK + GIFT), "schemas/tickets.yaml": TICKETS}
    plan, merged = pr_merged(project, "grow", desired)
    assert [e["name"] for e in json.loads(plan.job("envs").outputs["matrix"])] == ["dev", "staging", "production"]

    # every apply job waits here until all three have reached their apply step: they run at once
    barrier = threading.Barrier(3, timeout=180)
    met: list[str] = []

    def rendezvous(job: Any, step: str) -> None:
        if job.job_id == "apply" and step == "Apply exactly the reviewed plan":
            barrier.wait()
            met.append(job.matrix["env"]["name"])

    run = project.push_main(merged, before_step=rendezvous)
    assert run.conclusion == "success", run.describe()
    assert sorted(met) == ["dev", "production", "staging"]
    assert sorted(j.concurrency or "" for j in run.jobs["apply"]) == [
        "reconciler-apply-dev", "reconciler-apply-production", "reconciler-apply-staging"]

    creates = {"dev": 2, "staging": 1, "production": 0}   # schemas each account's own plan creates
    for name, sb in project.boxes.items():
        saved = json.loads((plan.artifacts[f"reconciler-plan-{name}"] / "plan.json").read_text())
        assert saved["target"] == f"{sb.url}/api/3", "each job planned its own account"
        log = sb.traffic.log
        assert log and all(e.status != 401 for e in log), f"{name}: every request carried its own token"
        posts = [e for e in sb.traffic.writes() if e.method == "POST" and e.path == "/api/3/customObjects/schemas"]
        assert len(posts) == creates[name], f"{name}: {[e.line() for e in sb.traffic.writes()]}"
        assert slugs(project, name) == ["online-order", "support-ticket"]
        assert "order-gift" in field_ids(project, name, "online-order")


# ---------------------------------------------------------------------------------------------
# recovery and limits


def test_account_changed_since_the_pr_plan_is_refused_then_recovered_by_the_reviewed_path(project: Project) -> None:
    _, merged = pr_merged(project, "add-orders", {"schemas/orders.yaml": ORDERS})
    assert project.push_main(merged).conclusion == "success"
    pr, sha = project.branch("add-gift", {"schemas/orders.yaml": ORDERS.replace(LINK, LINK + GIFT)})
    assert project.plan_pr(pr, "add-gift", sha).conclusion == "success"
    edit_by_hand(project, "staging", "Changed in the web UI after the PR's plan")
    project.clear_traffic()

    run = project.push_main(project.merge(pr, "add-gift"))
    staging = run.job("apply", env="staging")
    assert staging.result == "failure" and staging.step("compare").outputs == {"next": "apply"}
    assert ("error", "staging: apply failed; if the account changed since the PR's plan, run "
            "reconciler-reviewed.yml") in staging.annotations
    assert project.writes("staging") == [], "a stale plan writes nothing"
    assert run.job("apply", env="production").result == "success", "the other account is not held back"
    assert "order-gift" in field_ids(project, "production", "online-order")

    rerun = project.dispatch("reconciler-reviewed.yml", {"environment": "staging", "reason": "stale plan"},
                             protected={"staging-approval"}, approve=lambda run, job: True)
    assert rerun.conclusion == "success", rerun.describe()
    assert "order-gift" in field_ids(project, "staging", "online-order")


def test_a_huge_plan_comment_is_cut_to_githubs_limit_with_a_link(project: Project) -> None:
    files = {f"schemas/s{i:03}.yaml": ORDERS.replace("slug: online-order", f"slug: order-{i:03}")
             .replace("Online Order", f"Order {i:03}") for i in range(150)}
    pr, sha = project.branch("bootstrap", files)
    run = project.plan_pr(pr, "bootstrap", sha)
    assert run.conclusion == "success", run.describe()
    for name, c in sticky(project, pr).items():
        full = (run.artifacts[f"reconciler-plan-{name}"] / "plan.md").read_text()
        assert len(full) > 65536, "the plan itself is over the limit"
        assert len(c["body"]) <= 65536 and "**Truncated:**" in c["body"]
        url = run.job("plan", env=name).step("upload").outputs["artifact-url"]
        assert f"[the full plan](<{url}>)" in c["body"]


# ---------------------------------------------------------------------------------------------
# GitLab: the same pipelines, examples/gitlab/.gitlab-ci.yml run by tests/support/gitlab.py


@pytest.fixture
def gitlab(project: Project) -> Iterator[FakeGitLab]:
    with fake_gitlab() as gl:
        yield gl


def gl_run(project: Project, gl: FakeGitLab, source: str, *, mr: int | None = None,
           manual: set[str] | frozenset[str] = frozenset(), **extra: str) -> Pipeline:
    sha = project.git("rev-parse", "HEAD")
    variables = {
        "CI_PIPELINE_SOURCE": source, "CI_DEFAULT_BRANCH": "main", "CI_API_V4_URL": gl.api,
        "CI_PROJECT_ID": gl.project, "GITLAB_API_TOKEN": gl.token,
        "CI_JOB_URL": "https://gitlab.example/acme/schemas/-/jobs/77",
        "CI_PIPELINE_URL": "https://gitlab.example/acme/schemas/-/pipelines/9",
        **{token_env(n): token_of(n) for n in project.boxes}, **extra}
    if mr is not None:
        variables["CI_MERGE_REQUEST_IID"] = str(mr)
    else:
        variables["CI_COMMIT_BRANCH"] = project.git("rev-parse", "--abbrev-ref", "HEAD")
    runner = GitLabRunner(project.runner.root / "gitlab", ROOT / "examples" / "gitlab" / ".gitlab-ci.yml")
    return runner.run(project.repo, sha, variables, manual)


def test_gitlab_mr_plan_keeps_one_note_per_environment_found_past_the_first_page(project: Project,
                                                                                 gitlab: FakeGitLab) -> None:
    gitlab.notes[3] = [{"id": i, "body": f"review remark {i}"} for i in range(1, 151)]   # 2 pages of 100
    project.git("checkout", "-q", "-b", "add-orders")
    project.commit("orders", {"schemas/orders.yaml": ORDERS})
    first = gl_run(project, gitlab, "merge_request_event", mr=3)
    assert [j.status for j in first.jobs] == ["success"] * 3 + ["skipped"] * 5, first.describe()
    assert "plan: [staging]" in [j.name for j in first.jobs]
    mine = {n["body"].split("\n", 1)[0]: n for n in gitlab.notes[3] if n["body"].startswith("<!-- reconciler")}
    assert set(mine) == {"<!-- reconciler-plan:staging -->", "<!-- reconciler-plan:production -->"}
    assert all("online-order" in n["body"] for n in mine.values())
    assert all(project.writes(n) == [] for n in project.boxes)

    project.commit("gift", {"schemas/orders.yaml": ORDERS.replace(LINK, LINK + GIFT)})
    second = gl_run(project, gitlab, "merge_request_event", mr=3)
    assert second.job("plan: [production]").status == "success", second.describe()
    again = {n["body"].split("\n", 1)[0]: n for n in gitlab.notes[3] if n["body"].startswith("<!-- reconciler")}
    assert {k: n["id"] for k, n in again.items()} == {k: n["id"] for k, n in mine.items()}, "edited, not added"
    assert all(n.get("edits") == 1 and "order-gift" in n["body"] for n in again.values())
    assert len(gitlab.notes[3]) == 152
    assert any("page=2" in path for method, path in gitlab.calls if method == "GET"), "searched page 2"


def test_gitlab_default_branch_plans_then_applies_on_the_manual_approval(project: Project,
                                                                        gitlab: FakeGitLab) -> None:
    project.commit("orders", {"schemas/orders.yaml": ORDERS})
    waiting = gl_run(project, gitlab, "push")
    assert waiting.job("plan: [staging]").status == "success", waiting.describe()
    assert waiting.job("apply: [staging]").status == "manual"
    assert all(project.writes(n) == [] for n in project.boxes), "nothing applied before the approval"

    approved = gl_run(project, gitlab, "push", manual={"apply: [staging]"})
    apply = approved.job("apply: [staging]")
    assert apply.status == "success", approved.describe()
    assert apply.environment == "staging" and apply.resource_group == "reconciler-apply-staging"
    assert "online-order" in apply.log, "the plan shown to the approver in the job log"
    assert slugs(project, "staging") == ["online-order"] and slugs(project, "production") == []

    # data loss: refused by the ordinary pipeline, applied by one run with RECONCILER_ALLOW_DATA_LOSS=true
    project.commit("drop link", {"schemas/orders.yaml": ORDERS.replace(LINK, "")})
    refused = gl_run(project, gitlab, "push", manual={"apply: [staging]"})
    assert refused.job("apply: [staging]").status == "failed"
    assert "order-link" in field_ids(project, "staging", "online-order")
    allowed = gl_run(project, gitlab, "web", manual={"apply: [staging]"}, RECONCILER_ALLOW_DATA_LOSS="true")
    assert allowed.job("apply: [staging]").status == "success", allowed.describe()
    assert "order-link" not in field_ids(project, "staging", "online-order")


def test_gitlab_drift_schedule_opens_updates_and_closes_one_issue(project: Project, gitlab: FakeGitLab) -> None:
    project.commit("orders", {"schemas/orders.yaml": ORDERS})
    assert gl_run(project, gitlab, "push", manual={"apply"}).job("apply: [production]").status == "success"

    def nightly() -> Pipeline:
        p = gl_run(project, gitlab, "schedule", RECONCILER_JOB="drift")
        assert [j.name for j in p.jobs if j.status != "skipped"] == [
            "drift: [staging]", "drift: [production]", "drift-issue"], p.describe()
        return p

    assert nightly().job("drift-issue").status == "success" and gitlab.issues == []
    edit_by_hand(project, "production", "Changed in the web UI")
    opened = nightly()
    assert opened.job("drift-issue").status == "success", opened.describe()
    (issue,) = gitlab.issues
    assert issue["labels"] == ["reconciler-drift"] and "## Environment `production`" in issue["description"]
    assert "staging" not in issue["description"]
    nightly()
    assert len(gitlab.issues) == 1 and issue["notes"] == ["Still drifted: https://gitlab.example/acme/schemas/-/pipelines/9"]
    edit_by_hand(project, "production", "Orders from the web shop")
    nightly()
    assert issue["state"] == "closed"


def test_an_expired_plan_artifact_is_replanned_behind_an_approval(project: Project) -> None:
    plan, merged = pr_merged(project, "add-orders", {"schemas/orders.yaml": ORDERS})
    project.gh.expire(plan.run_id, "reconciler-plan-staging")
    run = project.push_main(merged)
    assert run.conclusion == "success", run.describe()
    staging = run.job("apply", env="staging")
    assert staging.step("saved").outputs == {"found": "false"}
    assert ("notice", f"no saved plan for {merged} in staging (no pull request, or its artifact expired)") \
        in staging.annotations
    assert staging.step("compare").outputs == {"next": "review"} and project.writes("staging") == []
    assert run.job("apply", env="production").step("compare").outputs == {"next": "apply"}
    assert [d["inputs"]["environment"] for d in project.gh.dispatches()] == ["staging"]


def test_the_harness_fails_what_github_would_refuse(project: Project, tmp_path: Path) -> None:
    """Live checks: without ``actions: write`` the dispatch is refused (403); without GH_TOKEN gh
    stops; an input the reviewed workflow does not declare is refused."""
    plan, merged = pr_merged(project, "add-orders", {"schemas/orders.yaml": ORDERS})
    project.gh.expire(plan.run_id, "reconciler-plan-staging")
    text = (WORKFLOWS / "reconciler-apply.yml").read_text()
    for broken, message in [
        (text.replace("  actions: write ", "  actions: read "), "HTTP 403: Resource not accessible by integration"),
        (text.replace("          GH_TOKEN: ${{ github.token }}\n          ENV_NAME: ${{ matrix.env.name }}\n        run: |\n"
                      "          gh workflow", "          ENV_NAME: ${{ matrix.env.name }}\n        run: |\n"
                      "          gh workflow"), "set the GH_TOKEN environment variable"),
        (text.replace("-f reason=", "-f why="), "Unexpected inputs provided: ['why']"),
    ]:
        assert broken != text
        path = tmp_path / "reconciler-apply.yml"
        path.write_text(broken)
        run = project.runner.run(path, repo=project.repo, event="push", sha=merged, ref="refs/heads/main",
                                 secrets=project.secrets)
        job = run.job("apply", env="staging")
        assert job.result == "failure" and message in job.log, job.log


def test_gitlab_validate_fails_when_the_matrix_and_reconciler_yaml_differ(project: Project,
                                                                        gitlab: FakeGitLab) -> None:
    config = (project.repo / "reconciler.yaml").read_text()
    dev = "  dev: {url: 'http://127.0.0.1:9', token_env: AC_DEV_TOKEN}\n"
    project.commit("a third account", {"reconciler.yaml": config + dev, "schemas/orders.yaml": ORDERS})
    p = gl_run(project, gitlab, "push")
    assert p.job("validate").status == "failed"
    assert "reconciler.yaml defines ['staging', 'production', 'dev']: update .envs" in p.job("validate").log
    assert p.job("plan: [staging]").status == "skipped", "a later stage does not run after a failed one"

"""Runs a GitHub Actions workflow file locally, the way a runner would, for tests/test_workflow_runs.py.

What it does as GitHub does: jobs in ``needs`` order, their ``if:`` (``success() &&`` implied),
``strategy.matrix`` expanded (values may be ``fromJSON(...)``), each matrix job in its own
workspace and run **concurrently** (threads), ``environment:`` evaluated (its secrets are the
job's ``secrets`` context; a protected one asks the test's ``approve`` first), ``concurrency``
groups evaluated and recorded, ``permissions`` given to the job's ``github.token`` (the fake gh
checks them), ``outputs`` from ``steps.*.outputs``. Steps: ``if:``, ``env:`` (workflow < job <
step), ``run:`` with GitHub's default shell ``bash -e {0}`` (``shell: bash`` adds ``-o pipefail``)
in the workspace, with fresh GITHUB_OUTPUT / GITHUB_ENV / GITHUB_STEP_SUMMARY / GITHUB_PATH files
read back as the runner does (``name=value`` and ``name<<EOF`` forms), and the ``::error::`` /
``::notice::`` commands of stdout collected. The environment is GitHub's variables only (CI=true,
GITHUB_*), nothing of the test process.

Emulated: ``actions/checkout`` (clones the prepared repository at ``github.sha``, origin set to
the GitHub URL as checkout leaves it), ``actions/setup-python`` (nothing: this venv's bin is first
on PATH), ``actions/upload-artifact`` / ``download-artifact`` (a folder per run and artifact, the
paths' common ancestor as the root, names unique in a run) and the step named "Install
reconciler" (skipped: the package is installed in the venv). ``gh`` is tests/support/fake_gh.py.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.support.fake_gh import FakeGitHub
from tests.support.ghexpr import Evaluator, to_string

__all__ = ["JobRun", "Runner", "StepRun", "WorkflowRun"]

FAKE_GH = Path(__file__).with_name("fake_gh.py")
SKIPPED_STEPS = {"Install reconciler"}


@dataclass
class StepRun:
    name: str
    id: str | None
    outcome: str                     # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    summary: str = ""
    annotations: list[tuple[str, str]] = field(default_factory=list)   # (error|warning|notice, message)


@dataclass
class JobRun:
    job_id: str
    matrix: dict[str, Any] | None
    workspace: Path
    environment: str | None = None
    concurrency: str | None = None
    result: str = "skipped"          # success | failure | skipped
    steps: list[StepRun] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return "".join(s.summary for s in self.steps)

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name} [{s.outcome}]\n{s.stdout}{s.stderr}" for s in self.steps)

    @property
    def annotations(self) -> list[tuple[str, str]]:
        return [a for s in self.steps for a in s.annotations]

    def step(self, name: str) -> StepRun:
        (found,) = [s for s in self.steps if s.name == name or s.id == name]
        return found


@dataclass
class WorkflowRun:
    run_id: int
    workflow: str
    jobs: dict[str, list[JobRun]] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def conclusion(self) -> str:
        results = [j.result for runs in self.jobs.values() for j in runs]
        return "failure" if "failure" in results else "success"

    def job(self, job_id: str, **matrix: Any) -> JobRun:
        """The job (``env="staging"`` picks the matrix job whose ``env`` is, or has the name, staging)."""
        def fits(j: JobRun) -> bool:
            m = j.matrix or {}
            return all(m.get(k) == v or (isinstance(m.get(k), dict) and m[k].get("name") == v)
                       for k, v in matrix.items())
        (found,) = [j for j in self.jobs[job_id] if fits(j)]
        return found

    def result(self, job_id: str) -> str:
        runs = self.jobs.get(job_id) or []
        results = {j.result for j in runs}
        if not runs or results == {"skipped"}:
            return "skipped"
        return "failure" if "failure" in results else "success"

    def describe(self) -> str:
        return "\n".join(f"=== {j.job_id} {j.matrix or ''} [{j.result}]\n{j.log}"
                         for runs in self.jobs.values() for j in runs)


Approve = Callable[[WorkflowRun, JobRun], bool]
BeforeStep = Callable[[JobRun, str], None]


def _load(path: Path) -> dict[str, Any]:
    return dict(YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")))


def _parse_env_file(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV: ``name=value`` lines and ``name<<DELIM`` … ``DELIM`` blocks."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            value: list[str] = []
            i += 1
            while i < len(lines) and lines[i] != delim:
                value.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ValueError(f"matching delimiter not found '{delim}'")
            out[name] = "\n".join(value)
        elif "=" in line:
            name, value_ = line.split("=", 1)
            out[name] = value_
        elif line.strip():
            raise ValueError(f"invalid format '{line}'")
        i += 1
    return out


def _annotations(stdout: str) -> list[tuple[str, str]]:
    found = []
    for line in stdout.splitlines():
        for level in ("error", "warning", "notice"):
            if line.startswith(f"::{level}"):
                rest = line[len(level) + 2:]
                found.append((level, rest.split("::", 1)[1] if "::" in rest else rest))
    return found


class Runner:
    """Runs workflows of one repository against a FakeGitHub; ``bin_dir`` (this venv's bin) is put on PATH."""

    def __init__(self, root: Path, gh: FakeGitHub, *, repository: str = "acme/schemas",
                 bin_dir: Path | None = None, extra_path: list[str] | None = None) -> None:
        self.root = root
        self.gh = gh
        self.repository = repository
        self.bin_dir = bin_dir or Path(sys.executable).parent
        self.fake_bin = root / "fakebin"
        self.fake_bin.mkdir(parents=True, exist_ok=True)
        gh_cmd = self.fake_bin / "gh"
        gh_cmd.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{FAKE_GH}' \"$@\"\n")
        gh_cmd.chmod(0o755)
        self.extra_path = extra_path or []

    # -- one run ----------------------------------------------------------------------------

    def run(self, workflow: Path, *, event: str, repo: Path, sha: str, ref: str,
            payload: dict[str, Any] | None = None, inputs: dict[str, str] | None = None,
            secrets: dict[str, dict[str, str]] | None = None, protected: set[str] | frozenset[str] = frozenset(),
            approve: Approve | None = None, before_step: BeforeStep | None = None,
            head_ref: str = "") -> WorkflowRun:
        """``secrets``: by GitHub environment name ("" for the repository's own). A job in an
        environment of ``protected`` runs only when ``approve(run, job)`` says so."""
        doc = _load(workflow)
        run = WorkflowRun(self.gh.new_run_id(), workflow.name)
        ref_name = ref.split("/", 2)[-1] if ref.startswith("refs/") else ref
        github = {
            "event_name": event, "event": payload or {}, "sha": sha, "ref": ref, "ref_name": ref_name,
            "head_ref": head_ref, "base_ref": "", "repository": self.repository,
            "repository_owner": self.repository.split("/")[0], "server_url": "https://github.com",
            "api_url": "https://api.github.com", "run_id": str(run.run_id), "run_number": "1", "run_attempt": "1",
            "workflow": doc.get("name", workflow.name), "actor": "octocat", "job": "",
        }
        declared = ((doc.get("on") or {}).get("workflow_dispatch") or {}).get("inputs") or {} \
            if isinstance(doc.get("on"), dict) else {}
        inputs_ctx: dict[str, Any] = {}
        for name, spec in declared.items():
            raw = (inputs or {}).get(name, spec.get("default"))
            if spec.get("type") == "boolean":
                inputs_ctx[name] = raw in (True, "true")
            else:
                inputs_ctx[name] = "" if raw is None else str(raw)
        jobs: dict[str, Any] = dict(doc["jobs"])
        done: set[str] = set()
        while len(done) < len(jobs):
            ready = [j for j, spec in jobs.items() if j not in done and set(self._needs(spec)) <= done]
            if not ready:
                raise ValueError("a cycle in needs")
            for job_id in ready:
                self._job(run, doc, job_id, jobs[job_id], github, inputs_ctx, secrets or {}, set(protected),
                          approve, before_step, repo)
                done.add(job_id)
        self.gh.record_run({"databaseId": run.run_id, "workflow": workflow.name,
                            "workflowName": doc.get("name", workflow.name),
                            "headBranch": head_ref or ref_name, "headSha": sha, "event": event,
                            "status": "completed", "conclusion": run.conclusion})
        return run

    @staticmethod
    def _needs(spec: dict[str, Any]) -> list[str]:
        needs = spec.get("needs") or []
        return [needs] if isinstance(needs, str) else list(needs)

    def _job(self, run: WorkflowRun, doc: dict[str, Any], job_id: str, spec: dict[str, Any],
             github: dict[str, Any], inputs: dict[str, Any], secrets: dict[str, dict[str, str]],
             protected: set[str], approve: Approve | None, before_step: BeforeStep | None, repo: Path) -> None:
        needs_ids = self._needs(spec)
        needs = {n: {"result": run.result(n), "outputs": self._job_outputs(run, n)} for n in needs_ids}

        def job_status(name: str) -> bool:
            results = [needs[n]["result"] for n in needs_ids]
            if name == "always":
                return True
            if name == "cancelled":
                return False
            if name == "failure":
                return "failure" in results
            return all(r == "success" for r in results)

        base = {"github": {**github, "job": job_id}, "needs": needs, "inputs": inputs, "vars": {},
                "env": {}, "secrets": {}}
        ws = self.root / "work" / str(run.run_id)
        if not Evaluator(base, job_status).condition(spec.get("if")):
            run.jobs[job_id] = [JobRun(job_id, None, ws / job_id, result="skipped")]
            return
        matrices: list[dict[str, Any] | None] = [None]
        strategy = spec.get("strategy") or {}
        if "matrix" in strategy:
            rendered = Evaluator(base).render(strategy["matrix"])
            axes = {k: v for k, v in rendered.items() if k not in ("include", "exclude")}
            for k, v in axes.items():
                if not isinstance(v, list) or not v:
                    raise ValueError(f"{job_id}: matrix vector '{k}' does not contain any values")
            matrices = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
        runs = [JobRun(job_id, m, ws / (job_id if m is None else f"{job_id}-{i}")) for i, m in enumerate(matrices)]
        run.jobs[job_id] = runs
        permissions = spec.get("permissions", doc.get("permissions"))
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            futures = [pool.submit(self._instance, run, doc, spec, jr, base, secrets, protected, approve, before_step,
                                   repo, permissions) for jr in runs]
            for f in futures:
                f.result()

    @staticmethod
    def _job_outputs(run: WorkflowRun, job_id: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for j in run.jobs.get(job_id, []):
            out.update(j.outputs)
        return out

    def _instance(self, run: WorkflowRun, doc: dict[str, Any], spec: dict[str, Any], jr: JobRun,
                  base: dict[str, Any], secrets: dict[str, dict[str, str]], protected: set[str],
                  approve: Approve | None, before_step: BeforeStep | None, repo: Path,
                  permissions: Any) -> None:
        ctx = dict(base, matrix=jr.matrix or {})
        ev = Evaluator(ctx)
        env_spec = spec.get("environment")
        if env_spec is not None:
            name = ev.render(env_spec["name"] if isinstance(env_spec, dict) else env_spec)
            jr.environment = to_string(name)
        if spec.get("concurrency") is not None:
            group = spec["concurrency"]
            jr.concurrency = ev.render_str(group["group"] if isinstance(group, dict) else group)
        if jr.environment in protected and not (approve and approve(run, jr)):
            jr.result = "failure"   # rejected (or never approved): the job does not start
            return
        perms = None if permissions is None else (
            {k: permissions for k in ("contents", "issues", "pull-requests", "actions")}
            if isinstance(permissions, str) else dict(permissions))
        token = self.gh.issue_token(perms, f"{run.workflow}:{jr.job_id}")
        ctx["github"] = dict(ctx["github"], token=token)
        ctx["secrets"] = {**secrets.get("", {}), **secrets.get(jr.environment or "", {}), "GITHUB_TOKEN": token}
        jr.workspace.mkdir(parents=True)
        temp = jr.workspace.parent / f"{jr.workspace.name}.tmp"
        temp.mkdir()
        home = temp / "home"
        home.mkdir()
        steps_ctx: dict[str, Any] = {}
        ctx["steps"] = steps_ctx
        added_env: dict[str, str] = {}
        added_path: list[str] = []
        failed = False

        def step_status(name: str) -> bool:
            return {"always": True, "cancelled": False, "failure": failed}.get(name, not failed)

        wf_env = Evaluator(ctx).render(doc.get("env") or {})
        ctx["env"] = {k: to_string(v) for k, v in wf_env.items()}
        job_env = Evaluator(ctx).render(spec.get("env") or {})
        ctx["env"].update({k: to_string(v) for k, v in job_env.items()})
        for index, step in enumerate(spec.get("steps") or []):
            name = step.get("name") or step.get("uses") or (step.get("run") or "").split("\n")[0]
            sid = step.get("id")
            ctx["env"] = {**ctx["env"], **added_env}
            ev = Evaluator(ctx, step_status)
            if not ev.condition(step.get("if")):
                jr.steps.append(StepRun(name, sid, "skipped"))
                if sid:
                    steps_ctx[sid] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
                continue
            step_env = {k: to_string(v) for k, v in ev.render(step.get("env") or {}).items()}
            env = {**self._base_env(run, jr, ctx, temp, home, added_path), **ctx["env"], **step_env}
            if before_step is not None:
                before_step(jr, name)
            if "uses" in step:
                result = self._uses(run, jr, step, ev, repo, env)
            elif name in SKIPPED_STEPS:
                result = StepRun(name, sid, "success", stdout="(emulated: installed in the test venv)\n")
            else:
                result, new_env, new_path = self._shell(jr, step, env, temp, index, name, sid)
                added_env.update(new_env)
                added_path[:0] = new_path
            result.id = sid
            jr.steps.append(result)
            if sid:
                steps_ctx[sid] = {"outputs": result.outputs, "outcome": result.outcome, "conclusion": result.outcome}
            if result.outcome == "failure" and not step.get("continue-on-error"):
                failed = True
        jr.result = "failure" if failed else "success"
        outputs = Evaluator(ctx).render(spec.get("outputs") or {})
        jr.outputs = {k: to_string(v) for k, v in outputs.items()}

    def _base_env(self, run: WorkflowRun, jr: JobRun, ctx: dict[str, Any], temp: Path, home: Path,
                  added_path: list[str]) -> dict[str, str]:
        g = ctx["github"]
        path = [*added_path, str(self.fake_bin), str(self.bin_dir), *self.extra_path, "/usr/local/bin", "/usr/bin",
                "/bin"]
        return {
            "PATH": os.pathsep.join(path), "HOME": str(home), "LANG": "C.UTF-8", "CI": "true",
            "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": g["repository"],
            "GITHUB_REPOSITORY_OWNER": g["repository_owner"], "GITHUB_SHA": g["sha"], "GITHUB_REF": g["ref"],
            "GITHUB_REF_NAME": g["ref_name"], "GITHUB_HEAD_REF": g["head_ref"], "GITHUB_BASE_REF": g["base_ref"],
            "GITHUB_EVENT_NAME": g["event_name"], "GITHUB_RUN_ID": g["run_id"], "GITHUB_RUN_NUMBER": "1",
            "GITHUB_RUN_ATTEMPT": "1", "GITHUB_SERVER_URL": g["server_url"], "GITHUB_API_URL": g["api_url"],
            "GITHUB_WORKSPACE": str(jr.workspace), "GITHUB_JOB": jr.job_id, "GITHUB_ACTOR": "octocat",
            "GITHUB_WORKFLOW": str(g["workflow"]), "RUNNER_TEMP": str(temp), "RUNNER_OS": "Linux",
            "FAKE_GH_STATE": str(self.gh.folder),
        }

    def _shell(self, jr: JobRun, step: dict[str, Any], env: dict[str, str], temp: Path, index: int, name: str,
               sid: str | None) -> tuple[StepRun, dict[str, str], list[str]]:
        files = {}
        for var in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY", "GITHUB_PATH"):
            files[var] = temp / f"{var.lower()}_{index}"
            files[var].write_text("")
            env[var] = str(files[var])
        script = temp / f"step_{index}.sh"
        script.write_text(step["run"])
        shell = step.get("shell")
        argv = {None: ["bash", "-e", str(script)],
                "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                "sh": ["sh", "-e", str(script)]}[shell]
        cwd = jr.workspace / step.get("working-directory", ".")
        r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        outcome = "success" if r.returncode == 0 else "failure"
        result = StepRun(name, sid, outcome, stdout=r.stdout, stderr=r.stderr + (
            f"Error: Process completed with exit code {r.returncode}.\n" if r.returncode else ""),
            annotations=_annotations(r.stdout))
        result.outputs = _parse_env_file(files["GITHUB_OUTPUT"].read_text())
        result.summary = files["GITHUB_STEP_SUMMARY"].read_text()
        new_path = [p for p in files["GITHUB_PATH"].read_text().splitlines() if p.strip()]
        return result, _parse_env_file(files["GITHUB_ENV"].read_text()), new_path

    # -- actions ----------------------------------------------------------------------------

    def _uses(self, run: WorkflowRun, jr: JobRun, step: dict[str, Any], ev: Evaluator, repo: Path,
              env: dict[str, str]) -> StepRun:
        action = str(step["uses"]).split("@")[0]
        name = step.get("name") or action
        with_ = {k: ev.render(v) for k, v in (step.get("with") or {}).items()}
        try:
            if action == "actions/checkout":
                self._checkout(jr, repo, ev.contexts["github"]["sha"])
                return StepRun(name, None, "success")
            if action == "actions/setup-python":
                return StepRun(name, None, "success", stdout="(emulated: the test venv's python)\n")
            if action == "actions/upload-artifact":
                return self._upload(run, jr, name, with_)
            if action == "actions/download-artifact":
                return self._download(run, jr, name, with_)
        except (OSError, ValueError, subprocess.CalledProcessError) as e:
            return StepRun(name, None, "failure", stderr=f"{e}\n", annotations=[("error", str(e))])
        raise ValueError(f"no emulation for {action}")

    def _checkout(self, jr: JobRun, repo: Path, sha: str) -> None:
        def git(*args: str, cwd: Path = jr.workspace) -> None:
            subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)
        git("clone", "-q", "--no-hardlinks", str(repo), ".")
        git("checkout", "-q", "--detach", sha)
        git("remote", "set-url", "origin", f"https://github.com/{self.repository}")

    def _upload(self, run: WorkflowRun, jr: JobRun, name: str, with_: dict[str, Any]) -> StepRun:
        art = to_string(with_["name"]) or "artifact"
        paths = [jr.workspace / p.strip() for p in to_string(with_["path"]).splitlines() if p.strip()]
        found = [p for p in paths if p.exists()]
        if not found:
            how = to_string(with_.get("if-no-files-found")) or "warn"
            msg = f"No files were found with the provided path: {with_['path']}. No artifacts will be uploaded."
            if how == "error":
                return StepRun(name, None, "failure", annotations=[("error", msg)])
            return StepRun(name, None, "success", annotations=[("warning", msg)] if how == "warn" else [])
        roots = [p if p.is_dir() else p.parent for p in found]
        root = Path(os.path.commonpath([str(r) for r in roots]))
        dest = self.gh.artifacts / str(run.run_id) / art
        with run._lock:
            if art in run.artifacts:
                msg = f"Failed to CreateArtifact: an artifact with this name already exists on the workflow run: {art}"
                return StepRun(name, None, "failure", annotations=[("error", msg)])
            run.artifacts[art] = dest
        dest.mkdir(parents=True)
        for p in found:
            target = dest / p.relative_to(root)
            if p.is_dir():
                shutil.copytree(p, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, target)
        artifact_id = str(self.gh.new_run_id())
        url = f"https://github.com/{self.repository}/actions/runs/{run.run_id}/artifacts/{artifact_id}"
        return StepRun(name, None, "success", outputs={"artifact-id": artifact_id, "artifact-url": url})

    def _download(self, run: WorkflowRun, jr: JobRun, name: str, with_: dict[str, Any]) -> StepRun:
        target = jr.workspace / (to_string(with_.get("path")) or ".")
        folder = self.gh.artifacts / str(run.run_id)
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        if with_.get("name"):
            wanted = [to_string(with_["name"])]
            if wanted[0] not in present:
                msg = f"Unable to download artifact(s): Artifact not found for name: {wanted[0]}"
                return StepRun(name, None, "failure", annotations=[("error", msg)])
            merge = True   # one artifact by name: its files directly into path
        else:
            pattern = to_string(with_.get("pattern")) or "*"
            wanted = [n for n in present if fnmatch.fnmatch(n, pattern)]
            merge = with_.get("merge-multiple") in (True, "true")
        for art in wanted:
            shutil.copytree(folder / art, target if merge else target / art, dirs_exist_ok=True)
        return StepRun(name, None, "success", stdout=f"downloaded {wanted}\n")

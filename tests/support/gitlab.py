"""Runs the jobs of a .gitlab-ci.yml locally, as GitLab's runner would, and a fake GitLab API they
talk to (tests/test_workflow_runs.py).

The runner: jobs in stage order, ``rules:`` (``if:`` clauses ``$A == "x"``, ``$A != $B`` joined
by ``&&``; ``changes:`` taken as matched; the first rule that matches decides ``when``),
``parallel:matrix`` expanded (the jobs of one matrix run concurrently), ``before_script`` +
``script`` in one bash session with ``set -eo pipefail`` (GitLab's bash shell: ``set +e`` in a line
lasts until ``set -e``), the pip install line skipped (this venv's bin is first on PATH),
``artifacts:paths`` kept per job (``when: always`` also after a failure) and given to later jobs
(all earlier stages, or only ``needs:``). A ``when: manual`` job runs only when the test asks.
Variables: the file's, the matrix's, the pipeline's (CI_*), and the test's CI/CD variables;
nothing of the test process.

The fake API (a thread-served ``http.server``): merge request notes and project issues with their
notes, paged with ``per_page``/``page`` and ``X-Next-Page`` as GitLab does, the ``PRIVATE-TOKEN``
checked, a note or description over 1,000,000 characters refused, every call recorded.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

__all__ = ["FakeGitLab", "GitLabJob", "GitLabRunner", "Pipeline", "fake_gitlab"]

GITLAB_NOTE_LIMIT = 1_000_000


# ---------------------------------------------------------------------------------------------
# the fake API


@dataclass
class FakeGitLab:
    url: str = ""
    token: str = "glpat-fake-7d1"
    project: str = "42"
    notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)        # MR iid -> notes
    issues: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _next: int = 500
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api(self) -> str:
        return f"{self.url}/api/v4"

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any, int]:
        """(status, JSON, total pages) of one request."""
        base = f"/api/v4/projects/{self.project}/"
        if not path.startswith(base):
            return 404, {"message": "404 Project Not Found"}, 0
        parts = path[len(base):].split("/")
        for key in ("body", "description"):
            if isinstance(body.get(key), str) and len(body[key]) > GITLAB_NOTE_LIMIT:
                return 400, {"message": {key: ["is too long (maximum is 1000000 characters)"]}}, 0
        if parts[:1] == ["merge_requests"] and len(parts) >= 3 and parts[2] == "notes":
            notes = self.notes.setdefault(int(parts[1]), [])
            if len(parts) == 3 and method == "GET":
                return self._page(sorted(notes, key=lambda n: n["id"], reverse=query.get("sort") != "asc"), query)
            if len(parts) == 3 and method == "POST":
                note = {"id": self.new_id(), "body": body["body"], "author": {"username": "project_42_bot"}}
                notes.append(note)
                return 201, note, 0
            if len(parts) == 4 and method == "PUT":
                match = [n for n in notes if str(n["id"]) == parts[3]]
                if not match:
                    return 404, {"message": "404 Not found"}, 0
                match[0]["body"] = body["body"]
                match[0]["edits"] = match[0].get("edits", 0) + 1
                return 200, match[0], 0
        if parts[:1] == ["issues"]:
            if len(parts) == 1 and method == "GET":
                state = query.get("state", "all")
                labels = [x for x in query.get("labels", "").split(",") if x]
                found = [i for i in self.issues if (state == "all" or i["state"] == state)
                         and all(lab in i["labels"] for lab in labels)]
                return self._page(sorted(found, key=lambda i: -i["iid"]), query)
            if len(parts) == 1 and method == "POST":
                issue = {"iid": len(self.issues) + 1, "title": body["title"], "description": body.get("description", ""),
                         "labels": [x for x in str(body.get("labels", "")).split(",") if x], "state": "opened",
                         "notes": []}
                self.issues.append(issue)
                return 201, issue, 0
            match = [i for i in self.issues if str(i["iid"]) == parts[1]]
            if not match:
                return 404, {"message": "404 Not found"}, 0
            issue = match[0]
            if len(parts) == 2 and method == "PUT":
                if "description" in body:
                    issue["description"] = body["description"]
                if body.get("state_event") == "close":
                    issue["state"] = "closed"
                return 200, issue, 0
            if len(parts) == 3 and parts[2] == "notes" and method == "POST":
                issue["notes"].append(body["body"])
                return 201, {"id": self.new_id(), "body": body["body"]}, 0
        return 404, {"message": "404 Not found"}, 0

    @staticmethod
    def _page(items: list[Any], query: dict[str, str]) -> tuple[int, Any, int]:
        per = min(int(query.get("per_page", 20)), 100)
        page = int(query.get("page", 1))
        pages = max(1, -(-len(items) // per))
        return 200, items[(page - 1) * per: page * per], pages if page < pages else 0


@contextmanager
def fake_gitlab() -> Iterator[FakeGitLab]:
    gl = FakeGitLab()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            split = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(split.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with gl._lock:
                gl.calls.append((self.command, self.path))
                if self.headers.get("PRIVATE-TOKEN") != gl.token:
                    status, data, next_page = 401, {"message": "401 Unauthorized"}, 0
                else:
                    body = json.loads(raw) if raw else {}
                    status, data, next_page = gl.handle(self.command, split.path, query, body)
            out = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            page = int(query.get("page", 1))
            self.send_header("X-Next-Page", str(page + 1) if next_page else "")
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gl.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gl
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------
# the runner


@dataclass
class GitLabJob:
    name: str                       # "plan: [staging]"
    job: str
    variables: dict[str, str]
    status: str = "skipped"         # success | failed | skipped | manual
    log: str = ""
    environment: str | None = None
    resource_group: str | None = None
    workspace: Path | None = None


@dataclass
class Pipeline:
    jobs: list[GitLabJob] = field(default_factory=list)

    def job(self, name: str) -> GitLabJob:
        (found,) = [j for j in self.jobs if j.name == name]
        return found

    def describe(self) -> str:
        return "\n".join(f"=== {j.name} [{j.status}]\n{j.log}" for j in self.jobs)


_CLAUSE = re.compile(r'^\s*(\$\w+)\s*(==|!=)\s*(\$\w+|"[^"]*")\s*$')


def rule_matches(cond: str, variables: dict[str, str]) -> bool:
    """``$A == "x" && $B != $C`` (what the example file uses)."""
    for clause in cond.split("&&"):
        m = _CLAUSE.match(clause)
        if not m:
            raise ValueError(f"rules: cannot evaluate {clause!r}")
        left = variables.get(m.group(1)[1:])
        right = m.group(3)[1:-1] if m.group(3).startswith('"') else variables.get(m.group(3)[1:])
        if (left == right) != (m.group(2) == "=="):
            return False
    return True


def _expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), ""), text)


class GitLabRunner:
    def __init__(self, root: Path, ci_file: Path) -> None:
        self.root = root
        self.doc = dict(YAML(typ="safe", pure=True).load(ci_file.read_text(encoding="utf-8")))
        self.bin_dir = Path(sys.executable).parent

    def run(self, repo: Path, sha: str, pipeline_vars: dict[str, str], manual: set[str] | frozenset[str] = frozenset(),
            ) -> Pipeline:
        """``pipeline_vars``: CI_* and the project's CI/CD variables; ``manual``: the manual jobs
        someone starts (the approval)."""
        pid = len(list(self.root.glob("p*"))) + 1
        base_dir = self.root / f"p{pid}"
        store = base_dir / "artifacts"
        store.mkdir(parents=True)
        pipeline = Pipeline()
        file_vars = {k: str(v) for k, v in (self.doc.get("variables") or {}).items()}
        for stage in self.doc["stages"]:
            for job_id, spec in self.doc.items():
                if job_id.startswith(".") or not isinstance(spec, dict) or spec.get("stage") != stage:
                    continue
                instances = self._instances(job_id, spec)
                todo = []
                for name, matrix_vars in instances:
                    variables = {**file_vars, **pipeline_vars, **matrix_vars}
                    job = GitLabJob(name, job_id, variables)
                    pipeline.jobs.append(job)
                    when = self._when(spec, variables)
                    if when is None:
                        continue
                    if when == "manual" and name not in manual and job_id not in manual:
                        job.status = "manual"
                        continue
                    needs = spec.get("needs")
                    wanted = None if needs is None else {n if isinstance(n, str) else n["job"] for n in needs}
                    earlier_failed = any(j.status == "failed" for j in pipeline.jobs
                                         if j is not job and (wanted is None or j.job in wanted))
                    if when == "on_success" and earlier_failed:
                        continue
                    todo.append(job)
                with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
                    for f in [pool.submit(self._job, base_dir, store, spec, j, repo, sha, pipeline) for j in todo]:
                        f.result()
        return pipeline

    @staticmethod
    def _instances(job_id: str, spec: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
        matrix = (spec.get("parallel") or {}).get("matrix")
        if not matrix:
            return [(job_id, {})]
        out = []
        for entry in matrix:
            keys = list(entry)
            values = [v if isinstance(v, list) else [v] for v in entry.values()]
            for combo in itertools.product(*values):
                out.append((f"{job_id}: [{', '.join(map(str, combo))}]", dict(zip(keys, map(str, combo), strict=True))))
        return out

    @staticmethod
    def _when(spec: dict[str, Any], variables: dict[str, str]) -> str | None:
        rules = spec.get("rules")
        if rules is None:
            return str(spec.get("when", "on_success"))
        for rule in rules:
            if "if" not in rule or rule_matches(rule["if"], variables):
                when = str(rule.get("when", "on_success"))
                return None if when == "never" else when
        return None

    def _job(self, base_dir: Path, store: Path, spec: dict[str, Any], job: GitLabJob, repo: Path, sha: str,
             pipeline: Pipeline) -> None:
        slug = re.sub(r"\W+", "-", job.name).strip("-")
        ws = base_dir / slug
        job.workspace = ws
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(repo), str(ws)], check=True, capture_output=True)
        subprocess.run(["git", "checkout", "-q", "--detach", sha], cwd=ws, check=True, capture_output=True)
        needs = spec.get("needs")
        if needs is None:   # every earlier job's artifacts
            sources = [j for j in pipeline.jobs if j.status in ("success", "failed")]
        else:
            wanted = {n if isinstance(n, str) else n["job"] for n in needs}
            sources = [j for j in pipeline.jobs if j.job in wanted]
        for src in sources:
            if (store / src.name).is_dir():
                shutil.copytree(store / src.name, ws, dirs_exist_ok=True)
        env_spec = spec.get("environment")
        if env_spec is not None:
            job.environment = _expand(env_spec["name"] if isinstance(env_spec, dict) else env_spec, job.variables)
        if spec.get("resource_group"):
            job.resource_group = _expand(spec["resource_group"], job.variables)
        default = self.doc.get("default") or {}
        before = spec.get("before_script", default.get("before_script", []))
        lines = [line for line in [*before, *spec["script"]] if not str(line).startswith("pip install")]
        script = ws.parent / f"{slug}.sh"
        script.write_text("set -eo pipefail\n" + "\n".join(lines) + "\n")
        home = ws.parent / f"{slug}.home"
        home.mkdir()
        env = {"PATH": f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
               "CI": "true", "GITLAB_CI": "true", "CI_PROJECT_DIR": str(ws), "CI_JOB_NAME": job.name,
               "CI_COMMIT_SHA": sha, "CI_COMMIT_SHORT_SHA": sha[:8],
               **{k: _expand(v, {**job.variables, "CI_PROJECT_DIR": str(ws)}) for k, v in job.variables.items()}}
        r = subprocess.run(["bash", str(script)], cwd=ws, env=env, capture_output=True, text=True, timeout=600)
        job.status = "success" if r.returncode == 0 else "failed"
        job.log = r.stdout + r.stderr
        artifacts = spec.get("artifacts") or {}
        if artifacts and (job.status == "success" or artifacts.get("when") == "always"):
            for p in artifacts.get("paths", []):
                src = ws / p
                if src.exists():
                    dest = store / job.name / p
                    if src.is_dir():
                        shutil.copytree(src, dest, dirs_exist_ok=True)
                    else:
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(src, dest)

"""A fake GitHub for the workflow tests: the state of one repository (pull requests, comments,
issues, labels, workflow runs, their artifacts, workflow dispatches) in a JSON file, and a fake
``gh`` command over it.

The command (``python fake_gh.py ARGS``, put first on PATH as ``gh`` by tests/support/workflow.py)
answers what the example workflows call, with the real CLI's observable behaviour: ``api`` (the
REST routes below, ``-X``, ``-F``/``-f`` fields with ``@file``, ``--paginate``, ``--jq`` through the
real jq), ``run list``, ``run download``, ``workflow run``, ``issue list/create/edit/close/comment``,
``label create`` and ``pr comment``. Every call is appended to ``calls.jsonl``. Like GitHub it checks
the token (GH_TOKEN or GITHUB_TOKEN, one the runner issued) against the permissions of the job that
got it, refuses a label that does not exist, an input a workflow does not declare and an artifact
that is not there; repository commands other than ``api`` need GH_REPO or a checkout whose origin
is the repository, as gh does.

State access is serialised with a file lock: matrix jobs call gh concurrently.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATE = "state.json"
CALLS = "calls.jsonl"

#: What each operation needs of the GITHUB_TOKEN's permissions (a write implies the read).
NEEDS = {
    "pr-read": ("pull-requests", "read"),
    "comment-write": ("pull-requests", "write"),   # a PR's comment: pull-requests or issues write
    "issues-read": ("issues", "read"),
    "issues-write": ("issues", "write"),
    "actions-read": ("actions", "read"),
    "actions-write": ("actions", "write"),
}


class GhError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------
# the state, shared by the tests (FakeGitHub) and the command


class FakeGitHub:
    """The repository's state in ``folder``; tests set it up and read what the workflows did."""

    def __init__(self, folder: Path, repository: str = "acme/schemas", workflows_dir: Path | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "artifacts").mkdir(exist_ok=True)
        if not (folder / STATE).exists():
            self._write({"repository": repository, "workflows_dir": str(workflows_dir or ""), "next_id": 1000,
                         "next_number": 1, "tokens": {}, "pulls": {}, "commit_pulls": {}, "comments": [],
                         "issues": [], "labels": [], "runs": [], "expired": [], "dispatches": []})

    @property
    def artifacts(self) -> Path:
        return self.folder / "artifacts"

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        with open(self.folder / (STATE + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = json.loads((self.folder / STATE).read_text())
            yield state
            self._write(state)

    def read(self) -> dict[str, Any]:
        with open(self.folder / (STATE + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            return dict(json.loads((self.folder / STATE).read_text()))

    def _write(self, state: dict[str, Any]) -> None:
        tmp = self.folder / (STATE + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.folder / STATE)

    # -- set-up by the tests -------------------------------------------------------------------

    def add_pull(self, head_ref: str, head_sha: str) -> int:
        with self.edit() as s:
            number = s["next_number"]
            s["next_number"] += 1
            s["pulls"][str(number)] = {"number": number, "state": "open", "head": {"ref": head_ref, "sha": head_sha},
                                       "merge_commit_sha": None}
        return int(number)

    def merge_pull(self, number: int, merge_sha: str) -> None:
        with self.edit() as s:
            pull = s["pulls"][str(number)]
            pull.update(state="closed", merged=True, merge_commit_sha=merge_sha)
            s["commit_pulls"].setdefault(merge_sha, []).append(number)

    def issue_token(self, permissions: dict[str, str] | None, label: str) -> str:
        with self.edit() as s:
            token = f"ghs_fake{s['next_id']}"
            s["next_id"] += 1
            s["tokens"][token] = {"permissions": permissions, "label": label}
        return token

    def new_run_id(self) -> int:
        with self.edit() as s:
            run_id = int(s["next_id"])
            s["next_id"] += 1
        return run_id

    def record_run(self, run: dict[str, Any]) -> None:
        with self.edit() as s:
            s["runs"].insert(0, run)   # newest first, as `gh run list`

    def expire(self, run_id: int, name: str) -> None:
        with self.edit() as s:
            s["expired"].append([run_id, name])

    # -- what the workflows did ----------------------------------------------------------------

    def calls(self) -> list[dict[str, Any]]:
        path = self.folder / CALLS
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def comments(self, issue: int) -> list[dict[str, Any]]:
        return [c for c in self.read()["comments"] if c["issue"] == issue]

    def issues(self) -> list[dict[str, Any]]:
        return list(self.read()["issues"])

    def dispatches(self) -> list[dict[str, Any]]:
        return list(self.read()["dispatches"])


# ---------------------------------------------------------------------------------------------
# the command


def _allowed(state: dict[str, Any], token: str | None, need: str) -> None:
    if not token:
        raise GhError("gh: To use GitHub CLI in a GitHub Actions workflow, set the GH_TOKEN environment "
                      "variable. Example:\n  env:\n    GH_TOKEN: ${{ github.token }}", 4)
    entry = state["tokens"].get(token)
    if entry is None:
        raise GhError("HTTP 401: Bad credentials (https://api.github.com/)")
    perms = entry["permissions"]
    if perms is None:   # no permissions: key, the (permissive) default
        return
    scope, level = NEEDS[need]
    have = perms.get(scope, "none")
    if need == "comment-write" and perms.get("issues") == "write":
        have = "write"
    if (level == "read" and have in ("read", "write")) or (level == "write" and have == "write"):
        return
    raise GhError("HTTP 403: Resource not accessible by integration (https://api.github.com/)")


def _jq(data: Any, query: str | None) -> str:
    if query is None:
        return json.dumps(data, indent=2) + "\n"
    r = subprocess.run(["/usr/bin/jq", "-rc", query], input=json.dumps(data), capture_output=True, text=True,
                       env={**os.environ})
    if r.returncode != 0:
        raise GhError(r.stderr.strip() or "jq failed")
    return r.stdout


def _repo_of_checkout(state: dict[str, Any]) -> str:
    explicit = os.environ.get("GH_REPO")
    if explicit:
        return explicit
    r = subprocess.run(["git", "remote", "get-url", "origin"], capture_output=True, text=True)
    url = r.stdout.strip()
    prefix = "https://github.com/"
    if r.returncode != 0 or not url.startswith(prefix):
        raise GhError("failed to determine base repo: not a git repository (or any of the parent directories)"
                      if r.returncode != 0 else f"none of the git remotes configured for this repository point to "
                      f"a known GitHub host: {url}")
    return url[len(prefix):].removesuffix(".git")


def _need_repo(state: dict[str, Any], a: Args) -> None:
    """gh's repository commands find the repository from -R, GH_REPO or the checkout's remote."""
    if not a.has("--repo"):
        _repo_of_checkout(state)


class Args:
    """gh's flags: ``--name value``, ``--name=value``, ``-n value``; repeated flags kept in order."""

    def __init__(self, argv: list[str], flags: dict[str, str], switches: set[str]) -> None:
        self.values: dict[str, list[str]] = {}
        self.positional: list[str] = []
        names = {**{f: f for f in flags}, **{short: long for long, short in flags.items() if short}}
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg.startswith("-") and arg != "-":
                name, eq, inline = arg.partition("=")
                if name in switches:
                    self.values.setdefault(name, []).append("true")
                elif name in names:
                    long = names[name]
                    if eq:
                        value = inline
                    else:
                        i += 1
                        if i >= len(argv):
                            raise GhError(f"flag needs an argument: {name}")
                        value = argv[i]
                    self.values.setdefault(long, []).append(value)
                else:
                    raise GhError(f"unknown flag: {name}")
            else:
                self.positional.append(arg)
            i += 1

    def one(self, name: str, default: str | None = None) -> str | None:
        v = self.values.get(name)
        return v[-1] if v else default

    def all(self, name: str) -> list[str]:
        return list(self.values.get(name, []))

    def has(self, name: str) -> bool:
        return name in self.values


def _body(a: Args) -> str | None:
    """--body or --body-file; GitHub refuses a body over 65,536 characters (comments and issues)."""
    if a.has("--body-file"):
        path = a.one("--body-file") or ""
        body: str | None = sys.stdin.read() if path == "-" else Path(path).read_text()
    else:
        body = a.one("--body")
    if body is not None and len(body) > 65536:
        raise GhError("GraphQL: Body is too long (maximum is 65536 characters) (createIssue)")
    return body


def _field_value(raw: str, typed: bool) -> Any:
    if typed and raw.startswith("@"):
        return Path(raw[1:]).read_text() if raw != "@-" else sys.stdin.read()
    if typed:
        if raw in ("true", "false"):
            return raw == "true"
        if raw == "null":
            return None
        if raw.lstrip("-").isdigit():
            return int(raw)
    return raw


def cmd_api(state: dict[str, Any], argv: list[str], token: str | None) -> str:
    a = Args(argv, {"--method": "-X", "--jq": "-q", "--field": "-F", "--raw-field": "-f", "--header": "-H",
                    "--input": ""}, {"--paginate", "--silent", "-i", "--include"})
    (endpoint,) = a.positional
    fields: dict[str, Any] = {}
    for raw in a.all("--field"):
        k, _, v = raw.partition("=")
        fields[k] = _field_value(v, True)
    for raw in a.all("--raw-field"):
        k, _, v = raw.partition("=")
        fields[k] = v
    method = (a.one("--method") or ("POST" if fields else "GET")).upper()
    path = endpoint.lstrip("/").split("?")[0]
    if "{owner}" in path or "{repo}" in path:
        owner, _, name = _repo_of_checkout(state).partition("/")
        path = path.replace("{owner}", owner).replace("{repo}", name)
    repo_prefix = f"repos/{state['repository']}/"
    if not path.startswith(repo_prefix):
        raise GhError("gh: Not Found (HTTP 404)")
    parts = path[len(repo_prefix):].split("/")
    result: Any
    if method == "GET" and len(parts) == 3 and parts[0] == "issues" and parts[2] == "comments":
        _allowed(state, token, "pr-read" if parts[1] in state["pulls"] else "issues-read")
        result = [c for c in state["comments"] if str(c["issue"]) == parts[1]]
    elif method == "POST" and len(parts) == 3 and parts[0] == "issues" and parts[2] == "comments":
        _allowed(state, token, "comment-write" if parts[1] in state["pulls"] else "issues-write")
        if parts[1] not in state["pulls"] and not any(str(i["number"]) == parts[1] for i in state["issues"]):
            raise GhError("gh: Not Found (HTTP 404)")
        result = _new_comment(state, int(parts[1]), _need_body(fields))
    elif method == "PATCH" and len(parts) == 3 and parts[:2] == ["issues", "comments"]:
        match = [c for c in state["comments"] if str(c["id"]) == parts[2]]
        if not match:
            raise GhError("gh: Not Found (HTTP 404)")
        _allowed(state, token, "comment-write" if str(match[0]["issue"]) in state["pulls"] else "issues-write")
        match[0]["body"] = _need_body(fields)
        match[0]["edits"] = match[0].get("edits", 0) + 1
        result = match[0]
    elif method == "GET" and len(parts) == 3 and parts[0] == "commits" and parts[2] == "pulls":
        _allowed(state, token, "pr-read")
        result = [state["pulls"][str(n)] for n in state["commit_pulls"].get(parts[1], [])]
    elif method == "GET" and len(parts) == 2 and parts[0] == "pulls":
        _allowed(state, token, "pr-read")
        if parts[1] not in state["pulls"]:
            raise GhError("gh: Not Found (HTTP 404)")
        result = state["pulls"][parts[1]]
    else:
        raise GhError(f"gh: Not Found (HTTP 404) [fake: no route {method} {path}]")
    if a.has("--silent"):
        return ""
    return _jq(result, a.one("--jq"))


def _need_body(fields: dict[str, Any]) -> str:
    if not isinstance(fields.get("body"), str) or not fields["body"]:
        raise GhError("gh: Validation Failed (HTTP 422): body is missing")
    if len(fields["body"]) > 65536:
        raise GhError("gh: Validation Failed (HTTP 422): body is too long (maximum is 65536 characters)")
    return str(fields["body"])


def _new_comment(state: dict[str, Any], issue: int, body: str) -> dict[str, Any]:
    comment = {"id": state["next_id"], "issue": issue, "body": body, "user": {"login": "github-actions[bot]"}}
    state["next_id"] += 1
    state["comments"].append(comment)
    return comment


def _issue(state: dict[str, Any], number: str) -> dict[str, Any]:
    for issue in state["issues"]:
        if str(issue["number"]) == number.lstrip("#"):
            return issue
    raise GhError(f"GraphQL: Could not resolve to an issue or pull request with the number of {number}.")


def _fields(items: list[dict[str, Any]], spec: str | None) -> list[dict[str, Any]]:
    if spec is None:
        raise GhError("fake gh: only --json output is implemented")
    names = spec.split(",")
    return [{n: item.get(n) for n in names} for item in items]


def cmd_run(state: dict[str, Any], argv: list[str], token: str | None, gh: FakeGitHub) -> str:
    sub, rest = argv[0], argv[1:]
    if sub == "list":
        a = Args(rest, {"--workflow": "-w", "--branch": "-b", "--event": "-e", "--status": "-s", "--limit": "-L",
                        "--json": "", "--jq": "-q", "--repo": "-R", "--commit": "-c"}, set())
        _need_repo(state, a)
        _allowed(state, token, "actions-read")
        runs = state["runs"]
        if a.has("--workflow"):
            w = a.one("--workflow")
            runs = [r for r in runs if w in (r["workflowName"], r["workflow"])]
        if a.has("--branch"):
            runs = [r for r in runs if r["headBranch"] == a.one("--branch")]
        if a.has("--event"):
            runs = [r for r in runs if r["event"] == a.one("--event")]
        if a.has("--commit"):
            runs = [r for r in runs if r["headSha"] == a.one("--commit")]
        if a.has("--status"):
            s = a.one("--status")
            runs = [r for r in runs if s in (r["status"], r["conclusion"])]
        runs = runs[: int(a.one("--limit") or 20)]
        return _jq(_fields(runs, a.one("--json")), a.one("--jq"))
    if sub == "download":
        a = Args(rest, {"--name": "-n", "--dir": "-D", "--pattern": "-p", "--repo": "-R"}, set())
        _need_repo(state, a)
        _allowed(state, token, "actions-read")
        (run_id,) = a.positional
        folder = gh.artifacts / run_id
        names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        names = [n for n in names if [int(run_id), n] not in state["expired"]]
        wanted = [n for n in names if n in a.all("--name")
                  or any(fnmatch.fnmatch(n, p) for p in a.all("--pattern"))]
        if not a.has("--name") and not a.has("--pattern"):
            wanted = names
        if not wanted:
            raise GhError("no valid artifacts found to download")
        target = Path(a.one("--dir") or ".")
        for name in wanted:   # one artifact: into the dir; several: one subfolder each
            dest = target if len(wanted) == 1 and a.has("--name") else target / name
            shutil.copytree(folder / name, dest, dirs_exist_ok=True)
        return ""
    raise GhError(f"fake gh: run {sub} is not implemented")


def cmd_workflow(state: dict[str, Any], argv: list[str], token: str | None) -> str:
    if argv[:1] != ["run"]:
        raise GhError(f"fake gh: workflow {argv[:1]} is not implemented")
    a = Args(argv[1:], {"--ref": "-r", "--raw-field": "-f", "--field": "-F", "--repo": "-R", "--json": ""}, set())
    _need_repo(state, a)
    _allowed(state, token, "actions-write")
    (workflow,) = a.positional
    inputs = dict(raw.partition("=")[::2] for raw in [*a.all("--raw-field"), *a.all("--field")])
    wf_path = Path(state["workflows_dir"]) / workflow
    if not wf_path.exists():
        raise GhError(f"could not find any workflows named {workflow}")
    from ruamel.yaml import YAML
    doc = YAML(typ="safe", pure=True).load(wf_path.read_text())
    on = doc.get("on") or {}
    dispatch = on.get("workflow_dispatch", False) if isinstance(on, dict) else None
    if dispatch is False or (dispatch is None and "workflow_dispatch" not in on):
        raise GhError("could not create workflow dispatch event: HTTP 422: Workflow does not have "
                      "'workflow_dispatch' trigger")
    declared = (dispatch or {}).get("inputs") or {}
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise GhError(f"could not create workflow dispatch event: HTTP 422: Unexpected inputs provided: {unknown}")
    missing = [k for k, v in declared.items() if v.get("required") and k not in inputs]
    if missing:
        raise GhError(f"could not create workflow dispatch event: HTTP 422: Required input '{missing[0]}' not provided")
    for k, v in inputs.items():
        if declared[k].get("type") == "boolean" and v not in ("true", "false"):
            raise GhError(f"could not create workflow dispatch event: HTTP 422: Provided value '{v}' for input "
                          f"'{k}' not in the list of allowed values")
    state["dispatches"].append({"workflow": workflow, "ref": a.one("--ref"), "inputs": inputs})
    return ""


def cmd_issue(state: dict[str, Any], argv: list[str], token: str | None) -> str:
    sub, rest = argv[0], argv[1:]
    flags = {"--label": "-l", "--state": "-s", "--json": "", "--jq": "-q", "--limit": "-L", "--title": "-t",
             "--body": "-b", "--body-file": "-F", "--comment": "-c", "--reason": "-r", "--add-label": "",
             "--repo": "-R"}
    a = Args(rest, flags, set())
    _need_repo(state, a)
    if sub == "list":
        _allowed(state, token, "issues-read")
        want = {"open": ["open"], "closed": ["closed"], "all": ["open", "closed"]}[a.one("--state") or "open"]
        items = [i for i in state["issues"] if i["state"] in want
                 and all(lab in [x["name"] for x in i["labels"]] for lab in a.all("--label"))]
        items = sorted(items, key=lambda i: -int(i["number"]))[: int(a.one("--limit") or 30)]
        return _jq(_fields(items, a.one("--json")), a.one("--jq"))
    _allowed(state, token, "issues-write")
    if sub == "create":
        labels = a.all("--label")
        known = {lab["name"] for lab in state["labels"]}
        for lab in labels:
            if lab not in known:
                raise GhError(f"could not add label: '{lab}' not found")
        body = _body(a)
        if body is None or not a.one("--title"):
            raise GhError("must provide `--title` and `--body` (or `--fill`) when not running interactively")
        number = state["next_number"]
        state["next_number"] += 1
        state["issues"].append({"number": number, "title": a.one("--title"), "body": body, "state": "open",
                                "labels": [{"name": lab} for lab in labels]})
        return f"https://github.com/{state['repository']}/issues/{number}\n"
    (number,) = a.positional
    issue = _issue(state, number)
    if sub == "edit":
        body = _body(a)
        if body is not None:
            issue["body"] = body
        if a.has("--title"):
            issue["title"] = a.one("--title")
        return f"https://github.com/{state['repository']}/issues/{issue['number']}\n"
    if sub == "comment":
        body = _body(a)
        if not body:
            raise GhError("body cannot be blank")
        c = _new_comment(state, int(issue["number"]), body)
        return f"https://github.com/{state['repository']}/issues/{issue['number']}#issuecomment-{c['id']}\n"
    if sub == "close":
        if a.has("--comment"):
            _new_comment(state, int(issue["number"]), a.one("--comment") or "")
        if issue["state"] == "closed":
            return ""
        issue["state"] = "closed"
        return ""
    raise GhError(f"fake gh: issue {sub} is not implemented")


def cmd_label(state: dict[str, Any], argv: list[str], token: str | None) -> str:
    if argv[:1] != ["create"]:
        raise GhError(f"fake gh: label {argv[:1]} is not implemented")
    a = Args(argv[1:], {"--color": "-c", "--description": "-d", "--repo": "-R"}, {"--force", "-f"})
    _need_repo(state, a)
    _allowed(state, token, "issues-write")
    (name,) = a.positional
    existing = [lab for lab in state["labels"] if lab["name"].casefold() == name.casefold()]
    if existing and not (a.has("--force") or a.has("-f")):
        raise GhError(f"label with name \"{name}\" already exists; use `--force` to update its color and description")
    if existing:
        existing[0].update(color=a.one("--color"), description=a.one("--description"))
    else:
        state["labels"].append({"name": name, "color": a.one("--color"), "description": a.one("--description")})
    return ""


def cmd_pr(state: dict[str, Any], argv: list[str], token: str | None) -> str:
    if argv[:1] != ["comment"]:
        raise GhError(f"fake gh: pr {argv[:1]} is not implemented")
    a = Args(argv[1:], {"--body": "-b", "--body-file": "-F", "--repo": "-R"}, {"--edit-last"})
    _need_repo(state, a)
    _allowed(state, token, "comment-write")
    (number,) = a.positional
    if number not in state["pulls"]:
        raise GhError(f"no pull requests found for branch \"{number}\"")
    body = _body(a) or ""
    mine = [c for c in state["comments"] if str(c["issue"]) == number]
    if a.has("--edit-last"):
        if not mine:
            raise GhError("no comments found for current user")
        mine[-1]["body"] = body
    else:
        _new_comment(state, int(number), body)
    return f"https://github.com/{state['repository']}/pull/{number}\n"


def main(argv: list[str]) -> int:
    gh = FakeGitHub(Path(os.environ["FAKE_GH_STATE"]))
    token = os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")
    code, out, err = 0, "", ""
    try:
        with gh.edit() as state:
            group = argv[0] if argv else ""
            if group == "api":
                out = cmd_api(state, argv[1:], token)
            elif group == "run":
                out = cmd_run(state, argv[1:], token, gh)
            elif group == "workflow":
                out = cmd_workflow(state, argv[1:], token)
            elif group == "issue":
                out = cmd_issue(state, argv[1:], token)
            elif group == "label":
                out = cmd_label(state, argv[1:], token)
            elif group == "pr":
                out = cmd_pr(state, argv[1:], token)
            else:
                raise GhError(f"fake gh: {group!r} is not implemented")
    except GhError as e:   # the state is written back unchanged only when nothing failed
        code, err = e.code, str(e) + "\n"
    except (ValueError, KeyError, OSError) as e:
        code, err = 1, f"fake gh: {type(e).__name__}: {e}\n"
    with open(gh.folder / CALLS, "a") as log:
        log.write(json.dumps({"argv": argv, "cwd": os.getcwd(), "code": code, "error": err.strip() or None}) + "\n")
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

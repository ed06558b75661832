"""Drift says which side changed only with evidence (issue 10, item 8).

The evidence is the live schema's ``updatedTimestamp`` against the git history of its file, read by
:mod:`reconciler.gitinfo` from real temporary git repositories (commit dates set through
``GIT_COMMITTER_DATE``); the account is the sandbox over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler import gitinfo
from reconciler.client import Client
from reconciler.drift import changed_side, compute_drift
from reconciler.files import load_dir
from reconciler.gitinfo import FileHistory, file_histories
from reconciler.pipeline import check_drift
from reconciler.render import render_drift
from reconciler.render.words import drift_message
from tests.conftest import ROOT, TOKEN, Cli

SEED = (ROOT / "schemas" / "orders.yaml").read_text(encoding="utf-8")
SCHEMAS = "/api/3/customObjects/schemas"


def git(repo: Path, *args: str, when: float | None = None) -> str:
    env = dict(os.environ)
    if when is not None:
        env["GIT_COMMITTER_DATE"] = env["GIT_AUTHOR_DATE"] = f"@{int(when)} +0000"
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.invalid")
    git(path, "config", "commit.gpgsign", "false")
    return path


def commit(repo: Path, message: str, when: float) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, when=when)


def stamp(epoch: float) -> str:
    """An API timestamp (nanoseconds, ``Z``)."""
    base = datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{int((epoch % 1) * 1e9):09d}Z"


# ---------------------------------------------------------------------------------------------
# gitinfo: what git knows, in a constant number of git runs


def test_last_commit_per_file_and_uncommitted_changes(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    schemas = repo / "schemas"
    schemas.mkdir()
    (schemas / "a.yaml").write_text("a: 1\n")
    (schemas / "b.yaml").write_text("b: 1\n")
    (repo / "README").write_text("x\n")
    commit(repo, "one", 1_600_000_000)
    (schemas / "a.yaml").write_text("a: 2\n")
    commit(repo, "two", 1_700_000_000)
    (repo / "README").write_text("y\n")
    commit(repo, "three: outside schemas/", 1_750_000_000)
    (schemas / "b.yaml").write_text("b: 2\n")           # modified, not committed
    (schemas / "c.yaml").write_text("c: 1\n")           # untracked
    os.utime(schemas / "b.yaml", (1_760_000_000, 1_760_000_000))

    paths = [schemas / n for n in ("a.yaml", "b.yaml", "c.yaml")]
    got = file_histories([*paths, tmp_path / "elsewhere.yaml"])
    assert got[paths[0]] == FileHistory(committed=1_700_000_000, modified=None)
    assert got[paths[1]] == FileHistory(committed=1_600_000_000, modified=1_760_000_000)
    assert got[paths[2]].committed is None and got[paths[2]].modified == (schemas / "c.yaml").stat().st_mtime
    assert tmp_path / "elsewhere.yaml" not in got  # not in a work tree: nothing known

    git(repo, "add", "schemas/b.yaml")  # staged counts as uncommitted too
    assert file_histories([paths[1]])[paths[1]].modified == 1_760_000_000
    git(repo, "mv", "schemas/a.yaml", "schemas/renamed.yaml")
    renamed = schemas / "renamed.yaml"
    assert file_histories([renamed])[renamed].modified is not None


def test_no_git_or_no_repository_is_no_evidence_never_an_error(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.yaml").write_text("a: 1\n")
    assert file_histories([plain / "a.yaml"]) == {}
    assert file_histories([]) == {}
    repo = new_repo(tmp_path / "repo")
    (repo / "a.yaml").write_text("a: 1\n")
    commit(repo, "one", 1_600_000_000)
    assert file_histories([repo / "a.yaml"]) != {}
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no git at all
    assert file_histories([repo / "a.yaml"]) == {}


def test_a_shallow_clone_boundary_says_nothing_about_its_files(tmp_path: Path) -> None:
    origin = new_repo(tmp_path / "origin")
    (origin / "a.yaml").write_text("a: 1\n")
    (origin / "b.yaml").write_text("b: 1\n")
    commit(origin, "one", 1_600_000_000)
    (origin / "b.yaml").write_text("b: 2\n")
    commit(origin, "two", 1_650_000_000)
    (origin / "a.yaml").write_text("a: 2\n")
    commit(origin, "three", 1_700_000_000)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "2", f"file://{origin}", str(clone)], check=True)
    got = file_histories([clone / "a.yaml", clone / "b.yaml"])
    assert got[clone / "a.yaml"].committed == 1_700_000_000
    # "two" is the clone's boundary: it shows b.yaml as added there, whenever b really changed
    assert clone / "b.yaml" not in got


def test_many_files_take_a_constant_number_of_git_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path / "repo")
    (repo / "schemas").mkdir()
    paths = []
    for n in range(300):
        p = repo / "schemas" / f"s{n:03}.yaml"
        p.write_text(f"n: {n}\n")
        paths.append(p)
    commit(repo, "many", 1_600_000_000)
    (repo / "schemas" / "s007.yaml").write_text("n: changed\n")
    runs: list[list[str]] = []
    real_popen = subprocess.Popen

    def popen(cmd: list[str], *a: Any, **kw: Any) -> Any:  # every process starts here (run() too)
        runs.append(cmd)
        return real_popen(cmd, *a, **kw)

    monkeypatch.setattr(gitinfo.subprocess, "Popen", popen)
    got = file_histories(paths)
    assert len(got) == 300 and all(h.committed == 1_600_000_000 for h in got.values())
    assert got[repo / "schemas" / "s007.yaml"].modified is not None
    assert sum(1 for h in got.values() if h.modified is not None) == 1
    assert [next(a for a in cmd[3:] if not a.startswith("-")) for cmd in runs] == ["rev-parse", "status", "log"]


# ---------------------------------------------------------------------------------------------
# The evidence rule (pure)


@pytest.mark.parametrize(("updated", "history", "side"), [
    (stamp(2000), FileHistory(committed=1000), "account"),          # account updated after the last commit
    (stamp(2000), FileHistory(committed=3000), "files"),            # committed after the account's update
    (stamp(2000.2), FileHistory(committed=2000), None),             # within a second: unknown order
    (stamp(2000), FileHistory(committed=1000, modified=3000), "files"),  # edited since, not committed
    (stamp(2000), FileHistory(committed=1000, modified=1500), None),     # uncommitted, yet older: no evidence
    (stamp(2000), FileHistory(), None),
    (stamp(2000), None, None),                                      # no git history
    (None, FileHistory(committed=1000), None),                      # no timestamp (schema not in the account)
    ("yesterday", FileHistory(committed=1000), None),               # an unreadable timestamp
    ("1970-01-01T02:00:00+02:00", FileHistory(committed=-5), "account"),
    ("1970-01-01T00:33:20.123456789Z", FileHistory(committed=2010), "files"),
])
def test_which_side_changed(updated: str | None, history: FileHistory | None, side: str | None) -> None:
    assert changed_side(updated, history) == side


def test_wording_follows_the_evidence() -> None:
    desired = load_dir(ROOT / "schemas").schemas["online-order"]
    rel = desired.relationships[0]
    live = desired.model_copy(update={
        "id": "s1", "updated_timestamp": stamp(2000), "description": "Edited",
        "fields": tuple(f for f in desired.fields if f.id != "order-total"),
        "relationships": (rel.model_copy(update={"namespace": "deals"}),)})
    cases = {
        None: ('schema online-order: description differs: account "Edited", files "Orders from the web shop"',
               "field online-order.order-total is not in the account (the files declare it)",
               'relationship online-order.primary-contact: namespace differs: account "deals", files "contacts"'),
        "account": ('schema online-order: description changed in the account: "Edited" '
                    '(files: "Orders from the web shop")',
                    "field online-order.order-total was deleted in the account (the files declare it)",
                    'relationship online-order.primary-contact: namespace changed in the account: "deals" '
                    '(files: "contacts")'),
        "files": ('schema online-order: description changed in the files (not applied yet): '
                  '"Orders from the web shop" (account: "Edited")',
                  "field online-order.order-total was added in the files (not applied yet)",
                  'relationship online-order.primary-contact: namespace changed in the files (not applied yet): '
                  '"contacts" (account: "deals")'),
    }
    histories = {None: None, "account": FileHistory(committed=1000), "files": FileHistory(committed=3000)}
    for side, expected in cases.items():
        history = None if histories[side] is None else {"online-order": histories[side]}
        report = compute_drift({"online-order": desired}, {"online-order": live}, history=history)
        by_key = {i.key: i for i in report.items}
        got = (drift_message(by_key["online-order.description"]), drift_message(by_key["online-order.order-total"]),
               drift_message(by_key["online-order.primary-contact.namespace"]))
        assert got == expected, side
        assert {i.changed_in for i in report.items} == {side}
        items = json.loads(render_drift(report, "json"))["items"]
        assert {i["changed_in"] for i in items} == {side}


# ---------------------------------------------------------------------------------------------
# check_drift: the account over HTTP, the files in a git work tree


def api(url: str, method: str, path: str, **kw: Any) -> dict[str, Any]:
    r = httpx.request(method, url + path, headers={"Api-Token": TOKEN}, timeout=10, **kw)
    assert r.status_code < 300, r.text
    return r.json() if r.content else {}


def drift_of(url: str, schemas: Path) -> dict[str, Any]:
    loaded = load_dir(schemas)

    async def go() -> Any:
        async with Client(url, TOKEN, rate=None) as client:
            return await check_drift(client, loaded.schemas, sources=loaded.sources)

    report = asyncio.run(go())
    return {i.key: i for i in report.items}


def test_check_drift_blames_only_with_evidence(tmp_path: Path, sandbox: Any) -> None:
    url = sandbox.url
    repo = new_repo(tmp_path / "repo")
    (repo / "schemas").mkdir()
    orders = repo / "schemas" / "orders.yaml"
    orders.write_text(SEED, encoding="utf-8")
    commit(repo, "orders", time.time() - 3600)
    desired = load_dir(repo / "schemas").schemas["online-order"]

    async def create() -> str:
        async with Client(url, TOKEN, rate=None) as client:
            return (await client.create_schema(desired)).id or ""

    sid = asyncio.run(create())
    api(url, "PUT", f"{SCHEMAS}/{sid}", json={"schema": {"description": "Edited in the UI"}})

    # the account was edited after the file's last commit
    item = drift_of(url, repo / "schemas")["online-order.description"]
    assert item.changed_in == "account"
    assert drift_message(item) == ('schema online-order: description changed in the account: "Edited in the UI" '
                            '(files: "Orders from the web shop")')

    # an uncommitted edit made after the account's update: the files changed
    orders.write_text(SEED.replace("Orders from the web shop", "Orders, all channels"), encoding="utf-8")
    later = time.time() + 60
    os.utime(orders, (later, later))
    item = drift_of(url, repo / "schemas")["online-order.description"]
    assert item.changed_in == "files"
    assert drift_message(item) == ('schema online-order: description changed in the files (not applied yet): '
                            '"Orders, all channels" (account: "Edited in the UI")')

    # the same edit committed later than the account's update
    commit(repo, "description", time.time() + 120)
    assert drift_of(url, repo / "schemas")["online-order.description"].changed_in == "files"

    # the same files outside git: neutral
    plain = tmp_path / "plain"
    shutil.copytree(repo / "schemas", plain)
    item = drift_of(url, plain)["online-order.description"]
    assert item.changed_in is None
    assert drift_message(item) == ('schema online-order: description differs: account "Edited in the UI", '
                            'files "Orders, all channels"')


def test_cli_drift_in_a_git_work_tree(seed_files: Cli, sandbox: Any) -> None:
    """Through the CLI: ``drift`` passes the files' sources to :func:`check_drift`."""
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    new_repo(cli.workdir)
    commit(cli.workdir, "orders", time.time() - 3600)
    (schema,) = api(sandbox.url, "GET", SCHEMAS)["schemas"]
    api(sandbox.url, "PUT", f"{SCHEMAS}/{schema['id']}",
        json={"schema": {"labels": {"singular": "Web Order", "plural": "Online Orders"}}})
    r = cli("--no-color", "drift")
    assert r.code == 2, r.out + r.err
    assert 'schema online-order: labels.singular changed in the account: "Web Order" (files: "Online Order")' in r.out
    r = cli("drift", "--format", "json")
    items = [i for i in json.loads(r.out)["items"] if i["severity"] == "drift"]
    assert [i["changed_in"] for i in items] == ["account"]

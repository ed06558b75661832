"""The core issue's acceptance through the real CLI: bad input, fmt, export, token hygiene, start-up."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.files import load_dir
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import ROOT, TOKEN, Cli, honours_required

BAD = ROOT / "tests" / "files" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("case", CASES)
def test_bad_input_through_the_cli(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.cli import run

    work = tmp_path / case
    shutil.copytree(BAD / case, work)
    monkeypatch.chdir(work)
    (work / "schemas").mkdir(exist_ok=True)
    before = tree_digest(work)
    expected = (work / "expected.txt").read_text(encoding="utf-8").splitlines()

    code = run(["validate"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    assert sorted(err.splitlines()) == sorted(expected)  # the CLI sorts by path, line, column
    assert tree_digest(work) == before, "validate must write nothing"


def test_bad_input_makes_plan_fail_before_any_request(cli: Cli, sandbox: Any) -> None:
    cli.write("x.yaml", (BAD / "unknown-key-typo" / "schemas").joinpath(
        next(p.name for p in (BAD / "unknown-key-typo" / "schemas").iterdir())).read_text())
    r = cli("plan")
    assert r.code == 1
    assert "did you mean 'required'" in r.err
    assert "Traceback" not in r.err
    assert sandbox.traffic.total == 0


def test_fmt_check_exit_codes_and_idempotence(cli: Cli) -> None:
    shutil.copy(ROOT / "schemas" / "orders.yaml", cli.schemas / "orders.yaml")
    r = cli("fmt", "--check")
    assert r.code == 0, r.out + r.err
    messy = (
        "# top comment\n"
        "kind: CustomObjectSchema\n"
        "apiVersion: reconciler/v1\n"
        "labels: {plural: Tickets, singular: Ticket}   # labels\n"
        "slug: ticket\n"
        "fields:\n"
        "  - type: text   # the type\n"
        "    id: seat\n"
        "    labels: {singular: Seat, plural: Seats}\n"
    )
    path = cli.write("ticket.yaml", messy)
    r = cli("fmt", "--check")
    assert r.code == 1
    assert "ticket.yaml" in r.out and "orders.yaml" not in r.out
    assert path.read_text() == messy, "--check writes nothing"

    assert cli("fmt").code == 0
    once = path.read_text()
    assert "# top comment" in once and "# labels" in once and "# the type" in once
    assert once.index("apiVersion") < once.index("kind") < once.index("slug") < once.index("labels")
    assert cli("fmt").code == 0
    assert path.read_text() == once, "fmt is idempotent"
    assert cli("fmt", "--check").code == 0


def test_export_round_trip(seed_files: Cli, sandbox: Any, tmp_path: Path) -> None:
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    out_dir = tmp_path / "exported"
    r = cli("export", "--out-dir", str(out_dir))
    assert r.code == 0, r.out + r.err
    exported = load_dir(out_dir)
    seed = load_dir(ROOT / "schemas")
    assert exported.schemas.keys() == seed.schemas.keys() == {"online-order"}
    want = seed.schemas["online-order"]
    if not honours_required(sandbox):  # the account ignores required: export writes what it holds
        want = want.model_copy(update={"fields": tuple(f.model_copy(update={"required": False})
                                                       for f in want.fields)})
    assert exported.schemas["online-order"].comparable() == want.comparable()

    # a file that differs is not overwritten without --force, and nothing is written
    target = out_dir / "online-order.yaml"
    target.write_text(target.read_text().replace("Online Orders", "Changed"))
    before = target.read_text()
    r = cli("export", "--out-dir", str(out_dir))
    assert r.code == 1
    assert "online-order.yaml" in r.err and "--force" in r.err
    assert target.read_text() == before
    assert cli("export", "--out-dir", str(out_dir), "--force").code == 0
    assert "Online Orders" in target.read_text()


def test_token_never_shown(seed_files: Cli, sandbox: Any, tmp_path: Path) -> None:
    """Every command, including failing runs, with a distinctive token: not on stdout, stderr, in
    files written, or in exception text."""
    cli = seed_files
    runs = [
        cli("validate"),
        cli("plan", "--out", "plan.json"),
        cli("plan", "--format", "json"),
        cli("plan", "--format", "markdown"),
        cli("show", "plan.json"),
        cli("apply", "plan.json"),
        cli("apply", "--auto-approve"),
        cli("export", "--out-dir", str(tmp_path / "exp")),
    ]
    # failing runs: a sandbox that refuses the token (transport failures are covered in test_client)
    with running_sandbox(SandboxSettings(token="another-token", rate_limit=0)) as other:
        cli.monkeypatch.setenv("AC_API_URL", other.url)
        failing = cli("plan")
        runs.append(failing)
        runs.append(cli("apply", "--auto-approve"))
    assert failing.code == 1 and "authentication failed" in failing.err
    assert all("Traceback" not in r.err for r in runs)
    for r in runs:
        assert TOKEN not in r.out and TOKEN not in r.err
    for path in [*cli.workdir.rglob("*"), *(tmp_path / "exp").rglob("*")]:
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_help_loads_no_web_framework() -> None:
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from reconciler.cli import run\n"
        "rc = run(['--help'])\n"
        "heavy = sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'httpx', 'deepdiff') if m in sys.modules)\n"
        "print(heavy, rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip().endswith("[] 0")


def test_plan_counts_impact_with_one_request_per_change(cli: Cli, sandbox: Any) -> None:
    """500 records, 137 with order-link set: removing order-link plans DL102 137 of 500."""
    seed = (ROOT / "schemas" / "orders.yaml").read_text()
    cli.write("orders.yaml", seed)
    assert cli("apply", "--auto-approve").code == 0
    r = httpx.get(f"{sandbox.url}/api/3/customObjects/schemas", headers={"Api-Token": TOKEN})
    schema_id = r.json()["schemas"][0]["id"]
    records = []
    for i in range(500):
        fields = {"order-number": i, "order-date": "2026-05-21T00:00:00Z", "order-ship-status": "Received"}
        if i % 500 < 137:
            fields["order-link"] = f"https://shop.example/r/{i}"
        records.append({"externalId": f"o-{i}", "fields": fields})
    sandbox.store.seed_records(schema_id, records)

    cli.write("orders.yaml", seed.replace(
        "  - id: order-link\n    type: text\n    labels: {singular: Receipt Link, plural: Receipt Links}\n", ""))
    sandbox.traffic.clear()
    r = cli("plan")
    assert r.code == 0, r.err
    assert "DL102 delete field online-order.order-link: 137 of 500 records hold a value that will be lost" in r.out
    paths = [(e.method, e.path, e.query) for e in sandbox.traffic.log]
    counts = [p for p in paths if p[1].startswith("/api/3/customObjects/records/")]
    on_link = [p for p in counts if "order-link" in p[2]]
    assert len(on_link) == 1, paths
    assert "not_blank" in on_link[0][2]
    # the rest: one schema list page and one total for the schema
    assert len(paths) == 3, paths


def test_planning_200_schemas_costs_two_requests(cli: Cli, sandbox: Any) -> None:
    fields = [
        {"id": f"f{j}", "labels": {"singular": f"F{j}", "plural": f"F{j}s"}, "type": "text", "required": False}
        for j in range(30)
    ]
    headers = {"Api-Token": TOKEN}
    with httpx.Client(base_url=f"{sandbox.url}/api/3", headers=headers) as http:
        for i in range(200):
            body = {"schema": {"slug": f"s{i}", "labels": {"singular": f"S{i}", "plural": f"S{i}s"}, "fields": fields}}
            assert http.post("/customObjects/schemas", json=body).status_code == 201
    yaml_fields = "".join(f"  - id: f{j}\n    type: text\n    labels: {{singular: F{j}, plural: F{j}s}}\n" for j in range(30))
    for i in range(200):
        cli.write(f"s{i}.yaml", f"apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: s{i}\n"
                                f"labels: {{singular: S{i}, plural: S{i}s}}\nfields:\n{yaml_fields}")
    sandbox.traffic.clear()
    r = cli("plan", "--detailed-exitcode")
    assert r.code == 0, r.out + r.err
    assert "No changes." in r.out
    assert len(sandbox.traffic.log) == 2


def test_show_refuses_edited_and_unknown_version_plans(seed_files: Cli) -> None:
    cli = seed_files
    assert cli("plan", "--out", "plan.json").code == 0
    text = (cli.workdir / "plan.json").read_text()
    (cli.workdir / "edited.json").write_text(text.replace("Online Orders", "Offline Orders"))
    r = cli("show", "edited.json")
    assert r.code == 1
    assert r.err.startswith("Error:") and "edited.json" in r.err and "modified" in r.err
    (cli.workdir / "future.json").write_text(text.replace('"format_version": 1', '"format_version": 99'))
    r = cli("show", "future.json")
    assert r.code == 1 and "format_version" in r.err
    (cli.workdir / "garbage.json").write_text("{not json")
    r = cli("show", "garbage.json")
    assert r.code == 1 and "Traceback" not in r.err
    r = cli("show", "missing.json")
    assert r.code == 1 and "no such plan file" in r.err


@pytest.mark.parametrize("argv", [["plan", "--format", "yaml"], ["--env", "x", "plan"], ["nope"],
                                  ["apply", "--auto-aprove"]])
def test_usage_errors_are_one_line_and_exit_1(argv: list[str], cli: Cli) -> None:
    """Exit 2 means "changes" for plan and drift: a usage error must not look like one."""
    r = cli(*argv)
    assert r.code == 1
    assert len(r.err.strip().splitlines()) == 1 and r.err.startswith("Error: ")
    assert "--help" in r.err


def test_missing_token_says_how_to_give_one(seed_files: Cli) -> None:
    cli = seed_files
    cli.monkeypatch.delenv("AC_API_TOKEN")
    r = cli("plan")
    assert r.code == 1
    assert "AC_API_TOKEN" in r.err and "--token" not in r.err

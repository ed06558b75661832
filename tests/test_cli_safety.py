"""Safe in CI (issue 10): no false greens, explicit targets, safe writes, one-line errors with hints.

Everything here runs the real CLI as a subprocess (``python -m reconciler``), as a pipeline would,
and asserts the exit code, the one error line, and that nothing was written where it must not be:
no sandbox database created, no schema file changed, no plan file left behind, no request sent.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import ROOT, TOKEN

SEED = (ROOT / "schemas" / "orders.yaml").read_text(encoding="utf-8")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def reconciler(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    environ = dict(os.environ)
    environ.update(env or {})
    environ.pop("RECONCILER_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=environ,
                       capture_output=True, text=True, timeout=timeout)
    return Run(p.returncode, p.stdout, p.stderr)


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its digest (what "nothing was written" compares)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def project(tmp_path: Path, *, schemas: bool = True, files: bool = True, config: str | None = None) -> Path:
    work = tmp_path / "repo"
    work.mkdir()
    if schemas:
        (work / "schemas").mkdir()
        if files:
            (work / "schemas" / "orders.yaml").write_text(SEED, encoding="utf-8")
    if config is not None:
        (work / "reconciler.yaml").write_text(config, encoding="utf-8")
    return work


ENVIRONMENTS = """\
environments:
  staging: {url: https://acme-staging.api-us1.com, token_env: AC_STAGING_TOKEN}
  production: {url: https://acme.api-us1.com, token_env: AC_PROD_TOKEN}
"""

# ---------------------------------------------------------------------------------------------
# Acceptance 2: every command x every way of getting the setup slightly wrong


COMMANDS = {
    "validate": ["validate"],
    "fmt": ["fmt"],
    "fmt --check": ["fmt", "--check"],
    "plan": ["plan", "--detailed-exitcode"],
    "apply": ["apply", "--auto-approve"],
    "drift": ["drift"],
    "export": ["export"],
    "json-schema --write": ["json-schema", "--write"],
}
#: Commands that never contact an account: CI and environments do not concern them.
OFFLINE = {"validate", "fmt", "fmt --check", "json-schema --write"}

#: Commands that do not read the schemas directory (export writes it; json-schema writes next to it).
NO_DIR = {"export", "json-schema --write"}

SETUPS = {
    # name: (project kwargs, extra args before the command, environment, expected line part, applies to)
    "missing dir": ({"schemas": False}, [], {}, "no schema directory schemas/", set(COMMANDS) - NO_DIR),
    "typo in --dir": ({}, ["--dir", "schema"], {}, "no schema directory schema/", set(COMMANDS) - NO_DIR),
    "empty dir": ({"files": False}, [], {}, "holds no schema file", set(COMMANDS) - NO_DIR),
    "missing config": ({}, ["--config", "missing.yaml"], {}, "missing.yaml: no such project file", set(COMMANDS)),
    "CI with no target": ({}, [], {"CI": "true", "AC_API_TOKN": "typo"}, "CI is set and no account is configured",
                          set(COMMANDS) - OFFLINE),
    "environments without --env": ({"config": ENVIRONMENTS}, [], {"AC_STAGING_TOKEN": "x", "AC_PROD_TOKEN": "y"},
                                   "defines environments (staging, production) but none was chosen",
                                   set(COMMANDS) - OFFLINE),
}

CASES = [(s, c) for s, spec in SETUPS.items() for c in COMMANDS if c in spec[4]]


@pytest.mark.parametrize(("setup", "command"), CASES, ids=[f"{s}-{c}" for s, c in CASES])
def test_no_exit_0_hides_a_setup_mistake(tmp_path: Path, setup: str, command: str) -> None:
    kwargs, pre, env, expected, _ = SETUPS[setup]
    work = project(tmp_path, **kwargs)
    before = tree(work)
    r = reconciler(work, *pre, *COMMANDS[command], env=env)
    assert r.code == 1, (r.out, r.err)
    assert len(r.lines) == 1, r.err
    assert expected in r.lines[0]
    assert r.lines[0].startswith(("Error: ", str(Path("missing.yaml"))))
    assert "Traceback" not in r.err
    assert tree(work) == before, "nothing may be written"
    assert not (work / ".reconciler").exists(), "the embedded sandbox must not even be opened"


@pytest.mark.parametrize("command", sorted(OFFLINE))
def test_offline_commands_do_not_need_a_target_in_ci(tmp_path: Path, command: str) -> None:
    work = project(tmp_path)
    r = reconciler(work, *COMMANDS[command], env={"CI": "true"})
    assert r.code == 0, r.err


# ---------------------------------------------------------------------------------------------
# Targets: explicit beats ambient; nothing is chosen by accident


def test_config_elsewhere_reads_its_schemas_dir_relative_to_itself(tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / "defs").mkdir(parents=True)
    (other / "defs" / "orders.yaml").write_text(SEED, encoding="utf-8")
    (other / "reconciler.yaml").write_text("schemas_dir: defs\ntarget: sandbox\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = reconciler(elsewhere, "--config", "../other/reconciler.yaml", "plan", "--detailed-exitcode",
                   env={"CI": "true"})
    assert r.code == 2, r.err
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in r.out
    assert (other / ".reconciler" / "sandbox.sqlite3").exists(), "the sandbox belongs to the project"
    assert not (elsewhere / ".reconciler").exists()


def test_sandbox_by_name_works_in_ci(tmp_path: Path) -> None:
    work = project(tmp_path)
    r = reconciler(work, "apply", "--sandbox", "--auto-approve", env={"CI": "true"})
    assert r.code == 0, r.err
    assert r.out.startswith("Target: local sandbox (.reconciler/sandbox.sqlite3)")
    assert "Apply complete!" in r.out


def test_default_env_is_used_and_said(tmp_path: Path) -> None:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        work = project(tmp_path, config=f"default_env: staging\nenvironments:\n"
                                        f"  staging: {{url: '{sb.url}', token_env: AC_STAGING_TOKEN}}\n")
        r = reconciler(work, "plan", env={"AC_STAGING_TOKEN": TOKEN})
        assert r.code == 0, r.err
        assert r.out.splitlines()[0] == f'Target: {sb.url} (environment "staging"; default_env in reconciler.yaml)'


def test_explicit_env_beats_ambient_url_and_says_so(tmp_path: Path) -> None:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        work = project(tmp_path, config=f"environments:\n  staging: {{url: '{sb.url}', token_env: AC_STAGING_TOKEN}}\n")
        r = reconciler(work, "plan", "--env", "staging",
                       env={"AC_API_URL": "https://other.api-us1.com", "AC_API_TOKEN": "other",
                            "AC_STAGING_TOKEN": TOKEN})
        assert r.code == 0, r.err
        first = r.out.splitlines()[0]
        assert first == f'Target: {sb.url} (environment "staging"; $AC_API_URL ignored: --env staging is explicit)'
        assert sb.traffic.total > 0


def test_one_account_commands_refuse_two_envs(tmp_path: Path) -> None:
    work = project(tmp_path, config=ENVIRONMENTS)
    for args in (["apply", "--auto-approve"], ["export"]):
        r = reconciler(work, *args, "--env", "production", "--env", "staging",
                       env={"AC_STAGING_TOKEN": "x", "AC_PROD_TOKEN": "y"})
        assert r.code == 1
        assert r.lines == [f"Error: {args[0]} works on one account, but --env was given 2 times "
                           "(production, staging)"]


def test_sandbox_with_env_is_a_conflict(tmp_path: Path) -> None:
    work = project(tmp_path, config=ENVIRONMENTS)
    r = reconciler(work, "plan", "--sandbox", "--env", "staging", env={"AC_STAGING_TOKEN": "x"})
    assert r.code == 1
    assert r.lines == ["Error: --sandbox cannot be combined with --url or --env: pick one target"]


def test_unknown_default_env_is_a_file_error(tmp_path: Path) -> None:
    work = project(tmp_path, config="default_env: prod\n" + ENVIRONMENTS)
    r = reconciler(work, "validate")
    assert r.code == 1
    assert r.lines == ["reconciler.yaml:1:14: default_env 'prod' is not one of the environments "
                       "(defined: staging, production)"]


# ---------------------------------------------------------------------------------------------
# Acceptance 5: plan files are written safely, or not at all


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        yield sb.url


def _bad_targets(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    out = tmp_path / "outs"
    out.mkdir()
    (out / "a-directory").mkdir()
    real = out / "real.json"
    real.write_text("keep me\n")
    (out / "link.json").symlink_to(real)
    os.mkfifo(out / "fifo")
    cases = {
        "directory": (out / "a-directory", "is a directory; give a file name"),
        "symlink": (out / "link.json", "is a symbolic link; not replaced (write to the file it points at)"),
        "fifo": (out / "fifo", "is not a regular file (a device, FIFO or socket); not replaced (use - to print to standard output)"),
        "missing directory": (out / "nope" / "plan.json", f"the directory {out / 'nope'}/ does not exist"),
    }
    if os.geteuid() == 0:  # a device node of our own (never /dev/null itself)
        dev = out / "null-device"
        os.mknod(dev, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        cases["device"] = (dev, "is not a regular file (a device, FIFO or socket); not replaced (use - to print to standard output)")
    return cases


def test_plan_out_refuses_unsafe_paths_before_contacting_the_account(tmp_path: Path) -> None:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        work = project(tmp_path)
        env = {"AC_API_URL": sb.url, "AC_API_TOKEN": TOKEN}
        for name, (path, message) in _bad_targets(tmp_path).items():
            kind = os.lstat(path).st_mode if os.path.lexists(path) else None
            r = reconciler(work, "plan", "--out", str(path), env=env)
            assert r.code == 1, name
            assert r.lines == [f"Error: {path}: {message}"], name
            if kind is not None:
                assert os.lstat(path).st_mode == kind, f"{name} was replaced"
        assert (tmp_path / "outs" / "real.json").read_text() == "keep me\n"
        assert sb.traffic.total == 0
        assert not list((tmp_path / "outs").glob(".*.tmp")), "no temporary file is left behind"


def test_plan_out_dash_prints_the_plan_file(tmp_path: Path, sandbox_url: str) -> None:
    import json

    work = project(tmp_path)
    r = reconciler(work, "plan", "--out", "-", env={"AC_API_URL": sandbox_url, "AC_API_TOKEN": TOKEN})
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["format_version"] == 1
    assert "Plan: 1 to add" in r.err
    assert not (work / "-").exists()


def test_a_plan_with_errors_is_not_saved(tmp_path: Path, sandbox_url: str) -> None:
    work = project(tmp_path)
    env = {"AC_API_URL": sandbox_url, "AC_API_TOKEN": TOKEN}
    assert reconciler(work, "apply", "--auto-approve", env=env).code == 0
    # NA301: a field's type cannot change
    (work / "schemas" / "orders.yaml").write_text(SEED.replace("type: textarea", "type: text"), encoding="utf-8")
    r = reconciler(work, "plan", "--out", "na.json", env=env)
    assert r.code == 1
    assert "NA301" in r.out
    assert r.lines[-1] == ("Error: the plan was not saved to na.json: it has 1 error (NA codes above) that the "
                           "API would refuse; fix the files and plan again")
    assert "Apply exactly this plan" not in r.err
    assert not (work / "na.json").exists()


def test_saved_plan_for_another_account_suggests_the_env(tmp_path: Path) -> None:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        work = project(tmp_path, config=f"environments:\n  staging: {{url: '{sb.url}', token_env: AC_STAGING_TOKEN}}\n")
        r = reconciler(work, "plan", "--env", "staging", "--out", "plan.json", env={"AC_STAGING_TOKEN": TOKEN})
        assert r.code == 0, r.err
        r = reconciler(work, "apply", "plan.json", "--sandbox")
        assert r.code == 1
        assert r.lines[-1] == f"Error: plan.json was made for {sb.url}, not for the local sandbox: pass --env staging"


def test_target_that_matches_nothing_is_an_error(tmp_path: Path, sandbox_url: str) -> None:
    work = project(tmp_path)
    env = {"AC_API_URL": sandbox_url, "AC_API_TOKEN": TOKEN}
    r = reconciler(work, "plan", "--target", "online-ordr", env=env)
    assert r.code == 1
    assert r.lines[-1] == "Error: --target online-ordr matches no schema in the files or the account"
    r = reconciler(work, "plan", "--exclude", "nothing-*", env=env)
    assert r.code == 1
    assert r.lines[-1] == "Error: --exclude nothing-* matches no schema in the files or the account"
    assert reconciler(work, "plan", "--target", "online-*", env=env).code == 0


# ---------------------------------------------------------------------------------------------
# CLI ergonomics


def test_global_options_after_the_subcommand(tmp_path: Path) -> None:
    work = project(tmp_path)
    shutil.move(work / "schemas", work / "defs")
    before = reconciler(work, "--dir", "defs", "--no-color", "validate")
    after = reconciler(work, "validate", "--dir", "defs", "--no-color")
    assert before.code == after.code == 0
    assert before.out == after.out == "1 schema in defs/ valid.\n"
    r = reconciler(work, "--dir", "defs", "validate", "--dir", "other")
    assert r.code == 1
    assert "--dir was given twice (defs and other)" in r.err


def test_bare_reconciler_prints_help_and_exits_0(tmp_path: Path) -> None:
    r = reconciler(tmp_path)
    assert r.code == 0
    assert r.out.startswith("Usage: reconciler")
    assert r.err == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sandbox_serve_prints_the_real_port_and_logs_requests(tmp_path: Path) -> None:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "serve", "--port", "0", "--token",
                             TOKEN, "--log-requests"], stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline() if proc.stderr else ""
        assert first.startswith("Sandbox listening on http://127.0.0.1:")
        url = first.split()[3]
        port = int(url.split(":")[2].split("/")[0])
        assert port != 0
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.get(f"{url}/customObjects/schemas", headers={"Api-Token": TOKEN})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert r.status_code == 200
        line = proc.stderr.readline() if proc.stderr else ""
        assert line.startswith("GET /api/3/customObjects/schemas 200 ")
        assert line.rstrip().endswith(" ms")
        assert TOKEN not in line
    finally:
        proc.terminate()
        proc.wait(10)


def test_sandbox_serve_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = reconciler(tmp_path, "sandbox", "serve", "--port", str(port), timeout=20)
    assert r.code == 1
    assert r.lines == [f"Error: port {port} on 127.0.0.1 is already in use: pick another with --port "
                       "(--port 0 picks a free one)"]


def test_export_of_an_empty_account_says_so(tmp_path: Path) -> None:
    work = project(tmp_path, schemas=False)
    r = reconciler(work, "export", "--sandbox")
    assert r.code == 0, r.err
    assert r.out == "The account has no schemas: nothing to export.\n"
    assert not (work / "schemas").exists()


# ---------------------------------------------------------------------------------------------
# Hints, waits, deadline and rate through the real CLI


def test_a_refused_token_names_the_variable_it_came_from(tmp_path: Path) -> None:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        work = project(tmp_path, config=f"environments:\n  staging: {{url: '{sb.url}', token_env: AC_STAGING_TOKEN}}\n")
        r = reconciler(work, "plan", "--env", "staging", env={"AC_STAGING_TOKEN": "tok-WRONG-but-long"})
    assert r.code == 1
    assert len(r.lines) == 1
    assert "$AC_STAGING_TOKEN" in r.lines[0] and "refused the token" in r.lines[0]
    assert "tok-WRONG" not in r.err


def test_a_404_on_the_schema_list_suggests_the_url(tmp_path: Path) -> None:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        work = project(tmp_path)
        r = reconciler(work, "plan", env={"AC_API_URL": sb.url + "/wrong/prefix", "AC_API_TOKEN": TOKEN})
    assert r.code == 1
    assert len(r.lines) == 1
    assert "no Custom Objects API at" in r.lines[0] and "check the account URL" in r.lines[0]


def test_timeout_ends_the_command_in_time_with_one_line(tmp_path: Path) -> None:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0, faults="latency=5s")) as sb:
        work = project(tmp_path)
        started = time.monotonic()
        r = reconciler(work, "plan", "--timeout", "1", env={"AC_API_URL": sb.url, "AC_API_TOKEN": TOKEN})
        took = time.monotonic() - started
    assert r.code == 1
    assert took < 4, f"{took:.1f} s"
    assert r.lines[-1].startswith("Error: gave up: the 1 s --timeout was reached during GET /customObjects/schemas")


def test_a_long_wait_is_announced_on_stderr(tmp_path: Path) -> None:
    from tests.test_client_hostile import FakeApi, response

    calls = []

    def handler(request: object) -> bytes:
        calls.append(request)
        if len(calls) == 1:
            return response(429, {"message": "Too Many Requests"}, headers={"Retry-After": "3"})
        return response(200, {"schemas": [], "meta": {"total": 0}})

    with FakeApi(handler) as api:
        work = project(tmp_path)
        r = reconciler(work, "plan", "--detailed-exitcode", env={"AC_API_URL": api.url, "AC_API_TOKEN": TOKEN})
    assert r.code == 2, r.err
    waits = [line for line in r.lines if line.startswith("account asked to wait")]
    assert len(waits) == 1 and re.search(r"retrying at \d\d:\d\d:\d\d$", waits[0]), r.err


def test_apply_converges_when_the_account_shares_its_budget(tmp_path: Path) -> None:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=1, faults="429=0.2", fault_seed=3)) as sb:
        work = project(tmp_path)
        env = {"AC_API_URL": sb.url, "AC_API_TOKEN": TOKEN}
        r = reconciler(work, "apply", "--auto-approve", "--rate", "1", env=env, timeout=120)
        assert r.code == 0, r.out + r.err
        assert "Apply complete!" in r.out
        assert reconciler(work, "plan", "--detailed-exitcode", env=env, timeout=120).code == 0


def test_fmt_check_diff_prints_a_unified_diff_and_writes_nothing(tmp_path: Path) -> None:
    work = project(tmp_path)
    path = work / "schemas" / "orders.yaml"
    path.write_text(SEED.replace("kind: CustomObjectSchema\nslug: online-order\n",
                                 "slug: online-order\nkind: CustomObjectSchema\n"), encoding="utf-8")
    before = path.read_bytes()
    r = reconciler(work, "fmt", "--check", "--diff")
    assert r.code == 1
    assert "--- a/schemas/orders.yaml" in r.out and "+++ b/schemas/orders.yaml" in r.out
    moved = {line[1:] for line in r.out.splitlines() if line[:1] in "+-" and line[1:2] not in "+-"}
    assert moved & {"kind: CustomObjectSchema", "slug: online-order"}, r.out
    assert r.out.rstrip().endswith("would reformat schemas/orders.yaml")
    assert path.read_bytes() == before
    assert reconciler(work, "fmt").code == 0
    assert reconciler(work, "fmt", "--check").code == 0


def test_fmt_refuses_an_invalid_file_and_writes_nothing(tmp_path: Path) -> None:
    work = project(tmp_path)
    path = work / "schemas" / "orders.yaml"
    path.write_text(SEED.replace("kind: CustomObjectSchema\nslug: online-order\n",
                                 "slug: online-order\nkind: CustomObjectSchema\n")
                    .replace("type: number", "type: numbr"), encoding="utf-8")
    before = path.read_bytes()
    r = reconciler(work, "fmt")
    assert r.code == 1
    assert "unknown field type 'numbr'" in r.err
    assert path.read_bytes() == before


def test_export_elsewhere_leaves_no_stray_files(tmp_path: Path) -> None:
    work = project(tmp_path)
    assert reconciler(work, "apply", "--sandbox", "--auto-approve").code == 0
    r = reconciler(work, "export", "--sandbox", "--out-dir", str(tmp_path / "exported"))
    assert r.code == 0, r.err
    assert (tmp_path / "exported" / "online-order.yaml").exists()
    assert not (work / "json-schema").exists()
    assert not (tmp_path / "json-schema").exists()

"""Many accounts: `--env` repeated and `--all-envs` for plan and drift, three sandboxes over HTTP
(issue 6, acceptance 2)."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.cli import run
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import running_sandbox

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("dev", "staging", "production")


@dataclass
class Fleet:
    sandboxes: dict[str, Any]
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = run(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Fleet]:
    """Three sandboxes (each its own token and rate limit) as environments of one project."""
    with contextlib.ExitStack() as stack:
        boxes = {name: stack.enter_context(running_sandbox(SandboxSettings(token=f"tok-{name}", rate_limit=0)))
                 for name in NAMES}
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("AC_API_URL", raising=False)
        monkeypatch.delenv("AC_API_TOKEN", raising=False)
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        lines = ["environments:"]
        for name, sb in boxes.items():
            lines.append(f"  {name}: {{url: '{sb.url}', token_env: TOKEN_{name.upper()}}}")
            monkeypatch.setenv(f"TOKEN_{name.upper()}", f"tok-{name}")
        (tmp_path / "reconciler.yaml").write_text("\n".join(lines) + "\n")
        (tmp_path / "schemas").mkdir()
        shutil.copy(ROOT / "schemas" / "orders.yaml", tmp_path / "schemas" / "orders.yaml")
        f = Fleet(boxes, capsys)
        for name in NAMES:
            code, out, err = f("apply", "--env", name, "--auto-approve")
            assert code == 0, out + err
        yield f


def drift_one(sb: Any, token: str) -> None:
    h = {"Api-Token": token}
    (schema,) = httpx.get(f"{sb.url}/api/3/customObjects/schemas", headers=h).json()["schemas"]
    r = httpx.put(f"{sb.url}/api/3/customObjects/schemas/{schema['id']}", headers=h,
                  json={"schema": {"description": "Changed by hand in staging"}})
    assert r.status_code == 200


def test_all_envs_drift_one_section_each_exit_2(fleet: Fleet) -> None:
    code, out, err = fleet("--no-color", "drift", "--all-envs")
    assert code == 0, out + err
    drift_one(fleet.sandboxes["staging"], "tok-staging")
    for sb in fleet.sandboxes.values():
        sb.traffic.clear()

    code, out, err = fleet("--no-color", "drift", "--all-envs")
    assert code == 2, out + err
    heads = [line for line in out.splitlines() if line.startswith("=== Environment ")]
    assert heads == [f'=== Environment "{n}" ===' for n in NAMES]
    sections = out.split("=== Environment ")[1:]
    assert "No drift" in sections[0] and "No drift" in sections[2]
    assert 'description differs: account "Changed by hand in staging"' in sections[1]
    for name, sb in fleet.sandboxes.items():
        assert sb.url.removeprefix("http://") in dict(zip(NAMES, sections, strict=True))[name]
        assert [e.method for e in sb.traffic.log] == ["GET"], name  # its own client, read-only
        assert sb.traffic.writes() == []

    code, out, _ = fleet("drift", "--all-envs", "--format", "json")
    assert code == 2
    data = json.loads(out)["environments"]
    assert list(data) == list(NAMES)
    assert [data[n]["drift"]["in_sync"] for n in NAMES] == [True, False, True]

    code, out, _ = fleet("drift", "--all-envs", "--format", "markdown")
    assert code == 2
    assert [line.split(" · ")[0] for line in out.splitlines() if line.startswith("## Environment")] == [
        f"## Environment `{n}`" for n in NAMES]

    # --env repeated: only those; the most severe code wins
    code, out, _ = fleet("--no-color", "drift", "--env", "dev", "--env", "production")
    assert code == 0 and out.count("=== Environment ") == 2 and "staging" not in out
    code, out, _ = fleet("--no-color", "drift", "--env", "dev", "--env", "staging")
    assert code == 2


def test_all_envs_plan(fleet: Fleet) -> None:
    drift_one(fleet.sandboxes["staging"], "tok-staging")
    code, out, err = fleet("--no-color", "plan", "--all-envs", "--detailed-exitcode")
    assert code == 2, out + err
    sections = dict(zip(NAMES, out.split("=== Environment ")[1:], strict=True))
    assert "No changes." in sections["dev"] and "No changes." in sections["production"]
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in sections["staging"]
    code, out, err = fleet("plan", "--all-envs")
    assert code == 0, "without --detailed-exitcode changes are not an error"
    code, _, err = fleet("plan", "--all-envs", "--out", "plan.json")
    assert code == 1 and "--out" in err


def test_one_environment_failing_is_reported_and_wins(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKEN_DEV")
    code, out, err = fleet("--no-color", "drift", "--all-envs")
    assert code == 1
    assert 'Error in environment "dev"' in err and "TOKEN_DEV" in err
    assert out.count("No drift") == 2, "the other environments still ran"

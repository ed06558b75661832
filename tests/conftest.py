"""Shared fixtures: a sandbox served over real HTTP, and the CLI run in-process against it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cli import run
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import PROFILES, running_sandbox

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tok-SECRET-e2e-7f3a91"


#: Variables of the machine that runs the tests which would change what the CLI does: CI runners set
#: ``CI`` (no implicit sandbox) and ``GITHUB_STEP_SUMMARY``; a developer may have an account set.
AMBIENT = ("CI", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "AC_API_URL", "AC_API_TOKEN", "NO_COLOR",
           "RECONCILER_DEBUG")


@pytest.fixture(autouse=True)
def _neutral_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the same environment, whatever machine (or CI runner) runs it."""
    for name in AMBIENT:
        monkeypatch.delenv(name, raising=False)


def profile_settings(profile: str, **overrides: object) -> SandboxSettings:
    """A sandbox profile for tests: rate limit off, our token, and under ``pessimistic`` the waits a
    test cannot afford shortened (a 1 s Retry-After, no list lag) and the account empty (no app
    schema seeded); every other pessimistic quirk stays on."""
    extra: dict[str, object] = {}
    if profile == "pessimistic":
        extra = {"retry_after_s": 1.0, "schema_list_lag_s": 0.0, "list_visibility_delay_s": 0.0,
                 "seed_unknown_type_schema": False}
    return SandboxSettings.from_profile(profile, **{"token": TOKEN, "rate_limit": 0, **extra, **overrides})


def honours_required(sandbox: object) -> bool:
    """Whether the sandbox's profile honours ``required`` (the pessimistic one ignores it, as the real
    API may: reconciler then detects it and stops planning it)."""
    return bool(sandbox.settings.required_honoured)  # type: ignore[attr-defined]


@pytest.fixture(params=PROFILES)
def sandbox(request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh in-memory sandbox on a free loopback port, rate limit off, our token; every test that
    uses it runs under both quirk profiles (documented and pessimistic, see reconciler.sandbox.quirks)."""
    with running_sandbox(profile_settings(request.param)) as sb:
        yield sb


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cli:
    """Runs ``reconciler`` in-process, in a project folder, against one sandbox."""

    def __init__(self, workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.workdir = workdir
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str) -> Result:
        self.capsys.readouterr()
        code = run(list(args))
        out, err = self.capsys.readouterr()
        return Result(code, out, err)

    @property
    def schemas(self) -> Path:
        return self.workdir / "schemas"

    def write(self, name: str, text: str) -> Path:
        path = self.schemas / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def cli(tmp_path: Path, sandbox: object, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI in an empty project folder, its target the ``sandbox`` fixture over HTTP."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AC_API_URL", sandbox.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("AC_API_TOKEN", TOKEN)
    monkeypatch.delenv("NO_COLOR", raising=False)
    (tmp_path / "schemas").mkdir()
    return Cli(tmp_path, capsys, monkeypatch)


@pytest.fixture
def seed_files(cli: Cli) -> Cli:
    """The project with the shipped ``schemas/orders.yaml``."""
    shutil.copy(ROOT / "schemas" / "orders.yaml", cli.schemas / "orders.yaml")
    return cli

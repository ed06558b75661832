"""`reconciler envs` and `reconciler init` (issue 17): the environments as a CI matrix consumes them
(never a token), and a repository laid out from nothing that validates, plans and applies; init
never overwrites and a second run changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.cli import run
from tests.conftest import ROOT

SECRET = "tok-VERY-SECRET-9b2c"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AC_PROD_TOKEN", SECRET)
    monkeypatch.setenv("AC_API_TOKEN", SECRET)
    (tmp_path / "reconciler.yaml").write_text(
        "environments:\n"
        "  staging: {url: 'https://acme-staging.api-us1.com'}\n"
        "  production: {url: 'https://acme.api-us1.com', token_env: AC_PROD_TOKEN}\n"
        "default_env: production\n", encoding="utf-8")
    return tmp_path


def test_envs_json_is_a_matrix_and_never_a_token(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "envs", "--json")
    assert code == 0, err
    assert json.loads(out) == [
        {"name": "staging", "url": "https://acme-staging.api-us1.com", "token_env": "AC_API_TOKEN"},
        {"name": "production", "url": "https://acme.api-us1.com", "token_env": "AC_PROD_TOKEN"},
    ]
    assert len(out.splitlines()) == 1, "one line: fits $GITHUB_OUTPUT as matrix=<json>"
    assert SECRET not in out + err


def test_envs_text_marks_the_default(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "envs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["staging", "https://acme-staging.api-us1.com", "$AC_API_TOKEN"]
    assert lines[1].split() == ["production", "*", "https://acme.api-us1.com", "$AC_PROD_TOKEN"]
    assert "default_env" in out and SECRET not in out


def test_envs_without_environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "envs", "--json")[1] == "[]\n"
    code, out, _ = cli(capsys, "envs")
    assert code == 0 and out.startswith("No environments")


def test_envs_bad_config_is_one_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "reconciler.yaml").write_text("environments:\n  x: {url: ftp://nope}\n", encoding="utf-8")
    code, out, err = cli(capsys, "envs", "--json")
    assert code == 1 and out == "" and "must start with https://" in err


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(root)): (p.read_text(encoding="utf-8"), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and ".reconciler" not in p.parts}


def test_init_then_validate_plan_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "init", "repo")
    assert code == 0, err
    repo = tmp_path / "repo"
    assert set(_tree(repo)) == {"reconciler.yaml", "schemas/orders.yaml", "json-schema/schema.json",
                                "json-schema/config.json", ".gitignore"}
    assert (repo / "schemas" / "orders.yaml").read_text() == (ROOT / "schemas" / "orders.yaml").read_text()
    assert (repo / ".gitignore").read_text() == ".reconciler/\n"
    config = (repo / "reconciler.yaml").read_text()
    assert config.startswith("# yaml-language-server: $schema=json-schema/config.json\n")
    assert "#   production:" in config and "token_env: AC_PROD_TOKEN" in config

    monkeypatch.chdir(repo)
    assert cli(capsys, "validate")[0] == 0
    code, out, _ = cli(capsys, "plan", "--sandbox")
    assert code == 0 and "Plan: 1 to add" in out
    code, out, _ = cli(capsys, "apply", "--sandbox", "--auto-approve")
    assert code == 0 and "Apply complete!" in out
    code, out, _ = cli(capsys, "plan", "--sandbox", "--detailed-exitcode")
    assert code == 0 and "No changes" in out
    assert cli(capsys, "envs", "--json")[1] == "[]\n"
    assert cli(capsys, "fmt", "--check")[0] == 0, "init writes files that fmt leaves alone"

    before = _tree(repo)
    code, out, _ = cli(capsys, "init")
    assert code == 0 and out.startswith("Nothing to do")
    assert _tree(repo) == before, "the second run changes nothing (not even a modification time)"


@pytest.mark.parametrize(("ci", "files"), [
    ("github", {f".github/workflows/{n}": ROOT / "examples" / "github" / n for n in (
        "reconciler-plan.yml", "reconciler-apply.yml", "reconciler-drift.yml", "reconciler-reviewed.yml")}),
    ("gitlab", {".gitlab-ci.yml": ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"}),
])
def test_init_ci_copies_the_examples(ci: str, files: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "init", str(tmp_path), "--ci", ci)
    assert code == 0, err
    for rel, source in files.items():
        assert (tmp_path / rel).read_text() == source.read_text()
    other = ".gitlab-ci.yml" if ci == "github" else ".github"
    assert not (tmp_path / other).exists()


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "reconciler.yaml").write_text("schemas_dir: mine\n")
    code, out, err = cli(capsys, "init", str(tmp_path), "--ci", "github")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "reconciler.yaml exists with other content" in err and "nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reconciler.yaml"]
    assert (tmp_path / "reconciler.yaml").read_text() == "schemas_dir: mine\n"


def test_init_appends_to_an_existing_gitignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".gitignore").write_text("node_modules")
    assert cli(capsys, "init", str(tmp_path))[0] == 0
    assert (tmp_path / ".gitignore").read_text() == "node_modules\n.reconciler/\n"
    assert cli(capsys, "init", str(tmp_path))[1].startswith("Nothing to do")


def test_init_into_a_file_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    code, _, err = cli(capsys, "init", str(tmp_path / "f"))
    assert code == 1 and err.count("\n") == 1


def test_templates_are_the_repository_files() -> None:
    """One copy of each: the package's templates are links to schemas/ and examples/."""
    templates = ROOT / "reconciler" / "templates"
    assert (templates / "orders.yaml").resolve() == (ROOT / "schemas" / "orders.yaml").resolve()
    assert (templates / "gitlab-ci.yml").resolve() == (ROOT / "examples" / "gitlab" / ".gitlab-ci.yml").resolve()
    for wf in (ROOT / "examples" / "github").glob("*.yml"):
        assert (templates / "github" / wf.name).resolve() == wf.resolve()

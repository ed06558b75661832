"""Target resolution: flags > AC_API_URL/AC_API_TOKEN > reconciler.yaml environment > embedded sandbox."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from reconciler.client import Client, normalize_base_url
from reconciler.config import SANDBOX_DB, Target, resolve_target
from reconciler.errors import ConfigError

TOKEN = "tok-SECRET-123"


@dataclass
class _Env:
    url: str
    token_env: str | None = None
    protect: list[str] = field(default_factory=list)


@dataclass
class _Project:
    environments: dict[str, Any]


def project() -> Any:
    """The real ProjectConfig when it exists, else a stand-in with the same attributes."""
    envs = {
        "production": {"url": "https://acme.api-us1.com", "token_env": "AC_PROD_TOKEN",
                       "protect": ["orders", "orders.order-number"]},
        "staging": {"url": "https://acme-staging.api-us1.com/api/3/", "token_env": "AC_STAGING_TOKEN"},
        "dev": {"url": "https://acme-dev.api-us1.com"},
    }
    try:
        from reconciler.project import ProjectConfig
    except ImportError:
        return _Project({k: _Env(**v) for k, v in envs.items()})
    return ProjectConfig.model_validate({"environments": envs})


def resolve(tmp_path: Path, *, url: str | None = None, token: str | None = None, env: str | None = None,
            environ: dict[str, str] | None = None, with_project: bool = True) -> Target:
    return resolve_target(url=url, token=token, env=env, project=project() if with_project else None,
                          environ=environ or {}, workdir=tmp_path)


ALL_ENV = {"AC_API_URL": "https://from-env.api-us1.com", "AC_API_TOKEN": "env-tok",
           "AC_PROD_TOKEN": "prod-tok", "AC_STAGING_TOKEN": "staging-tok"}


def test_explicit_url_beats_the_ambient_one_and_says_so(tmp_path: Path) -> None:
    t = resolve(tmp_path, url="https://flag.api-us1.com", token=TOKEN, environ=ALL_ENV)
    assert t.url == "https://flag.api-us1.com/api/3"
    assert t.token.get_secret_value() == TOKEN
    assert not t.is_sandbox
    assert t.describe() == "Target: https://flag.api-us1.com (from --url; $AC_API_URL ignored: --url is explicit)"


def test_url_and_env_naming_different_accounts_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="name different accounts"):
        resolve(tmp_path, url="https://flag.api-us1.com", env="production", environ=ALL_ENV)
    same = resolve(tmp_path, url="https://acme.api-us1.com/api/3/", env="production", environ=ALL_ENV)
    assert (same.name, same.token.get_secret_value()) == ("production", "prod-tok")


def test_explicit_env_beats_ambient_variables(tmp_path: Path) -> None:
    t = resolve(tmp_path, env="production", environ=ALL_ENV)
    assert t.url == "https://acme.api-us1.com/api/3"
    assert t.token.get_secret_value() == "prod-tok"
    assert t.describe() == ('Target: https://acme.api-us1.com (environment "production"; '
                            "$AC_API_URL ignored: --env production is explicit)")


def test_ambient_variables_beat_default_env(tmp_path: Path) -> None:
    from reconciler.project import ProjectConfig

    proj = ProjectConfig.model_validate({"default_env": "staging", "environments": {
        "staging": {"url": "https://acme-staging.api-us1.com", "token_env": "AC_STAGING_TOKEN"}}})
    t = resolve_target(url=None, env=None, project=proj, environ=ALL_ENV, workdir=tmp_path)
    assert t.url == "https://from-env.api-us1.com/api/3"
    d = resolve_target(url=None, env=None, project=proj, environ={"AC_STAGING_TOKEN": "s"}, workdir=tmp_path)
    assert (d.name, d.note) == ("staging", "default_env in reconciler.yaml")


def test_environments_without_a_choice_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"defines environments \(production, staging, dev\) but none was chosen"):
        resolve(tmp_path, environ={})


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_ci_never_falls_back_to_the_sandbox(tmp_path: Path, ci: str) -> None:
    with pytest.raises(ConfigError, match="CI is set and no account is configured"):
        resolve(tmp_path, environ={"CI": ci}, with_project=False)
    assert resolve(tmp_path, environ={"CI": "false"}, with_project=False).is_sandbox
    assert resolve_target(url=None, env=None, project=None, environ={"CI": ci}, workdir=tmp_path,
                          sandbox=True).is_sandbox


def test_target_sandbox_in_the_project_file(tmp_path: Path) -> None:
    from reconciler.project import ProjectConfig

    proj = ProjectConfig.model_validate({"target": "sandbox"})
    t = resolve_target(url=None, env=None, project=proj, environ={"CI": "true"}, workdir=tmp_path)
    assert t.is_sandbox


def test_rate_from_the_flag_beats_the_environment(tmp_path: Path) -> None:
    from reconciler.project import ProjectConfig

    proj = ProjectConfig.model_validate({"environments": {
        "shared": {"url": "https://acme.api-us1.com", "token_env": "T", "rate_limit": 2}}})
    t = resolve_target(url=None, env="shared", project=proj, environ={"T": "x"}, workdir=tmp_path)
    assert t.client_defaults == {"rate": 2}
    f = resolve_target(url=None, env="shared", project=proj, environ={"T": "x"}, workdir=tmp_path, rate=1)
    assert f.client_defaults == {"rate": 1}


def test_flag_url_with_env_token(tmp_path: Path) -> None:
    t = resolve(tmp_path, url="https://flag.api-us1.com/api/3", environ={"AC_API_TOKEN": "env-tok"})
    assert (t.url, t.token.get_secret_value()) == ("https://flag.api-us1.com/api/3", "env-tok")


def test_reconciler_yaml_environment(tmp_path: Path) -> None:
    t = resolve(tmp_path, env="production", environ={"AC_PROD_TOKEN": "prod-tok"})
    assert t.url == "https://acme.api-us1.com/api/3"
    assert t.token.get_secret_value() == "prod-tok"
    assert t.protect == frozenset({"orders", "orders.order-number"})
    assert t.describe() == 'Target: https://acme.api-us1.com (environment "production")'
    s = resolve(tmp_path, env="staging", environ={"AC_STAGING_TOKEN": "staging-tok"})
    assert s.url == "https://acme-staging.api-us1.com/api/3"


def test_env_var_url_matching_an_environment_keeps_its_protect_list(tmp_path: Path) -> None:
    t = resolve(tmp_path, environ={"AC_API_URL": "https://acme.api-us1.com/api/3", "AC_API_TOKEN": "x"})
    assert t.protect == frozenset({"orders", "orders.order-number"})
    assert t.name == "production"


def test_missing_token_variable_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(tmp_path, env="production", environ={"AC_STAGING_TOKEN": "staging-tok"})
    message = str(info.value)
    assert "AC_PROD_TOKEN" in message and "\n" not in message
    assert "staging-tok" not in message


def test_environment_without_token_env_uses_ac_api_token(tmp_path: Path) -> None:
    t = resolve(tmp_path, env="dev", environ={"AC_API_TOKEN": "dev-tok"})
    assert (t.url, t.token.get_secret_value(), t.name) == ("https://acme-dev.api-us1.com/api/3", "dev-tok", "dev")
    with pytest.raises(ConfigError, match="AC_API_TOKEN"):
        resolve(tmp_path, env="dev", environ={})


def test_unknown_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r'unknown environment "prod".*production, staging'):
        resolve(tmp_path, env="prod", environ={})


def test_url_without_token_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AC_API_TOKEN"):
        resolve(tmp_path, environ={"AC_API_URL": "https://acme.api-us1.com"})


def test_token_without_url_is_an_error_not_a_silent_sandbox(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AC_API_URL"):
        resolve(tmp_path, environ={"AC_API_TOKEN": TOKEN})


def test_fallback_is_the_embedded_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    t = resolve(tmp_path, environ={}, with_project=False)
    assert t.is_sandbox and t.transport_factory is not None
    assert t.describe() == f"Target: local sandbox ({SANDBOX_DB})"
    assert t.describe() == "Target: local sandbox (.reconciler/sandbox.sqlite3)"


@pytest.mark.parametrize("url", ["http://acme.api-us1.com", "http://10.0.0.5:8080/api/3"])
def test_plain_http_refused_for_remote_hosts(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="http://"):
        resolve(tmp_path, url=url, token=TOKEN)
    with pytest.raises(ConfigError):
        Client(url, TOKEN)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://localhost:1/api/3", "http://[::1]:9"])
def test_plain_http_allowed_for_loopback(tmp_path: Path, url: str) -> None:
    t = resolve(tmp_path, url=url, token=TOKEN)
    assert t.url.startswith("http://") and t.url.endswith("/api/3")


def test_plain_http_allowed_with_a_custom_transport() -> None:
    import httpx

    c = Client("http://sandbox.local", TOKEN, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert c.base_url == "http://sandbox.local/api/3"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://acct.api-us1.com", "https://acct.api-us1.com/api/3"),
        ("https://acct.api-us1.com/", "https://acct.api-us1.com/api/3"),
        ("https://acct.api-us1.com/api/3", "https://acct.api-us1.com/api/3"),
        ("  https://acct.api-us1.com/api/3/ ", "https://acct.api-us1.com/api/3"),
    ],
)
def test_base_url_normalised(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize("bad", ["", "acct.api-us1.com", "ftp://acct.api-us1.com",
                                 "https://user:pw@acct.api-us1.com", "https://acct.api-us1.com/?x=1"])
def test_bad_urls_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        normalize_base_url(bad)


def test_secret_and_target_never_show_the_token(tmp_path: Path) -> None:
    s = SecretStr(TOKEN)
    assert TOKEN not in repr(s) and TOKEN not in str(s) and TOKEN not in f"{s}"
    t = resolve(tmp_path, url="https://acme.api-us1.com", token=TOKEN)
    for text in (repr(t), str(t), t.describe(), repr(t.client()), str(vars(t.client()).get("stats"))):
        assert TOKEN not in text


def test_embedded_sandbox_client_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("reconciler.sandbox.app")
    monkeypatch.chdir(tmp_path)
    t = resolve(tmp_path, environ={}, with_project=False)

    async def go() -> int:
        async with t.client() as c:
            assert c.limiter is None  # in process: no pacing (see config.py)
            return len(await c.list_schemas())

    assert asyncio.run(go()) == 0
    assert (tmp_path / SANDBOX_DB).exists()

"""Which account a command talks to.

Explicit beats ambient, and nothing is chosen by accident (DESIGN §4):

1. ``--sandbox`` (the embedded sandbox, asked for by name);
2. ``--url`` and/or ``--env NAME`` (flags: explicit);
3. ``AC_API_URL`` / ``AC_API_TOKEN`` (environment variables: ambient);
4. ``reconciler.yaml``: ``target: sandbox``, or ``default_env``;
5. nothing configured at all: the embedded sandbox, but only outside CI.

Everything else is a :class:`ConfigError` that says what to set: ``environments`` defined but none
chosen (and no ``default_env``), ``CI`` set with no target, a token without a URL or the reverse,
``--url`` and ``--env`` naming different accounts. An ambient ``AC_API_URL`` that an explicit choice
overrides is not an error but is said on the target line (``Target.note``).

Tokens are never command-line flags (they would land in shell history and process lists): they come
from ``AC_API_TOKEN`` or from the variable an environment names in ``token_env``. The ``token``
keyword of :func:`resolve_target` exists for Python callers only.

The embedded sandbox runs IN PROCESS (``httpx.ASGITransport``), on SQLite at
``<project>/.reconciler/sandbox.sqlite3``. Its own rate limit is off there and so is the client's
limiter (``rate=None``): nothing is shared with other callers and there is no network to protect,
so the 5 req/s pacing would only make local runs slow. Over real HTTP (``sandbox serve``) the
sandbox is a normal target and the client keeps its limiter.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from reconciler.client import Client, normalize_base_url
from reconciler.errors import ConfigError

__all__ = [
    "ENV_TOKEN",
    "ENV_URL",
    "SANDBOX_DB",
    "SANDBOX_TOKEN",
    "SANDBOX_URL",
    "ConfigError",
    "Target",
    "resolve_target",
    "sandbox_transport",
]

ENV_URL = "AC_API_URL"
ENV_TOKEN = "AC_API_TOKEN"
#: Where the embedded sandbox keeps its data, relative to the project folder.
SANDBOX_DB = Path(".reconciler") / "sandbox.sqlite3"
#: The fake host the in-process sandbox answers on (no network is involved).
SANDBOX_URL = "http://sandbox.local"
#: The token the embedded sandbox is configured with (not a secret: it guards nothing).
SANDBOX_TOKEN = "sandbox-token"


class ProjectLike(Protocol):
    """The parts of ``reconciler.project.ProjectConfig`` this module reads."""

    @property
    def environments(self) -> Mapping[str, Any]: ...


TransportFactory = Callable[[], httpx.AsyncBaseTransport]


@dataclass(frozen=True)
class Target:
    """The resolved account. ``token`` is a :class:`SecretStr`; nothing here ever prints it."""

    name: str
    url: str
    token: SecretStr = field(repr=False)
    is_sandbox: bool = False
    protect: frozenset[str] = frozenset()
    transport_factory: TransportFactory | None = field(default=None, repr=False, compare=False)
    #: The sandbox database (embedded sandbox only), for ``describe``.
    db_path: Path | None = None
    #: Client keyword defaults for this target (e.g. ``rate=None`` in process).
    client_defaults: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: Said on the target line: an ambient setting that an explicit choice overrides, or why this
    #: target was chosen when no flag chose it (``default_env``).
    note: str | None = None
    #: Where the token came from (``$AC_STAGING_TOKEN``), for error hints; never the token.
    token_source: str | None = None
    #: The environment's explicit ``required:`` setting (``ignored`` / ``honoured``), if any.
    required: str | None = None

    def describe(self) -> str:
        """The first line every command prints, e.g. ``Target: https://acme.api-us1.com (environment "production")``."""
        if self.is_sandbox and self.db_path is not None:
            where = f"local sandbox ({_display_path(self.db_path)})"
            return f"Target: {where}" + (f" ({self.note})" if self.note else "")
        host = self.url.removesuffix("/api/3")
        if self.name in ("flags", "environment variables"):
            source = f"from {self._source_phrase()}"
        else:
            source = f'environment "{self.name}"'
        return f"Target: {host} ({source}{'; ' + self.note if self.note else ''})"

    def _source_phrase(self) -> str:
        return "--url" if self.name == "flags" else f"${ENV_URL}"

    def client(self, **kw: Any) -> Client:
        """A :class:`Client` for this target; ``kw`` override the defaults (``rate``, ``sleep``, …)."""
        options: dict[str, Any] = dict(self.client_defaults)
        if self.token_source is not None:
            options["token_source"] = self.token_source
        options.update(kw)
        if self.transport_factory is not None and "transport" not in options:
            options["transport"] = self.transport_factory()
        return Client(self.url, self.token, **options)

    def __repr__(self) -> str:
        return (f"Target(name={self.name!r}, url={self.url!r}, token=***, is_sandbox={self.is_sandbox}, "
                f"protect={sorted(self.protect)!r})")

    __str__ = describe


def _display_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def sandbox_transport(workdir: Path, *, token: str = SANDBOX_TOKEN) -> httpx.AsyncBaseTransport:
    """An ASGI transport into the embedded sandbox on ``<workdir>/.reconciler/sandbox.sqlite3``.

    The sandbox is imported here, lazily: FastAPI is only loaded when the sandbox is the target.
    """
    from reconciler.sandbox import SandboxSettings, create_app
    from reconciler.sandbox.store import Store

    db = workdir / SANDBOX_DB
    db.parent.mkdir(parents=True, exist_ok=True)
    app = create_app(SandboxSettings(token=token, rate_limit=0), Store(str(db)))
    return httpx.ASGITransport(app=app)


def ci_detected(environ: Mapping[str, str]) -> bool:
    """True when ``CI`` is set to anything but an empty/false value (GitHub, GitLab, CircleCI … set ``CI=true``)."""
    return (environ.get("CI") or "").strip().lower() not in ("", "0", "false", "no", "off")


def _environment(project: ProjectLike | None, env: str) -> Any:
    environments = dict(getattr(project, "environments", None) or {}) if project is not None else {}
    if env not in environments:
        known = ", ".join(sorted(environments)) or "none"
        where = "reconciler.yaml" if project is not None else "reconciler.yaml (not found)"
        raise ConfigError(f'unknown environment "{env}" in {where} (defined: {known})')
    return environments[env]


def _host(url: str) -> str:
    return url.removesuffix("/api/3")


def _env_target(project: ProjectLike | None, env: str, environ: Mapping[str, str], flag_token: str | None,
                *, url: str | None = None, note: str | None = None, rate: float | None = None) -> Target:
    """The environment ``env`` of reconciler.yaml (at ``url`` when a flag gave the same account's URL)."""
    entry = _environment(project, env)
    normalized = normalize_base_url(entry.url)
    if url is not None and normalize_base_url(url) != normalized:
        raise ConfigError(f'--url {_host(normalize_base_url(url))} and --env {env} ({_host(normalized)}) '
                          "name different accounts: pass one of them")
    token_env = getattr(entry, "token_env", None)
    if token_env:
        secret = flag_token or environ.get(token_env) or None
        if not secret:
            raise ConfigError(f'environment "{env}" reads its token from ${token_env}, which is not set')
        source = f"${token_env}"
    else:
        secret = flag_token or environ.get(ENV_TOKEN) or None
        if not secret:
            raise ConfigError(f'environment "{env}" has no token_env: set token_env in reconciler.yaml '
                              f"or set {ENV_TOKEN}")
        source = f"${ENV_TOKEN}"
    env_rate = getattr(entry, "rate_limit", None)
    return Target(name=env, url=normalize_base_url(entry.url, token=secret), token=SecretStr(secret),
                  protect=frozenset(entry.protect or ()), note=note, token_source=source,
                  required=getattr(entry, "required", None),
                  client_defaults=_rate_default(rate if rate is not None else env_rate))


def _rate_default(rate: float | None) -> dict[str, Any]:
    return {} if rate is None else {"rate": rate}


def _sandbox_target(workdir: Path, note: str | None) -> Target:
    workdir = Path(workdir).resolve()

    def factory() -> httpx.AsyncBaseTransport:
        return sandbox_transport(workdir)

    return Target(
        name="sandbox",
        url=SANDBOX_URL,
        token=SecretStr(SANDBOX_TOKEN),
        is_sandbox=True,
        transport_factory=factory,
        db_path=workdir / SANDBOX_DB,
        client_defaults={"rate": None},
        note=note,
    )


def resolve_target(
    *,
    url: str | None = None,
    env: str | None = None,
    project: ProjectLike | None = None,
    environ: Mapping[str, str] | None = None,
    workdir: Path | None = None,
    sandbox: bool = False,
    token: str | None = None,
    rate: float | None = None,
) -> Target:
    """The account to talk to; see the module docstring for the order. ``workdir`` is the project
    folder (where the embedded sandbox keeps its database; default: the current directory).
    ``environ``: where ``AC_API_URL``/``AC_API_TOKEN`` are read (default: ``os.environ``). ``rate``
    (requests/s, from ``--rate``) beats an environment's ``rate_limit``; ``None`` keeps the client's
    default (the documented 5 req/s).

    Raises :class:`ConfigError` with one line saying what to set.
    """
    environ = os.environ if environ is None else environ
    workdir = Path.cwd() if workdir is None else workdir
    ambient_url = (environ.get(ENV_URL) or "").strip() or None
    ambient_token = environ.get(ENV_TOKEN) or None
    flag_url = (url or "").strip() or None

    def ignored(chosen: str | None, why: str) -> str | None:
        """The note for an ambient AC_API_URL that an explicit choice overrides."""
        if ambient_url is None:
            return None
        if chosen is not None:
            with contextlib.suppress(ConfigError):
                if normalize_base_url(ambient_url) == normalize_base_url(chosen):
                    return None
        return f"${ENV_URL} ignored: {why}"

    if sandbox:
        if flag_url or env:
            raise ConfigError("--sandbox cannot be combined with --url or --env: pick one target")
        return _sandbox_target(workdir, ignored(None, "--sandbox is explicit"))

    if env is not None:
        return _env_target(project, env, environ, token, url=flag_url, rate=rate,
                           note=ignored(flag_url or _environment(project, env).url, f"--env {env} is explicit"))

    if flag_url or ambient_url:
        chosen = flag_url or ambient_url
        assert chosen is not None
        secret = token or ambient_token
        if not secret:
            source = "--url" if flag_url else f"${ENV_URL}"
            raise ConfigError(f"{source} is set but no token: set {ENV_TOKEN} (tokens are never taken as "
                              "command-line flags)")
        normalized = normalize_base_url(chosen, token=secret)
        name, protect, env_rate = ("flags" if flag_url else "environment variables"), frozenset[str](), None
        required = None
        for env_name, entry in (getattr(project, "environments", None) or {}).items():
            with contextlib.suppress(ConfigError):
                if normalize_base_url(entry.url) == normalized:  # the same account as an environment
                    name, protect = env_name, frozenset(entry.protect or ())
                    env_rate, required = getattr(entry, "rate_limit", None), getattr(entry, "required", None)
                    break
        note = ignored(flag_url, "--url is explicit") if flag_url else None
        return Target(name=name, url=normalized, token=SecretStr(secret), protect=protect, note=note,
                      token_source=f"${ENV_TOKEN}", required=required,
                      client_defaults=_rate_default(rate if rate is not None else env_rate))

    if token or ambient_token:
        raise ConfigError(f"a token is set but no account URL: pass --url or set {ENV_URL}")
    if getattr(project, "target", None) == "sandbox":
        return _sandbox_target(workdir, None)
    default_env = getattr(project, "default_env", None)
    if default_env:
        return _env_target(project, default_env, environ, None, rate=rate,
                           note="default_env in reconciler.yaml")
    environments = getattr(project, "environments", None) or {}
    if environments:
        raise ConfigError(f"reconciler.yaml defines environments ({', '.join(environments)}) but none was "
                          "chosen: pass --env NAME, or set default_env in reconciler.yaml")
    if ci_detected(environ):
        raise ConfigError(f"CI is set and no account is configured: pass --env NAME, set {ENV_URL} and "
                          f"{ENV_TOKEN}, or ask for the embedded sandbox with --sandbox")
    return _sandbox_target(workdir, None)

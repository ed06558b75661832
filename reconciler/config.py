"""Which account a command talks to.

Precedence (DESIGN §2): the ``--url`` flag (tokens are never flags: they would land in shell history) > ``AC_API_URL``/``AC_API_TOKEN`` environment
variables > the ``reconciler.yaml`` environment chosen by ``--env`` > the embedded sandbox.

The URL and the token are resolved independently along that order, except that a URL given by a flag
or ``AC_API_URL`` never pairs with a token found only in ``reconciler.yaml`` for another account.

The embedded sandbox runs IN PROCESS (``httpx.ASGITransport``), on SQLite at
``<workdir>/.reconciler/sandbox.sqlite3``. Its own rate limit is off there and so is the client's
limiter (``rate=None``): nothing is shared with other callers and there is no network to protect,
so the 5 req/s pacing would only make local runs slow. Over real HTTP (``sandbox serve``) the
sandbox is a normal target and the client keeps its limiter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from reconciler.client import Client, Secret, normalize_base_url
from reconciler.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ENV_TOKEN",
    "ENV_URL",
    "SANDBOX_DB",
    "SANDBOX_TOKEN",
    "SANDBOX_URL",
    "ConfigError",
    "Secret",
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


class EnvironmentLike(Protocol):
    """An entry of ``reconciler.yaml`` ``environments`` (``reconciler.project.Environment``)."""

    url: str
    token_env: str | None
    protect: Sequence[str]


class ProjectLike(Protocol):
    """The parts of ``reconciler.project.ProjectConfig`` this module reads."""

    @property
    def environments(self) -> Mapping[str, Any]: ...


TransportFactory = Callable[[], httpx.AsyncBaseTransport]


@dataclass(frozen=True)
class Target:
    """The resolved account. ``token`` is a :class:`Secret`; nothing here ever prints it."""

    name: str
    url: str
    token: Secret = field(repr=False)
    is_sandbox: bool = False
    protect: frozenset[str] = frozenset()
    transport_factory: TransportFactory | None = field(default=None, repr=False, compare=False)
    #: The sandbox database (embedded sandbox only), for ``describe``.
    db_path: Path | None = None
    #: Client keyword defaults for this target (e.g. ``rate=None`` in process).
    client_defaults: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def describe(self) -> str:
        """The first line every command prints, e.g. ``Target: https://acme.api-us1.com (environment "production")``."""
        if self.is_sandbox and self.db_path is not None:
            return f"Target: local sandbox ({_display_path(self.db_path)})"
        host = self.url.removesuffix("/api/3")
        if self.name in ("flags", "environment variables"):
            return f"Target: {host} (from {self._source_phrase()})"
        return f'Target: {host} (environment "{self.name}")'

    def _source_phrase(self) -> str:
        return "--url" if self.name == "flags" else f"${ENV_URL}"

    def client(self, **kw: Any) -> Client:
        """A :class:`Client` for this target; ``kw`` override the defaults (``rate``, ``sleep``, …)."""
        options: dict[str, Any] = dict(self.client_defaults)
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


def _environment(project: ProjectLike | None, env: str) -> Any:
    environments = dict(getattr(project, "environments", None) or {}) if project is not None else {}
    if env not in environments:
        known = ", ".join(sorted(environments)) or "none"
        where = "reconciler.yaml" if project is not None else "reconciler.yaml (not found)"
        raise ConfigError(f'unknown environment "{env}" in {where} (defined: {known})')
    return environments[env]


def resolve_target(
    *,
    url: str | None,
    token: str | None,
    env: str | None,
    project: ProjectLike | None,
    environ: Mapping[str, str],
    workdir: Path,
) -> Target:
    """The account to talk to: flags > ``AC_API_URL``/``AC_API_TOKEN`` > ``reconciler.yaml`` ``env`` > sandbox.

    * a flag or ``AC_API_URL`` URL needs a token from a flag or ``AC_API_TOKEN``, else :class:`ConfigError`;
    * ``env`` picks ``environments[env]`` from ``reconciler.yaml`` (ignored when a URL comes from a
      flag/variable, except for its ``protect`` list when the URLs match); its token is read from the
      variable named by ``token_env`` (the more specific name beats ``AC_API_TOKEN``; without a
      ``token_env``, ``AC_API_TOKEN`` is used); a missing variable is a :class:`ConfigError` naming it;
    * otherwise: the embedded sandbox under ``workdir``.
    """
    env_url = (environ.get(ENV_URL) or "").strip() or None
    env_token = environ.get(ENV_TOKEN) or None
    flag_url = (url or "").strip() or None
    flag_token = token or None

    if flag_url or env_url:
        chosen_url = flag_url or env_url
        assert chosen_url is not None
        name = "flags" if flag_url else "environment variables"
        secret = flag_token or env_token
        if not secret:
            source = "--url" if flag_url else ENV_URL
            raise ConfigError(f"{source} is set but no token: set {ENV_TOKEN} (tokens are never taken as command-line flags)")
        normalized = normalize_base_url(chosen_url)
        protect: frozenset[str] = frozenset()
        if env is not None:
            entry = _environment(project, env)
            if normalize_base_url(entry.url) == normalized:
                name = env
                protect = frozenset(entry.protect or ())
        return Target(name=name, url=normalized, token=Secret(secret), protect=protect)

    if env is not None:
        entry = _environment(project, env)
        normalized = normalize_base_url(entry.url)
        token_env = getattr(entry, "token_env", None)
        if token_env:
            secret = flag_token or environ.get(token_env) or None
            if not secret:
                raise ConfigError(f'environment "{env}" reads its token from ${token_env}, which is not set')
        else:
            secret = flag_token or env_token
            if not secret:
                raise ConfigError(f'environment "{env}" has no token_env: set token_env in reconciler.yaml or set {ENV_TOKEN}')
        return Target(name=env, url=normalized, token=Secret(secret), protect=frozenset(entry.protect or ()))

    if flag_token or env_token:
        raise ConfigError(f"a token is set but no account URL: pass --url or set {ENV_URL}")

    workdir = Path(workdir).resolve()
    db = workdir / SANDBOX_DB

    def factory() -> httpx.AsyncBaseTransport:
        return sandbox_transport(workdir)

    return Target(
        name="sandbox",
        url=SANDBOX_URL,
        token=Secret(SANDBOX_TOKEN),
        is_sandbox=True,
        transport_factory=factory,
        db_path=db,
        client_defaults={"rate": None},
    )

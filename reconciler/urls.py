"""The API's base URL (normalized, https only but for loopback, never carrying credentials or the token)
and its paths."""

from __future__ import annotations

import ipaddress
from urllib.parse import quote, unquote

import httpx
from pydantic import SecretStr

from reconciler.errors import ConfigError

#: A token shorter than this is not looked for in URLs: it would match innocent text, and no real
#: API key is that short.
_MIN_TOKEN_IN_URL = 8

#: The schema list endpoint: a 404 there means no Custom Objects API at this URL at all.
SCHEMAS_PATH = "/customObjects/schemas"


def _is_loopback(host: str) -> bool:
    """Exactly ``localhost``, 127.0.0.0/8 and ``::1``: no other name (``evil.localhost`` resolves
    through DNS like any other), so plain http never leaves the machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _holds_token(url: str, token: str | SecretStr | None) -> bool:
    secret = token.get_secret_value() if isinstance(token, SecretStr) else (token or "")
    if len(secret) < _MIN_TOKEN_IN_URL:
        return False
    secret = secret.lower()
    return secret in url.lower() or secret in unquote(url).lower()


def normalize_base_url(url: str, *, allow_http: bool = False, token: str | SecretStr | None = None) -> str:
    """``https://acct.api-us1.com`` or ``…/api/3`` (trailing slash or not) -> ``https://acct.api-us1.com/api/3``.

    ``http://`` is refused (:class:`ConfigError`) unless the host is loopback or ``allow_http`` (a custom
    transport such as the in-process sandbox). Credentials, queries and fragments in the URL are refused,
    and so is a URL that contains ``token`` anywhere; that error does not show the URL.
    """
    raw = (url or "").strip()
    if not raw:
        raise ConfigError("no API URL given")
    if _holds_token(raw, token):
        raise ConfigError("the API URL contains the API token; pass the token in AC_API_TOKEN (or token_env), "
                          "not in the URL")
    try:
        parsed = httpx.URL(raw)
    except Exception:
        raise ConfigError(f"not a valid API URL: {raw!r}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"not a valid API URL (expected https://<account>.api-us1.com): {raw!r}")
    if parsed.userinfo:
        raise ConfigError("the API URL must not carry credentials; pass the token separately")
    if parsed.query or parsed.fragment:
        raise ConfigError(f"the API URL must not have a query or fragment: {raw.split('?')[0].split('#')[0]!r}")
    if parsed.scheme == "http" and not (allow_http or _is_loopback(parsed.host)):
        raise ConfigError(f"refusing plain http:// for {parsed.host}: the API is served over https only")
    path = parsed.path.rstrip("/")
    if not path.endswith("/api/3"):
        path = f"{path}/api/3"
    return str(parsed.copy_with(path=path))


def quote_segment(segment: str) -> str:
    return quote(str(segment), safe="")


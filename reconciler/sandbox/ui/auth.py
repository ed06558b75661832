"""Who may see the pages: the API's admin token, sent as the ``Api-Token`` header (scripts) or
proven once through the login form, which sets a cookie.

The cookie holds an HMAC of the token under a random key made when the process starts, never the
token: it cannot be turned back into the token, it stops working when the token changes, and every
cookie dies with the process. HttpOnly (no script reads it), SameSite=Strict (no other site's page
sends it, so the one write, the login POST, needs no CSRF token).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "sandbox_ui"
_KEY = secrets.token_bytes(32)


def cookie_value(token: str) -> str:
    """The cookie's value for ``token``: HMAC-SHA256 under this process's key, hex."""
    return hmac.new(_KEY, token.encode(), hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    """``given`` is the admin ``token`` (constant time; an empty one never matches)."""
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def signed_in(request: Request, token: str) -> bool:
    """The request carries the admin token in ``Api-Token`` or a cookie made from it."""
    header = request.headers.get("api-token", "")
    if header:
        return token_matches(header, token)
    cookie = request.cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), cookie_value(token).encode())


def set_cookie(response: Response, token: str) -> None:
    response.set_cookie(COOKIE, cookie_value(token), httponly=True, samesite="strict", path="/")


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (never ``//host`` or a URL), and not
    back to the login page."""
    if not target or not target.startswith("/") or target.startswith(("//", "/login")) or "\\" in target:
        return "/"
    return target

"""Auth (``Api-Token``, U18: 403 ``{"message":"Forbidden"}``), the rate limiter (U19) and the request
body size limit, as ASGI.

The admin token is ``settings.token``; ``settings.member_tokens`` are non-admin users, marked in the
scope (``sandbox.member``) for the routes that are admin-only. The limiter's bucket is per token or,
with ``rate_limit_scope="account"``, one for every token (S6: the limit is per account). The OpenAPI
document of the sandbox needs no token.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.sandbox.openapi import OPENAPI_PATH
from reconciler.sandbox.ratelimit import RateLimiter
from reconciler.sandbox.settings import SandboxSettings
from reconciler.sandbox.wire import BodyTooLarge, message_bytes


async def send_json(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def retry_after(settings: SandboxSettings, computed: int = 1) -> bytes:
    """The ``Retry-After`` of a 429: what the bucket needs, at least ``retry_after_s`` (whole seconds)."""
    return str(max(computed, math.ceil(settings.retry_after_s), 1)).encode()


def _who(token: bytes, settings: SandboxSettings) -> str | None:
    """"admin", "member" or None (refused), comparing in constant time."""
    if not token:
        return None
    if hmac.compare_digest(token, settings.token.encode()):
        return "admin"
    if any(hmac.compare_digest(token, member.encode()) for member in settings.member_tokens):
        return "member"
    return None


def _limited_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises :class:`BodyTooLarge` once the body passes ``limit`` bytes (a body
    sent without Content-Length, or longer than it said)."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(f"body above {limit} bytes")
        return message

    return limited


class GateMiddleware:
    def __init__(self, app: ASGIApp, settings: Callable[[], SandboxSettings], limiter: RateLimiter) -> None:
        self.app = app
        self.settings = settings
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["path"] == OPENAPI_PATH and scope["method"] in ("GET", "HEAD")):
            await self.app(scope, receive, send)
            return
        settings = self.settings()
        token = next((v for k, v in scope["headers"] if k == b"api-token"), b"")
        who = _who(token, settings)
        if who is None:
            await send_json(send, 403, message_bytes(403))
            return
        scope["sandbox.member"] = who == "member"
        key = "account" if settings.rate_limit_scope == "account" else token.decode("latin-1")
        decision = self.limiter.take(key)
        extra: list[tuple[bytes, bytes]] = []
        if decision is not None:
            extra = [(b"ratelimit-limit", str(decision.limit).encode()),
                     (b"ratelimit-remaining", str(decision.remaining).encode())]
            if not decision.allowed:
                status = settings.rate_limit_status
                await send_json(send, status, message_bytes(status),
                                [(b"retry-after", retry_after(settings, decision.retry_after)), *extra])
                return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.strip().isdigit() and int(length) > settings.max_body_bytes:
            await send_json(send, 413, message_bytes(413), extra)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, _limited_receive(receive, settings.max_body_bytes), with_headers)

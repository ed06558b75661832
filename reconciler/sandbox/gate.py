"""Auth (``Api-Token``, U18: 403 ``{"message":"Forbidden"}``) and the rate limiter (U19), as ASGI."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.sandbox.ratelimit import RateLimiter
from reconciler.sandbox.settings import SandboxSettings
from reconciler.sandbox.wire import message_bytes


async def send_json(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class GateMiddleware:
    def __init__(self, app: ASGIApp, settings: Callable[[], SandboxSettings], limiter: RateLimiter) -> None:
        self.app = app
        self.settings = settings
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.settings()
        token = next((v for k, v in scope["headers"] if k == b"api-token"), b"")
        if not token or not hmac.compare_digest(token, settings.token.encode()):
            await send_json(send, 403, message_bytes(403))
            return
        decision = self.limiter.take(token.decode("latin-1"))
        if decision is None:
            await self.app(scope, receive, send)
            return
        extra = [(b"ratelimit-limit", str(decision.limit).encode()),
                 (b"ratelimit-remaining", str(decision.remaining).encode())]
        if not decision.allowed:
            status = settings.rate_limit_status
            await send_json(send, status, message_bytes(status),
                            [(b"retry-after", str(decision.retry_after).encode()), *extra])
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)

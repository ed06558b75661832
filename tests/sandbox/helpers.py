"""Shared helpers of the sandbox tests (not a conftest: tests/conftest.py belongs to others)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from reconciler.sandbox import SandboxSettings, create_app

TOKEN = "sandbox-token"
SCHEMAS = "/api/3/customObjects/schemas"


def quiet_settings(**overrides: Any) -> SandboxSettings:
    """Rate limiter off: unit tests do many requests quickly."""
    return SandboxSettings(**{"rate_limit": 0, **overrides})


@contextmanager
def asgi_client(settings: SandboxSettings | None = None) -> Iterator[httpx.Client]:
    """An in-process client (no sockets) via a sync wrapper around ASGITransport."""
    app = create_app(settings or quiet_settings())
    transport = httpx.ASGITransport(app=app)
    client = _SyncASGI(transport, app)
    yield client


class _SyncASGI(httpx.Client):
    """httpx.Client needs a sync transport; run the async ASGITransport on a private loop."""

    def __init__(self, transport: httpx.ASGITransport, app: Any) -> None:
        import asyncio

        self.app = app
        self._loop = asyncio.new_event_loop()
        loop = self._loop

        class _Bridge(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                async def run() -> httpx.Response:
                    response = await transport.handle_async_request(request)
                    body = await response.aread()
                    return httpx.Response(response.status_code, headers=response.headers, content=body)

                return loop.run_until_complete(run())

        super().__init__(transport=_Bridge(), base_url="http://sandbox", headers={"Api-Token": TOKEN})

    def close(self) -> None:
        super().close()
        self._loop.close()


def field(fid: str, ftype: str = "text", singular: str | None = None, **extra: Any) -> dict[str, Any]:
    singular = singular or fid.replace("-", " ").title()
    return {"id": fid, "type": ftype, "labels": {"singular": singular, "plural": singular + "s"}, **extra}


def schema_body(slug: str = "thing", fields: list[dict] | None = None, **extra: Any) -> dict[str, Any]:
    return {"schema": {"slug": slug, "labels": {"singular": "Thing", "plural": "Things"},
                       "fields": fields if fields is not None else [field("name")], **extra}}


def create_schema(client: httpx.Client, **kwargs: Any) -> dict[str, Any]:
    r = client.post(SCHEMAS, json=schema_body(**kwargs))
    assert r.status_code == 201, r.text
    return r.json()["schema"]

"""A fake API server of our own (raw asyncio HTTP/1.1 on a free loopback port, in a thread)
that answers each request with what the test's handler returns, and checks on the errors."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "tok-HOSTILE-5f0c2e9a7b"


SCHEMAS = "/api/3/customObjects/schemas"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


#: A handler gets the request and returns the raw response bytes, or None to never answer.
Handler = Callable[[Request], bytes | None]


def response(status: int, body: bytes | str | Any = b"", *, reason: str | None = None,
             headers: dict[str, str] | None = None, content_type: str = "application/json") -> bytes:
    if not isinstance(body, bytes | str):
        body = json.dumps(body)
    data = body.encode() if isinstance(body, str) else body
    lines = [f"HTTP/1.1 {status} {reason or 'Whatever'}", f"Content-Type: {content_type}",
             f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class FakeApi:
    """``with FakeApi(handler) as api: api.url``; ``api.requests`` is what it received."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeApi:
        self._thread.start()
        assert self._ready.wait(5), "the fake API did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in
                           (line.split(":", 1) for line in lines[1:] if ":" in line)}
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                parts = urlsplit(target)
                request = Request(method, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}, headers)
                self.requests.append(request)
                answer = self.handler(request)
                if answer is None:  # never answer: hold the connection until the client gives up
                    await reader.read()
                    return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def token_pieces(token: str = TOKEN, size: int = 6) -> set[str]:
    return {token[i:i + size] for i in range(len(token) - size + 1)}


def assert_clean(exc: BaseException, *, token: str = TOKEN) -> str:
    """One line, no traceback-ish text, no 6-character piece of the token; the line."""
    line = str(exc)
    assert line and "\n" not in line and "Traceback" not in line, line
    texts = [line, repr(exc), "".join(traceback.format_exception_only(type(exc), exc))]
    for text in texts:
        leaked = [p for p in token_pieces(token) if p in text]
        assert not leaked, (leaked, text)
    return line


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def list_page(items: list[dict[str, Any]], **meta: Any) -> bytes:
    return response(200, {"schemas": items, "meta": meta})


def schema_doc(i: int) -> dict[str, Any]:
    return {"id": f"id-{i}", "slug": f"s-{i}", "labels": {"singular": f"S {i}", "plural": f"S {i}s"},
            "fields": [], "relationships": []}

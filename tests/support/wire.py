"""A client whose transport records when each request left and when its answer came back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from reconciler.client import Client
from tests.conftest import TOKEN
from tests.support.apply import NoSleep


@dataclass
class Wire:
    """What one client sent and when: ``started`` as each request leaves (method, path, sent,
    validate_only), ``sent`` once its answer's head is back (method, path, sent, answered, validate_only)."""

    name: str
    started: list[tuple[str, str, float, bool]] = field(default_factory=list)
    sent: list[tuple[str, str, float, float, bool]] = field(default_factory=list)


class RecordingTransport(httpx.AsyncHTTPTransport):
    """Real HTTP; notes when each request left and when its answer's head came back."""

    def __init__(self, wire: Wire) -> None:
        super().__init__()
        self.wire = wire

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        validate_only = request.headers.get("validateOnly") == "true"
        self.wire.started.append((request.method, request.url.path, sent, validate_only))
        response = await super().handle_async_request(request)
        self.wire.sent.append((request.method, request.url.path, sent, time.monotonic(), validate_only))
        return response


def client(url: str, wire: Wire) -> Client:
    return Client(url, TOKEN, rate=None, sleep=NoSleep(), transport=RecordingTransport(wire))

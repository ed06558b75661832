"""The request log and counters, readable from Python (tests assert on them).

Each exchange records method, path, query, final status (None when the connection was dropped or
the response lost) and the injected fault, if any. Headers are never recorded (the token is one).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    status: int | None = None
    fault: str | None = None
    started: float = field(default_factory=time.monotonic)
    elapsed: float | None = None

    @property
    def is_write(self) -> bool:
        return self.method not in READS

    def line(self) -> str:
        """``PUT /api/3/customObjects/schemas/… 200 12 ms`` (``- fault lost`` when one was injected)."""
        where = self.path + (f"?{self.query}" if self.query else "")
        status = "-" if self.status is None else str(self.status)
        ms = "" if self.elapsed is None else f" {self.elapsed * 1000:.0f} ms"
        fault = f" fault {self.fault}" if self.fault else ""
        return f"{self.method} {where} {status}{ms}{fault}"


def printer(stream: TextIO | None = None) -> Callable[[Exchange], None]:
    """A ``TrafficMiddleware`` ``on_done`` that prints each exchange's line (stderr by default)."""

    def show(exchange: Exchange) -> None:
        out = stream or sys.stderr
        out.write(exchange.line() + "\n")
        out.flush()

    return show


class Traffic:
    """Thread-safe log of every HTTP exchange the sandbox saw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: list[Exchange] = []

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self._log.append(exchange)

    @property
    def log(self) -> list[Exchange]:
        with self._lock:
            return list(self._log)

    @property
    def total(self) -> int:
        with self._lock:
            return len(self._log)

    def writes(self) -> list[Exchange]:
        return [e for e in self.log if e.is_write]

    def count(self, status: int | None = None, method: str | None = None) -> int:
        return sum(1 for e in self.log if (status is None or e.status == status)
                   and (method is None or e.method == method))

    def clear(self) -> None:
        with self._lock:
            self._log.clear()


class TrafficMiddleware:
    """Outermost layer: records each exchange (``scope["sandbox.exchange"]`` lets inner layers mark
    faults) and its status."""

    def __init__(self, app: ASGIApp, traffic: Traffic,
                 on_done: Callable[[Exchange], None] | None = None) -> None:
        self.app = app
        self.traffic = traffic
        self.on_done = on_done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = Exchange(scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"))
        scope["sandbox.exchange"] = exchange
        self.traffic.add(exchange)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start" and exchange.fault not in ("drop", "lost"):
                exchange.status = message["status"]
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                # recorded before the last byte goes out: a client that has the answer finds it logged
                exchange.elapsed = time.monotonic() - exchange.started
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if exchange.elapsed is None:  # no answer sent (a dropped connection, an error)
                exchange.elapsed = time.monotonic() - exchange.started
            if self.on_done is not None:
                self.on_done(exchange)


def mark_fault(scope: Scope, fault: str, status: Any = None) -> None:
    exchange = scope.get("sandbox.exchange")
    if exchange is not None:
        exchange.fault = fault
        exchange.status = status

"""The request log and counters, readable from Python (tests assert on them).

Each exchange records method, path, query, final status (None when the connection was dropped or
the response lost) and the injected fault, if any. Headers are never recorded (the token is one).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    status: int | None = None
    fault: str | None = None

    @property
    def is_write(self) -> bool:
        return self.method not in READS


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

    def __init__(self, app: ASGIApp, traffic: Traffic) -> None:
        self.app = app
        self.traffic = traffic

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
            await send(message)

        await self.app(scope, receive, recording_send)


def mark_fault(scope: Scope, fault: str, status: Any = None) -> None:
    exchange = scope.get("sandbox.exchange")
    if exchange is not None:
        exchange.fault = fault
        exchange.status = status

"""Injected faults (DESIGN §4 SPEC): ``429=0.2,500=0.1,502=..,503=..,drop=0.05,lost=0.05,latency=100ms``.

One ``random.Random(seed)`` draw per request picks at most one fault (cumulative probabilities in
the order 429, 500, 502, 503, drop, lost), so the same seed gives the same sequence. ``lost`` only
applies to writes (non-GET/HEAD): on a read its share of the draw is "no fault".

How the connection is closed without a response:
- over real HTTP (uvicorn), the middleware reaches uvicorn's transport through ``receive.__self__``
  (the protocol's request/response cycle) and closes it; the client sees the connection end with
  no response (httpx raises ``RemoteProtocolError``: "Server disconnected without sending a
  response"). Raising from the app would NOT do: uvicorn answers 500 when nothing was sent.
- in process (``httpx.ASGITransport``), there is no transport: the middleware raises
  :class:`ConnectionDropped`, which ASGITransport propagates to the caller.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.sandbox.gate import retry_after
from reconciler.sandbox.settings import SandboxSettings
from reconciler.sandbox.traffic import READS, mark_fault
from reconciler.sandbox.wire import message_bytes

STATUS_KINDS = ("429", "500", "502", "503")
KINDS = (*STATUS_KINDS, "drop", "lost")
_LATENCY = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s)?$")


class ConnectionDropped(ConnectionError):
    """Raised out of the app when the connection cannot be closed (in-process transports)."""


@dataclass
class Faults:
    probabilities: dict[str, float] = field(default_factory=dict)
    latency_s: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, spec: str, seed: int | None = None) -> Faults:
        """Parse a SPEC; a bad one raises ValueError with a one-line message."""
        probs: dict[str, float] = {}
        latency = 0.0
        for part in (p.strip() for p in (spec or "").split(",")):
            if not part:
                continue
            kind, sep, value = (s.strip() for s in part.partition("="))
            if not sep or not value:
                raise ValueError(f"fault spec: expected kind=value, got {part!r}")
            if kind == "latency":
                m = _LATENCY.match(value)
                if not m:
                    raise ValueError(f"fault spec: latency must look like 100ms or 0.5s, got {value!r}")
                latency = float(m.group(1)) / (1 if m.group(2) == "s" else 1000)
                continue
            if kind not in KINDS:
                raise ValueError(f"fault spec: unknown kind {kind!r} (expected one of {', '.join(KINDS)}, latency)")
            try:
                prob = float(value)
            except ValueError:
                raise ValueError(f"fault spec: {kind} needs a probability, got {value!r}") from None
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"fault spec: {kind} probability must be between 0 and 1, got {value}")
            probs[kind] = prob
        if sum(probs.values()) > 1.0 + 1e-9:
            raise ValueError("fault spec: the probabilities add up to more than 1")
        return cls(probs, latency, seed)

    @property
    def active(self) -> bool:
        return self.latency_s > 0 or any(p > 0 for p in self.probabilities.values())

    def decide(self, method: str) -> str | None:
        """The fault for the next request: a status ("429".."503"), "drop", "lost" or None."""
        with self._lock:
            draw = self._rng.random()
        edge = 0.0
        for kind in KINDS:
            edge += self.probabilities.get(kind, 0.0)
            if draw < edge:
                return None if kind == "lost" and method.upper() in READS else kind
        return None


async def _close_connection(receive: Receive) -> None:
    """Close the client connection without a response (see the module docstring)."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionDropped("sandbox fault: connection closed without a response")
    transport.close()
    for _ in range(3):  # let uvicorn's connection_lost run, so it does not try to answer 500
        await asyncio.sleep(0)


class FaultMiddleware:
    """Applies ``faults()`` (looked up per request, so faults can be switched at run time)."""

    def __init__(self, app: ASGIApp, faults: object, settings: Callable[[], SandboxSettings] | None = None) -> None:
        self.app = app
        self.faults = faults  # a callable returning Faults | None
        self.settings = settings  # the 429's Retry-After is the limiter's (retry_after_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults: Faults | None = self.faults() if scope["type"] == "http" else None  # type: ignore[operator]
        if faults is None or not faults.active:
            await self.app(scope, receive, send)
            return
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        kind = faults.decide(scope["method"])
        if kind is None:
            await self.app(scope, receive, send)
        elif kind in STATUS_KINDS:
            status = int(kind)
            mark_fault(scope, kind, status)
            body = message_bytes(status)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if status == 429:
                headers.append((b"retry-after", retry_after(self.settings()) if self.settings else b"1"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif kind == "drop":
            mark_fault(scope, "drop")
            await _close_connection(receive)
        else:  # lost: the write is performed and committed, the response never leaves
            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            mark_fault(scope, "lost")
            await _close_connection(receive)

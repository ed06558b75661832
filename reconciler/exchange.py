"""One HTTP exchange of the client: what was sent (:class:`RequestRecord`, :class:`ClientStats`),
how an attempt ended (:class:`Outcome`), the ``Retry-After`` parser and the token's auth flow."""

from __future__ import annotations

import email.utils
import math
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP attempt. ``status`` is ``None`` when no answer came back (``error`` names the failure);
    ``attempt`` counts from 1 and ``retried`` is ``attempt > 1`` (this attempt repeats an earlier one)."""

    method: str
    path: str
    status: int | None
    attempt: int
    retried: bool
    query: str = ""
    error: str | None = None
    elapsed: float = 0.0


@dataclass
class ClientStats:
    """What a :class:`Client` sent: every attempt, and every retry sleep."""

    records: list[RequestRecord] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def count(self, method: str | None = None, path: str | None = None, status: int | None = None) -> int:
        """Attempts, optionally only those with this method, path prefix and status."""
        return sum(
            1
            for r in self.records
            if (method is None or r.method == method.upper())
            and (path is None or r.path.startswith(path))
            and (status is None or r.status == status)
        )

    def by_method(self) -> dict[str, int]:
        return dict(Counter(r.method for r in self.records))

    def retries(self) -> int:
        """Attempts that repeated an earlier one."""
        return sum(1 for r in self.records if r.retried)

    def total_sleep(self) -> float:
        """Seconds spent (or asked of the injected ``sleep``) waiting between retries."""
        return sum(self.sleeps)

    def reset(self) -> None:
        self.records.clear()
        self.sleeps.clear()


# --------------------------------------------------------------------------------------------
# Retry helpers


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number (``"30"``, ``"1.5"``) or an HTTP-date. ``None`` if absent/garbled."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


class ApiTokenAuth(httpx.Auth):
    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Api-Token"] = self._token.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return "<ApiTokenAuth ***>"


#: Transport errors after which the request surely was NOT processed (nothing reached the server).
#: A host that refused every connection so far (a wrong URL, a server that is down) gets this many
#: attempts, not ``max_retries``: a typo in a URL should fail in seconds, not after a minute of backoff.
UNREACHED_ATTEMPTS = 3
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Transport errors after which the request MAY have been processed (sent, answer lost).
MAYBE_SENT = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError,
               httpx.RemoteProtocolError)
#: Failures that, from a host that never answered at all, mean it is not there (or not listening):
#: such a host gets :data:`UNREACHED_ATTEMPTS` attempts.
NO_ANSWER = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout)


@dataclass
class Outcome:
    response: httpx.Response | None = None
    error: Exception | None = None
    retryable: bool = False
    ambiguous: bool = False  # the server may have processed it
    retry_after: float | None = None
    rate_limited: bool = False  # a 429, or a 503 that looks like one: the client-wide pause is set
    pause: float = 0.0  # the pause this answer set (rate_limited), in seconds ...
    pause_until: float = 0.0  # ... and its end (a time.monotonic() instant)
    query: str = ""
    elapsed: float = 0.0


class AlreadyDone(Exception):  # not an error: the write was done by an earlier attempt
    """Ends :meth:`Client._request` when its ``settled`` lookup found the write already done."""

    def __init__(self, value: Any) -> None:
        self.value = value



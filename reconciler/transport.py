"""The client's transport: every request of :class:`reconciler.client.Client` goes through
:meth:`Transport._request`, the one retry loop. The only code that speaks HTTP.

* Auth: the token goes only into the ``Api-Token`` header, added per request by an :class:`httpx.Auth`
  (so it is not even in the httpx client's default headers). It is held in a pydantic :class:`~pydantic.SecretStr`
  (``repr``/``str`` show asterisks); exceptions, log lines, :attr:`Client.stats` and reprs never show it.
* Limiter: one token bucket per :class:`Client`, shared by every concurrent request, at the account's
  5 req/s (docs/api-notes.md §1) with headroom so latency jitter between us and the server's bucket never
  costs a 429: the bucket refills at 95 % of ``rate`` (``rate_headroom``) and holds ``rate - 1``
  tokens (``burst``), one token of slack. The rate adapts: it halves on a 429 (not below
  :data:`MIN_RATE`; the account's budget may be shared with other integrations) and climbs back
  gradually; an account whose ``RateLimit-Limit`` header (docs/api-notes.md §1) is below ``rate`` is paced at
  that limit instead.
* Shared pause: a 429 (or a 503 that looks rate-limited) stops EVERY request of the client until the
  ``Retry-After`` it carried (capped at ``retry_after_cap``, :data:`RETRY_AFTER_CAP`) has passed; a
  longer ``Retry-After`` is not waited for at all (:class:`RateLimited` at once).
* Retries: capped exponential backoff with full jitter, ``Retry-After`` honoured (seconds or an
  HTTP-date), on 429/502/503/504 and on transport failures, for GET/PUT/DELETE. A schema create (POST)
  is retried blindly only when it cannot have been processed (429, connection refused); after an
  ambiguous failure the slug is looked up first, so a schema is never created twice (DESIGN §6).
* Bounds: ``deadline`` (a ``time.monotonic()`` instant) ends everything with :class:`DeadlineExceeded`:
  no request starts, no wait extends and no request stays in flight past it. Every wait longer than
  :data:`WAIT_ANNOUNCE_AFTER` seconds is told once to ``on_wait`` (one line; the client never prints).
* Errors: typed exceptions from :mod:`reconciler.errors`, one line each, naming what to check; the
  token is masked in every text taken from a response before anything is cut.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from reconciler.errors import (
    ApiError,
    ConfigError,
    DeadlineExceeded,
    UnexpectedResponse,
    format_seconds,
)
from reconciler.exchange import (
    MAYBE_SENT,
    NO_ANSWER,
    NOT_SENT,
    UNREACHED_ATTEMPTS,
    AlreadyDone,
    ApiTokenAuth,
    ClientStats,
    Outcome,
    RequestRecord,
    parse_retry_after,
)
from reconciler.failures import FailureContext, failure, looks_rate_limited
from reconciler.limiter import SleepFn, TokenBucket
from reconciler.urls import normalize_base_url

log = logging.getLogger("reconciler.client")

#: The API's maximum page size (docs/api-notes.md §1).
PAGE_SIZE = 100
#: Statuses worth another attempt: rate limit and gateway/availability errors (a 503 was seen at the limit, C7).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: The longest ``Retry-After`` the client waits for (seconds; the constructor's ``retry_after_cap``).
#: The API's documented example is 30 s (docs/api-notes.md §1). Two minutes is our choice: past it, a run in CI
#: is better ended at once with a line that says what the account asked for than left waiting.
RETRY_AFTER_CAP = 120.0
#: Waits longer than this (seconds) are told to ``on_wait``; shorter ones pass unannounced.
WAIT_ANNOUNCE_AFTER = 2.0
#: The shortest shared pause after a 429 without ``Retry-After`` (seconds): the API's budget is per
#: second (docs/api-notes.md §1); how long a refused account really needs is not documented (a guess).
_MIN_RATE_LIMIT_PAUSE = 1.0
WaitFn = Callable[[str], None]


class Transport:
    """Auth, limiter, retries and errors for the Custom Objects API; :class:`~reconciler.client.Client` adds the
    endpoints. Use as ``async with Client(url, token) as c:``.

    ``rate`` is the account's limit in requests/s (``0``/``None``: no limiter); the bucket refills at
    ``rate * rate_headroom`` and holds ``burst`` tokens (default ``rate - 1``: one token of slack), and
    slows down on 429s (see :class:`TokenBucket`). ``max_retries`` counts attempts after the first.
    ``sleep`` is used for every retry wait, the shared pause included (inject a fake one in tests);
    the limiter paces in real time.

    ``retry_after_cap``: the longest ``Retry-After`` waited for (:data:`RETRY_AFTER_CAP`); a longer one
    fails the request at once (:class:`RateLimited`). ``deadline``: a ``time.monotonic()`` instant after
    which nothing is sent or waited for (:class:`DeadlineExceeded`, whose line names ``deadline_label``,
    e.g. ``"the 60 s --timeout"``); each attempt's timeout is ``min(timeout, time left)``. ``on_wait``
    gets one line for each wait longer than :data:`WAIT_ANNOUNCE_AFTER` s and for each stalled request
    (``account asked to wait 30 s; retrying at 12:00:31``). ``token_source`` says where the token came
    from (``"$AC_STAGING_TOKEN"``), for the hint of a refused token; it is not the token.
    """

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        rate: float | None = 5.0,
        burst: float | None = None,
        rate_headroom: float = 0.95,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        max_retries: int = 8,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_cap: float = RETRY_AFTER_CAP,
        sleep: SleepFn = asyncio.sleep,
        rng: random.Random | None = None,
        on_wait: WaitFn | None = None,
        deadline: float | None = None,
        deadline_label: str = "the deadline",
        token_source: str | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url, allow_http=transport is not None, token=token)
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        if not self._token:
            raise ConfigError(f"no API token given for {self.base_url}")
        parsed = httpx.URL(self.base_url)
        self._host = parsed.host + (f":{parsed.port}" if parsed.port else "")
        self._account = self.base_url.removesuffix("/api/3")
        self.max_retries = max(0, int(max_retries))
        self._reached = False  # an HTTP answer came back at least once
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self.deadline = deadline
        self.deadline_label = deadline_label
        self.token_source = token_source
        self._on_wait = on_wait
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.limiter: TokenBucket | None = None
        self._rate_headroom = rate_headroom
        if rate:
            # one token of slack (burst 4 at 5 req/s): the server's bucket starts when our first request
            # ARRIVES, and connection set-up delays that one more than later ones; with burst == rate a
            # loopback test still saw an occasional limiter 429 on the 6th request.
            self.limiter = TokenBucket(rate * rate_headroom, burst if burst is not None else max(1.0, rate - 1.0))
        # the client-wide pause: no request is sent before this time.monotonic() instant
        self._not_before = 0.0
        self._pause_reason = ""
        self._announced_until = 0.0  # the end of the last wait told to on_wait
        self._stall_told_at = -math.inf
        self.stats = ClientStats()
        self._transport = transport
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._owns_http = False

    # -- lifecycle ------------------------------------------------------------------------

    def _ensure_http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                auth=ApiTokenAuth(self._token),
                transport=self._transport,
                timeout=httpx.Timeout(self._timeout),
                verify=True,
                follow_redirects=False,  # a redirect could carry the token to another host
                headers={"Accept": "application/json", "User-Agent": "reconciler/0.1"},
            )
            self._owns_http = True
        return self._http

    async def __aenter__(self) -> Self:
        self._ensure_http()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None and self._owns_http:
            await self._http.aclose()
        self._http = None

    def rates(self) -> tuple[float | None, float | None]:
        """(the account's requests/s, the pace this client keeps under it), both ``None`` without a
        limiter (the embedded sandbox). The pace is the limiter's ceiling (a lower ``RateLimit-Limit``
        the account announced included); the rate is that without the client's headroom."""
        if self.limiter is None:
            return None, None
        pace = self.limiter.max_rate
        return round(pace / self._rate_headroom, 3), pace

    def __repr__(self) -> str:
        rate = f"{self.limiter.rate:g}/s" if self.limiter else "off"
        return f"<Client {self.base_url} token=*** rate={rate}>"

    # -- waits and the deadline ---------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """``text`` with the token (as is, or percent-encoded) replaced by ``***``."""
        secret = self._token.get_secret_value()
        if not secret or not text:
            return text
        text = text.replace(secret, "***")
        encoded = quote(secret, safe="")
        return text.replace(encoded, "***") if encoded != secret else text

    def _time_left(self, method: str, path: str) -> float | None:
        """Seconds to the deadline (``None``: no deadline); :class:`DeadlineExceeded` when none is left."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(method, path, label=self.deadline_label)
        return left

    def _check_wait(self, method: str, path: str, delay: float) -> None:
        """A wait of ``delay`` s that would end past the deadline is refused before it starts."""
        if self.deadline is not None and time.monotonic() + delay > self.deadline:
            raise DeadlineExceeded(method, path, label=self.deadline_label, waiting=delay)

    def _tell(self, line: str, until: float | None = None) -> None:
        """One line to ``on_wait``. A wait (ending at ``until``) is told only if it ends after the last
        one told, so concurrent requests waiting out the same pause say it once."""
        if self._on_wait is None:
            return
        if until is not None:
            if until <= self._announced_until:
                return
            self._announced_until = until
        self._on_wait(line)

    @staticmethod
    def _clock_at(delay: float) -> str:
        """The local wall-clock time ``delay`` s from now, ``HH:MM:SS``."""
        return time.strftime("%H:%M:%S", time.localtime(time.time() + delay))

    async def _wait_pause(self, method: str, path: str, waited: float) -> float:
        """Wait until the client-wide pause ends (unless this request already waited for it, up to
        ``waited``); the end of the last pause waited for."""
        while self._not_before > waited:
            until = self._not_before
            delay = until - time.monotonic()
            if delay <= 0:
                return until
            self._check_wait(method, path, delay)
            if delay > WAIT_ANNOUNCE_AFTER:
                self._tell(f"{self._pause_reason}; retrying at {self._clock_at(delay)}", until)
            self.stats.sleeps.append(delay)
            await self._sleep(delay)
            waited = until
        return waited

    def _jitter(self, attempt: int) -> float:
        return self._rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))

    def _attempt_limit(self, out: Outcome) -> int:
        """How many attempts this request gets: fewer for a host that has never answered anything."""
        if not self._reached and isinstance(out.error, NO_ANSWER):
            return min(self.max_retries + 1, UNREACHED_ATTEMPTS)
        return self.max_retries + 1

    # -- the attempt loop -------------------------------------------------------------------

    async def _attempt(
        self,
        method: str,
        path: str,
        *,
        attempt: int,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        waited: float = 0.0,
    ) -> Outcome:
        http = self._ensure_http()
        while True:  # the pause, then a token; again if a pause began while this request queued
            waited = await self._wait_pause(method, path, waited)
            if self.limiter is not None:
                left = self._time_left(method, path)
                try:
                    async with asyncio.timeout(left):
                        await self.limiter.acquire()
                except TimeoutError:
                    raise DeadlineExceeded(method, path, label=self.deadline_label) from None
            if self._not_before <= max(waited, time.monotonic()):
                break
        left = self._time_left(method, path)
        timeout = self._timeout if left is None else min(self._timeout, left)
        query = str(httpx.QueryParams(params or {}))
        started = time.monotonic()
        cut = asyncio.timeout(left)
        try:
            async with cut:
                response = await http.request(method, path, params=params, json=json, headers=headers,
                                              timeout=timeout)
                await response.aread()
        except TimeoutError:
            if not cut.expired():
                raise
            self._record(method, path, None, attempt, query, "DeadlineExceeded", started)
            raise DeadlineExceeded(method, path, label=self.deadline_label) from None
        except (httpx.TransportError, ConnectionError) as exc:
            # ConnectionError: an in-process (ASGI) transport re-raises the app's dropped connection
            not_sent = isinstance(exc, (*NOT_SENT, ConnectionRefusedError))
            maybe_sent = not not_sent and isinstance(exc, (*MAYBE_SENT, ConnectionError))
            self._record(method, path, None, attempt, query, type(exc).__name__, started)
            log.debug("%s %s attempt %d: %s", method, path, attempt, type(exc).__name__)
            if isinstance(exc, httpx.TimeoutException) and timeout < self._timeout:
                raise DeadlineExceeded(method, path, label=self.deadline_label) from None  # the deadline's cut
            return Outcome(error=exc, retryable=not_sent or maybe_sent, ambiguous=maybe_sent, query=query,
                            elapsed=time.monotonic() - started)
        self._reached = True
        status = response.status_code
        if self.limiter is not None:
            limit = as_float(response.headers.get("RateLimit-Limit"))
            if limit is not None and limit > 0:
                self.limiter.limit_to(limit * self._rate_headroom, limit - 1.0)
        self._record(method, path, status, attempt, query, None, started)
        log.debug("%s %s attempt %d: %d", method, path, attempt, status)
        if status not in RETRY_STATUSES:
            return Outcome(response=response, query=query)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        # a 429 was refused before processing; a 5xx from a gateway may have been processed
        out = Outcome(response=response, retryable=True, ambiguous=status != 429, retry_after=retry_after,
                       query=query, rate_limited=status == 429 or (status == 503 and looks_rate_limited(response)))
        if retry_after is not None and retry_after > self.retry_after_cap:
            out.retryable = False  # not worth waiting for: _error says what was asked
            return out
        if out.rate_limited:
            pause = retry_after if retry_after is not None else max(_MIN_RATE_LIMIT_PAUSE, self._jitter(attempt))
            out.pause, out.pause_until = pause, time.monotonic() + pause
            if out.pause_until > self._not_before:
                self._not_before = out.pause_until
                self._pause_reason = (f"account asked to wait {format_seconds(pause)}" if retry_after is not None
                                      else f"rate limited by {self._host}; waiting {format_seconds(pause)}")
            if self.limiter is not None:
                self.limiter.slow_down(started, settle=pause)
        return out

    def _record(self, method: str, path: str, status: int | None, attempt: int, query: str,
                error: str | None, started: float) -> None:
        self.stats.records.append(
            RequestRecord(method, path, status, attempt, attempt > 1, query, error, time.monotonic() - started)
        )

    async def _backoff(self, method: str, path: str, attempt: int, out: Outcome) -> float:
        """Wait before attempt ``attempt + 1``; the end of the client-wide pause waited for (if any)."""
        now = time.monotonic()
        limit = self._attempt_limit(out)
        if out.rate_limited:
            until = max(out.pause_until, self._not_before)
            delay = out.pause if until == out.pause_until else until - now
            line = f"{self._pause_reason}; retrying at {self._clock_at(delay)}"
        else:
            delay = out.retry_after if out.retry_after is not None else self._jitter(attempt)
            until = now + delay
            what = (f"{out.response.status_code} from {self._host}" if out.response is not None
                    else f"{type(out.error).__name__} from {self._host}")
            line = (f"{what} on {method} {path}; retrying at {self._clock_at(delay)} "
                    f"(attempt {attempt + 1} of {limit})")
        self._check_wait(method, path, delay)
        if isinstance(out.error, httpx.TimeoutException) and out.elapsed > WAIT_ANNOUNCE_AFTER:
            if now - self._stall_told_at >= WAIT_ANNOUNCE_AFTER:  # one line for requests stalled together
                self._stall_told_at = now
                at = f" at {self._clock_at(delay)}" if delay > WAIT_ANNOUNCE_AFTER else ""
                self._tell(f"no answer from {self._host} for {format_seconds(out.elapsed)}; retrying{at} "
                           f"(attempt {attempt + 1} of {limit})")
        elif delay > WAIT_ANNOUNCE_AFTER:
            self._tell(line, until)
        self.stats.sleeps.append(delay)
        await self._sleep(delay)
        return until if out.rate_limited else 0.0

    def _error(self, method: str, path: str, outcome: Outcome, attempts: int) -> ApiError:
        """The exception for a final outcome (an error status, or retries exhausted), with what to check."""
        return failure(outcome, method, path, attempts, FailureContext(
            host=self._host, account=self._account, base_url=self.base_url, token_source=self.token_source,
            reached=self._reached, retry_after_cap=self.retry_after_cap, scrub=self._scrub))

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
        idempotent: bool = True,
        gone_ok: bool = False,
        settled: Callable[[], Awaitable[Any]] | None = None,
    ) -> httpx.Response:
        """Send with retries: the one retry loop of the client. Non-idempotent requests are repeated
        only when surely not processed, or when ``settled`` can tell.

        With ``gone_ok``, a 404 after an attempt that may have been processed is returned as is
        (a retried DELETE whose first attempt did the job). ``settled`` (for a non-idempotent
        write) looks up whether an attempt whose answer was lost took effect: it is asked after
        such an attempt, when the attempts run out, and on a 422 after one (the API refusing a
        duplicate of our own write); what it finds (not ``None``) ends the loop as
        :class:`AlreadyDone`.
        """
        maybe_done = False
        waited = 0.0

        async def done_already() -> None:
            found = await settled() if settled is not None and maybe_done else None
            if found is not None:
                log.info("%s %s: an earlier attempt went through; not sending it again", method, path)
                raise AlreadyDone(found)

        for attempt in range(1, self.max_retries + 2):
            out = await self._attempt(method, path, attempt=attempt, params=params, json=json, headers=headers,
                                      waited=waited)
            if not out.retryable and out.response is not None:
                response = out.response
                if response.status_code in ok or (200 <= response.status_code < 300 and not ok):
                    return response
                if gone_ok and maybe_done and response.status_code == 404:
                    return response
                if response.status_code == 422:
                    await done_already()
                raise self._error(method, path, out, attempt)
            if out.ambiguous and not idempotent and settled is None:
                raise self._error(method, path, out, attempt) from None
            maybe_done = maybe_done or out.ambiguous
            if not out.retryable or attempt >= self._attempt_limit(out):
                await done_already()
                raise self._error(method, path, out, attempt) from None
            waited = await self._backoff(method, path, attempt, out)
            if out.ambiguous:
                await done_already()
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _json(response: httpx.Response, method: str, path: str) -> Any:
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise UnexpectedResponse(response.status_code, method, path,
                                     reason="the response body is not JSON") from None


    # -- raw access -------------------------------------------------------------------------

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Any request, with the client's auth, limiter, retries and errors; the parsed body (or ``None``).

        GET/PUT/DELETE/HEAD are retried; POST/PATCH only when surely not processed (429, refused
        connection), unless the caller knows the request is safe to repeat (``idempotent=True``: a
        record upsert that names its record is an update, whatever the method).
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE")
        response = await self._request(method, path, params=params, json=json, headers=headers, ok=(),
                                       idempotent=idempotent)
        return self._json(response, method, path)


def as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None

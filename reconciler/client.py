"""The only module that speaks HTTP: the ActiveCampaign Custom Objects API client.

``async with Client(url, token) as c: schemas = await c.list_schemas()``

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
import email.utils
import ipaddress
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote

import httpx
from pydantic import SecretStr

from reconciler.errors import (
    ApiError,
    AuthenticationFailed,
    ConfigError,
    DeadlineExceeded,
    NotFound,
    RateLimited,
    ServerError,
    TransportFailure,
    UnexpectedResponse,
    ValidationFailed,
    error_class_for,
    format_seconds,
    parse_error_body,
)
from reconciler.model import Schema
from reconciler.wire import schema_from_api, schema_to_api

__all__ = [
    "LIST_READS",
    "MIN_RATE",
    "PAGE_SIZE",
    "RETRY_AFTER_CAP",
    "SCHEMA_ORDER",
    "WAIT_ANNOUNCE_AFTER",
    "Client",
    "ClientStats",
    "RequestRecord",
    "TokenBucket",
    "normalize_base_url",
    "parse_retry_after",
]

log = logging.getLogger("reconciler.client")

#: The API's maximum page size (docs/api-notes.md §1).
PAGE_SIZE = 100
#: The schema list endpoint: a 404 there means no Custom Objects API at this URL at all.
_SCHEMAS = "/customObjects/schemas"
#: Items converted between two turns of the event loop when a list page is parsed (a few ms of work).
_CONVERT_SLICE = 10
#: Pages of a list requested at once once the first page gave ``meta.total`` (the limiter spaces them).
_PAGES_AHEAD = 8
#: The order the schema list is asked for. The API's default order is unspecified (docs/api-notes.md §7.4,
#: "not by creation time" live, S10), so paging by offset through it can skip or repeat a schema.
#: ``orders[createdTimestamp]`` is the one order reported working on a live account (S10; S5
#: documents ``orders[...]`` in general). Ascending, so a schema created while the list is read is
#: added after the pages already read instead of shifting them. Ties (schemas created in the same
#: instant) have no documented tie-breaker: the check of :meth:`Client.list_schemas` catches a
#: server that orders them differently from one page to the next.
SCHEMA_ORDER: Mapping[str, str] = {"orders[createdTimestamp]": "ASC"}
#: How many times a schema list that does not add up is read in all before it is an error.
LIST_READS = 3
#: Statuses worth another attempt: rate limit and gateway/availability errors (a 503 was seen at the limit, C7).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: The longest ``Retry-After`` the client waits for (seconds; the constructor's ``retry_after_cap``).
#: The API's documented example is 30 s (docs/api-notes.md §1). Two minutes is our choice: past it, a run in CI
#: is better ended at once with a line that says what the account asked for than left waiting.
RETRY_AFTER_CAP = 120.0
#: Waits longer than this (seconds) are told to ``on_wait``; shorter ones pass unannounced.
WAIT_ANNOUNCE_AFTER = 2.0
#: The adaptive limiter never goes below this rate (requests/s), whatever the 429s say.
MIN_RATE = 0.2
#: How fast a slowed-down limiter climbs back: this fraction of its configured rate per second after
#: the pause that followed a 429 (from the floor to the full rate in about 10 s). With time, not per
#: run of successes: at a low rate a run of successes takes long to come, and against a 1 req/s
#: account with 20 % extra 429s a per-run climb kept the client at the floor, 5 s a request.
_RECOVERY_PER_S = 0.1
#: The shortest shared pause after a 429 without ``Retry-After`` (seconds): the API's budget is per
#: second (docs/api-notes.md §1); how long a refused account really needs is not documented (a guess).
_MIN_RATE_LIMIT_PAUSE = 1.0
#: A token shorter than this is not looked for in URLs: it would match innocent text, and no real
#: API key is that short.
_MIN_TOKEN_IN_URL = 8
SleepFn = Callable[[float], Awaitable[Any]]
WaitFn = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# URLs


def _is_loopback(host: str) -> bool:
    """Exactly ``localhost``, 127.0.0.0/8 and ``::1``: no other name (``evil.localhost`` resolves
    through DNS like any other), so plain http never leaves the machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _holds_token(url: str, token: str | SecretStr | None) -> bool:
    secret = token.get_secret_value() if isinstance(token, SecretStr) else (token or "")
    if len(secret) < _MIN_TOKEN_IN_URL:
        return False
    secret = secret.lower()
    return secret in url.lower() or secret in unquote(url).lower()


def normalize_base_url(url: str, *, allow_http: bool = False, token: str | SecretStr | None = None) -> str:
    """``https://acct.api-us1.com`` or ``…/api/3`` (trailing slash or not) -> ``https://acct.api-us1.com/api/3``.

    ``http://`` is refused (:class:`ConfigError`) unless the host is loopback or ``allow_http`` (a custom
    transport such as the in-process sandbox). Credentials, queries and fragments in the URL are refused,
    and so is a URL that contains ``token`` anywhere; that error does not show the URL.
    """
    raw = (url or "").strip()
    if not raw:
        raise ConfigError("no API URL given")
    if _holds_token(raw, token):
        raise ConfigError("the API URL contains the API token; pass the token in AC_API_TOKEN (or token_env), "
                          "not in the URL")
    try:
        parsed = httpx.URL(raw)
    except Exception:
        raise ConfigError(f"not a valid API URL: {raw!r}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"not a valid API URL (expected https://<account>.api-us1.com): {raw!r}")
    if parsed.userinfo:
        raise ConfigError("the API URL must not carry credentials; pass the token separately")
    if parsed.query or parsed.fragment:
        raise ConfigError(f"the API URL must not have a query or fragment: {raw.split('?')[0].split('#')[0]!r}")
    if parsed.scheme == "http" and not (allow_http or _is_loopback(parsed.host)):
        raise ConfigError(f"refusing plain http:// for {parsed.host}: the API is served over https only")
    path = parsed.path.rstrip("/")
    if not path.endswith("/api/3"):
        path = f"{path}/api/3"
    return str(parsed.copy_with(path=path))


def _quote(segment: str) -> str:
    return quote(str(segment), safe="")


# --------------------------------------------------------------------------------------------
# Limiter


class TokenBucket:
    """An asyncio token bucket shared by concurrent requests: ``rate`` tokens/s, ``burst`` at most.

    Waiters are served in arrival order (one lock). Uses the real clock: it paces real requests.

    The rate adapts (multiplicative decrease, additive increase): :meth:`slow_down` (a 429) halves it,
    not below ``min_rate``, and turns bursts off; from the end of the pause that follows, the rate
    climbs back linearly, by :data:`_RECOVERY_PER_S` of the configured rate each second, and the burst
    comes back once ``max_rate`` is reached. The tokens accrue at the climbing rate (an integral, not
    the rate of the moment), so a request queued at a low rate is let through as soon as the climb
    allows. :meth:`limit_to` lowers the ceiling ``max_rate`` below the configured ``rate`` (the
    account's own ``RateLimit-Limit``).
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        min_rate: float = MIN_RATE,
        clock: Callable[[], float] = time.monotonic,
        sleep: SleepFn = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.configured_rate = self.max_rate = float(rate)
        self.min_rate = min(self.max_rate, float(min_rate))
        self.configured_burst = self.max_burst = self.burst = float(burst if burst is not None else max(1.0, rate))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock: asyncio.Lock | None = None
        self._climb = self.max_rate * _RECOVERY_PER_S  # requests/s gained per second
        self._base = self.max_rate  # the rate at _climb_from, climbing after it
        self._climb_from = -math.inf
        self._calm_after = -math.inf  # a 429 to a request sent before this instant changes nothing
        self.waited = 0.0
        self.slowdowns = 0

    def _rate_at(self, t: float) -> float:
        return min(self.max_rate, self._base + self._climb * max(0.0, t - self._climb_from))

    @property
    def rate(self) -> float:
        """The rate now (requests/s)."""
        return self._rate_at(self._clock())

    def _accrued(self, t: float) -> float:
        """Tokens accrued from ``_climb_from`` to ``t`` (negative before it): the integral of the rate."""
        tau = t - self._climb_from
        if tau <= 0:
            return self._base * tau
        ramp = (self.max_rate - self._base) / self._climb if self._base < self.max_rate else 0.0
        if tau <= ramp:
            return self._base * tau + self._climb * tau * tau / 2.0
        return self._base * ramp + self._climb * ramp * ramp / 2.0 + self.max_rate * (tau - ramp)

    def _refill(self) -> None:
        now = self._clock()
        if self._climb_from == -math.inf:
            gained = (now - self._stamp) * self.max_rate
        else:
            gained = self._accrued(now) - self._accrued(self._stamp)
        if self._rate_at(now) >= self.max_rate:
            self.burst = self.max_burst
        self._tokens = min(self.burst, self._tokens + gained)
        self._stamp = now

    def _wait_for(self, need: float) -> float:
        """Seconds until ``need`` more tokens have accrued (at most: the climb is counted without its cap)."""
        now = self._clock()
        rate = self._rate_at(now)
        if rate >= self.max_rate or now < self._climb_from:
            return need / rate
        return (-rate + math.sqrt(rate * rate + 2.0 * self._climb * need)) / self._climb

    async def acquire(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1.0 - 1e-9:  # (a wait computed to the token can fall short by a rounding)
                    self._tokens -= 1.0
                    return
                wait = self._wait_for(1.0 - self._tokens)
                self.waited += wait
                await self._sleep(wait)

    def drain(self) -> None:
        """Empty the bucket (the server thinks we are over, so slow everyone down)."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)

    def limit_to(self, rate: float, burst: float) -> None:
        """Set the ceiling to ``rate`` (and ``burst``), never above the configured ones: the account's
        own limit, from its ``RateLimit-Limit`` header."""
        rate = min(self.configured_rate, max(self.min_rate, rate))
        if rate == self.max_rate:
            return
        self._refill()
        self.max_rate = rate
        self.max_burst = min(self.configured_burst, max(1.0, burst))
        self._base = min(self._base, rate)
        self.burst = min(self.burst, self.max_burst)
        self._tokens = min(self._tokens, self.burst)

    def slow_down(self, sent_at: float | None = None, *, settle: float = 0.0) -> bool:
        """A 429: halve the rate (not below ``min_rate``), no bursts, one token at most. True if it did.

        ``settle`` is the pause that follows (the ``Retry-After``): the rate stays down during it and
        climbs after it. A 429 to a request sent (``sent_at``) before the end of the last such pause
        reports the congestion that slow-down already answered: it changes nothing, so eight requests
        refused together halve the rate once, not eight times.
        """
        if sent_at is not None and sent_at < self._calm_after:
            return False
        self._refill()
        now = self._clock()
        settle = max(0.0, settle)
        self._base = max(self.min_rate, self._rate_at(now) / 2.0)
        self._climb_from = self._calm_after = now + settle
        self.burst = 1.0
        # one token, no more: the pause (which the client waits out before it asks for a token) spaces
        # the first request after it; the rate spaces the others
        self._tokens = min(self._tokens, 1.0)
        self.slowdowns += 1
        return True


# --------------------------------------------------------------------------------------------
# Stats


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


class _ApiTokenAuth(httpx.Auth):
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
_UNREACHED_ATTEMPTS = 3
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Transport errors after which the request MAY have been processed (sent, answer lost).
_MAYBE_SENT = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError,
               httpx.RemoteProtocolError)
#: Failures that, from a host that never answered at all, mean it is not there (or not listening):
#: such a host gets :data:`_UNREACHED_ATTEMPTS` attempts.
_NO_ANSWER = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout)


@dataclass
class _Outcome:
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


class _AlreadyDone(Exception):  # not an error: the write was done by an earlier attempt
    """Ends :meth:`Client._request` when its ``settled`` lookup found the write already done."""

    def __init__(self, value: Any) -> None:
        self.value = value


class Client:
    """Async client of the Custom Objects API. Use as ``async with Client(url, token) as c:``.

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
                auth=_ApiTokenAuth(self._token),
                transport=self._transport,
                timeout=httpx.Timeout(self._timeout),
                verify=True,
                follow_redirects=False,  # a redirect could carry the token to another host
                headers={"Accept": "application/json", "User-Agent": "reconciler/0.1"},
            )
            self._owns_http = True
        return self._http

    async def __aenter__(self) -> Client:
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

    def _attempt_limit(self, out: _Outcome) -> int:
        """How many attempts this request gets: fewer for a host that has never answered anything."""
        if not self._reached and isinstance(out.error, _NO_ANSWER):
            return min(self.max_retries + 1, _UNREACHED_ATTEMPTS)
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
    ) -> _Outcome:
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
            not_sent = isinstance(exc, (*_NOT_SENT, ConnectionRefusedError))
            maybe_sent = not not_sent and isinstance(exc, (*_MAYBE_SENT, ConnectionError))
            self._record(method, path, None, attempt, query, type(exc).__name__, started)
            log.debug("%s %s attempt %d: %s", method, path, attempt, type(exc).__name__)
            if isinstance(exc, httpx.TimeoutException) and timeout < self._timeout:
                raise DeadlineExceeded(method, path, label=self.deadline_label) from None  # the deadline's cut
            return _Outcome(error=exc, retryable=not_sent or maybe_sent, ambiguous=maybe_sent, query=query,
                            elapsed=time.monotonic() - started)
        self._reached = True
        status = response.status_code
        if self.limiter is not None:
            limit = _as_float(response.headers.get("RateLimit-Limit"))
            if limit is not None and limit > 0:
                self.limiter.limit_to(limit * self._rate_headroom, limit - 1.0)
        self._record(method, path, status, attempt, query, None, started)
        log.debug("%s %s attempt %d: %d", method, path, attempt, status)
        if status not in RETRY_STATUSES:
            return _Outcome(response=response, query=query)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        # a 429 was refused before processing; a 5xx from a gateway may have been processed
        out = _Outcome(response=response, retryable=True, ambiguous=status != 429, retry_after=retry_after,
                       query=query, rate_limited=status == 429 or (status == 503 and _looks_rate_limited(response)))
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

    async def _backoff(self, method: str, path: str, attempt: int, out: _Outcome) -> float:
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

    def _error(self, method: str, path: str, outcome: _Outcome, attempts: int) -> ApiError:
        """The exception for a final outcome (an error status, or retries exhausted), with what to check."""
        if outcome.response is None:
            exc = outcome.error
            text = self._scrub(str(exc) or "") if exc is not None else ""
            name = type(exc).__name__ if exc is not None else "TransportError"
            if isinstance(exc, httpx.TimeoutException) and not text:
                text = f"no answer in {format_seconds(outcome.elapsed)}"
            reason = f"transport failure: {name}" + (f": {text}" if text else "")
            if not self._reached:
                return TransportFailure(None, method, path, reason=f"cannot reach {self._host} ({reason})",
                                        attempts=attempts, hint="check the URL and network")
            return TransportFailure(None, method, path, reason=reason, attempts=attempts)
        response = outcome.response
        status = response.status_code
        items = parse_error_body(response.content, mask=self._scrub)
        phrase = self._scrub(response.reason_phrase or "") or None
        if outcome.retry_after is not None and outcome.retry_after > self.retry_after_cap:
            return RateLimited(status, method, path, items, reason=phrase, attempts=attempts,
                               retry_after=outcome.retry_after, cap=self.retry_after_cap)
        cls = error_class_for(status)
        if status == 503 and outcome.retryable and attempts > 1 and _looks_rate_limited(response):
            cls = RateLimited
        if cls is AuthenticationFailed:
            return AuthenticationFailed(status, method, path, items, reason=phrase, attempts=attempts,
                                        base_url=self.base_url, token_source=self.token_source,
                                        needs_admin=_admin_only(method, path, outcome.query))
        if status == 404 and method == "GET" and path == _SCHEMAS:
            return NotFound(status, method, path, items, reason=phrase, attempts=attempts,
                            hint=f"no Custom Objects API at {self._account}; check the account URL "
                                 "(https://<account>.api-us1.com)")
        return cls(status, method, path, items, reason=phrase, attempts=attempts)

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
        :class:`_AlreadyDone`.
        """
        maybe_done = False
        waited = 0.0

        async def done_already() -> None:
            found = await settled() if settled is not None and maybe_done else None
            if found is not None:
                log.info("%s %s: an earlier attempt went through; not sending it again", method, path)
                raise _AlreadyDone(found)

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

    def _schema_from(self, data: Any, method: str, path: str, status: int) -> Schema:
        if not isinstance(data, dict) or not isinstance(data.get("schema"), dict):
            raise UnexpectedResponse(status, method, path, reason='the response has no "schema" object')
        return self._read_schema(data["schema"], method, path, status)

    def _read_schema(self, data: Any, method: str, path: str, status: int = 200) -> Schema:
        """:func:`schema_from_api`; a schema the model cannot read is an :class:`UnexpectedResponse`
        whose line names the first problem (masked, then cut), not a multi-line validation error."""
        try:
            return schema_from_api(data)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
            which = data.get("slug") or data.get("id") if isinstance(data, dict) else None
            name = f" {self._scrub(str(which))[:60]!r}" if which else ""
            problem = _first_problem(exc)
            raise UnexpectedResponse(status, method, path, reason=(
                f"the API sent a schema{name} this client cannot read ({self._scrub(problem)})")) from None

    # -- raw access -------------------------------------------------------------------------

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Any request, with the client's auth, limiter, retries and errors; the parsed body (or ``None``).

        GET/PUT/DELETE/HEAD are retried; POST/PATCH only when surely not processed (429, refused connection).
        """
        method = method.upper()
        response = await self._request(method, path, params=params, json=json, headers=headers, ok=(),
                                       idempotent=method in ("GET", "HEAD", "PUT", "DELETE"))
        return self._json(response, method, path)

    # -- reads ------------------------------------------------------------------------------

    async def _page(self, path: str, key: str, offset: int, limit: int,
                    extra: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        params = {"limit": str(limit), "offset": str(offset), **(extra or {})}
        data = self._json(await self._request("GET", path, params=params), "GET", path)
        if not isinstance(data, dict):
            raise UnexpectedResponse(200, "GET", path, reason="the list response is not a JSON object")
        items = data.get(key)
        if items is None and key == "schemas":
            items = data.get("objectTypes")  # legacy key (docs/api-notes.md §3)
        if not isinstance(items, list):
            raise UnexpectedResponse(200, "GET", path, reason=f'the list response has no "{key}" array')
        meta = data.get("meta")
        return items, meta if isinstance(meta, dict) else {}

    async def _list_all(self, path: str, key: str, extra: Mapping[str, str] | None = None,
                        convert: Callable[[Any], Any] | None = None) -> _Listing:
        """First page, then the other pages up to ``meta.total``, :data:`_PAGES_AHEAD` at a time concurrently.

        Paging stops at ``meta.total``, or at a short page. A response without ``meta.total`` is an
        :class:`UnexpectedResponse`; a page that holds only ids already read (a server that ignores
        ``offset``, or a list whose order moved) is a :class:`_PagesRepeat`: either would otherwise
        loop, or return a partial list as if whole. The page size is the first page's length when
        the server sends fewer than it was asked for (one that ignores ``limit``). Whether the pages
        add up (distinct ids, as many as ``meta.total``, the same total on every page) is the
        caller's check, on the returned :class:`_Listing`.

        ``convert`` turns each item into a result (the results are in page order). The first page
        is converted while the other pages' requests are out, in slices that give the event loop
        a turn in between (so those requests leave at once); the others as each arrives. Parsing
        100 schemas takes about as long as the API's latency, so this hides one page's parsing,
        and, when the rate limit spaces many pages out, every page's parsing behind the waits.
        (Measured slower: a worker thread, and slicing every page; the loop reading the other
        responses then waits for the GIL, or for the slices, at every step.)
        """
        async def converted(items: list[Any], sliced: bool = False) -> list[Any]:
            if convert is None:
                return list(items)
            if not sliced:
                return list(map(convert, items))
            out: list[Any] = []
            for i in range(0, len(items), _CONVERT_SLICE):
                await asyncio.sleep(0)
                out.extend(map(convert, items[i:i + _CONVERT_SLICE]))
            return out

        async def rest(offset: int) -> tuple[list[Any], list[Any], int | None]:
            chunk, meta = await self._page(path, key, offset, page, extra)
            return chunk, await converted(chunk), _as_int(meta.get("total"))

        first, meta = await self._page(path, key, 0, PAGE_SIZE, extra)
        total = _as_int(meta.get("total"))
        if total is None or total < 0:
            raise UnexpectedResponse(200, "GET", path, reason="the list response has no meta.total")
        page = _as_int(meta.get("limit")) or PAGE_SIZE
        page = min(page, PAGE_SIZE) if page > 0 else PAGE_SIZE
        if 0 < len(first) < page and len(first) < total:
            page = len(first)
        listing = _Listing(total=total, ids=_item_ids(first))
        seen = set(_ids(first) or ())
        items: list[Any] | None = None
        offset = len(first)
        more = len(first) >= page > 0 and offset < total
        while True:
            offsets = [o for o in range(offset, offset + _PAGES_AHEAD * page, page) if o < total] if more else []
            if items is None:  # the other pages' requests first, then the first page's conversion
                *pages, head = await asyncio.gather(*(rest(o) for o in offsets),
                                                    converted(first, sliced=bool(offsets)))
                items = list(head)
            else:
                pages = list(await asyncio.gather(*(rest(o) for o in offsets)))
            for at, (chunk, results, page_total) in zip(offsets, pages, strict=True):
                ids = _ids(chunk)
                if chunk and ids is not None and seen.issuperset(ids):
                    raise _PagesRepeat(200, "GET", path, reason=(
                        f"the page at offset {at} repeats items already read; {len(seen)} of meta.total {total} "
                        "read"))
                seen.update(ids or ())
                listing.ids.extend(_item_ids(chunk))
                if page_total is not None and page_total != total:
                    listing.totals_differ = True
                items.extend(results)
                if len(chunk) < page:
                    more = False
                    break
            if not offsets:
                listing.items = items
                return listing
            offset = offsets[-1] + page
            more = more and offset < total

    async def list_schemas(self) -> list[Schema]:
        """Every schema of the account, deleted fields included (``showFields=all``), each once.

        The list is asked for in a stable order, :data:`SCHEMA_ORDER`, and checked: the pages must
        add up to ``meta.total`` with distinct ids, and every page must report the same total. A
        read that does not (the account changed while it was read, or the server does not keep the
        order) is read again, up to :data:`LIST_READS` times in all, one read after the other; then
        it is an :class:`UnexpectedResponse`. A schema skipped by paging would show as a create in
        the plan (and fail at apply: "slug must be unique"); a repeated one, as a conflict.

        250 schemas cost exactly 3 requests: one, then the other two concurrently. Each page is
        parsed (validated into :class:`Schema` objects) as it arrives, see :meth:`_list_all`.
        """
        problem = ""
        for read in range(1, LIST_READS + 1):
            try:
                listing = await self._list_all(
                    _SCHEMAS, "schemas", {"showFields": "all", **SCHEMA_ORDER},
                    convert=lambda d: self._read_schema(d, "GET", _SCHEMAS))
            except _PagesRepeat as exc:
                problem = exc.reason or "a page repeated items already read"
            else:
                problem = listing.problem() or ""
                if not problem:
                    return list(listing.items)
            log.info("the schema list did not add up (read %d of %d): %s", read, LIST_READS, problem)
        raise UnexpectedResponse(200, "GET", _SCHEMAS, reason=(
            f"the schema list did not add up in {LIST_READS} reads: {problem} (the account changed while it "
            "was read, or the server ignores the order or the offset asked for)"))

    async def get_schema(self, schema_id: str) -> Schema:
        path = f"/customObjects/schemas/{_quote(schema_id)}"
        response = await self._request("GET", path, params={"showFields": "all"})
        return self._schema_from(self._json(response, "GET", path), "GET", path, response.status_code)

    async def find_schema_by_slug(self, slug: str) -> Schema | None:
        """The schema with this slug, or ``None``. Lists them all: the API documents no slug filter."""
        for schema in await self.list_schemas():
            if schema.slug == slug:
                return schema
        return None

    async def count_records(self, schema_id: str, filters: Mapping[str, str] | None = None) -> int:
        """``meta.total`` of the schema's records matching ``filters`` (ANDed; one request).

        Keys: ``"fields.amount"`` (``eq``), ``"fields.amount[gte]"`` or ``"fields.link[not_blank]"``
        (operator), or a full ``"filters[…][…]"`` parameter name.
        """
        path = f"/customObjects/records/{_quote(schema_id)}"
        params: dict[str, str] = {"limit": "1", "offset": "0"}
        for key, value in (filters or {}).items():
            params[_filter_param(key)] = str(value)
        data = self._json(await self._request("GET", path, params=params), "GET", path)
        meta = data.get("meta") if isinstance(data, dict) else None
        total = _as_int(meta.get("total")) if isinstance(meta, dict) else None
        if total is None:
            raise UnexpectedResponse(200, "GET", path, reason="the records list has no meta.total")
        return total

    # -- writes -----------------------------------------------------------------------------

    async def create_schema(self, schema: Schema) -> Schema:
        """POST a new schema (201). Never creates it twice: after an ambiguous failure (dropped
        connection, timeout, 5xx) the slug is looked up and an existing schema returned."""
        path = _SCHEMAS
        try:
            response = await self._request("POST", path, json={"schema": schema_to_api(schema)}, ok=(200, 201),
                                           idempotent=False, settled=lambda: self.find_schema_by_slug(schema.slug))
        except _AlreadyDone as done:
            return done.value  # type: ignore[no-any-return]
        return self._schema_from(self._json(response, "POST", path), "POST", path, response.status_code)

    async def update_schema(self, schema_id: str, body: dict[str, Any], *, validate_only: bool = False) -> Schema:
        """PUT ``{"schema": body}`` (a merge, docs/api-notes.md U1). ``validate_only`` sends the documented
        ``validateOnly: true`` HEADER: the API validates and answers without saving."""
        path = f"/customObjects/schemas/{_quote(schema_id)}"
        headers = {"validateOnly": "true"} if validate_only else None
        response = await self._request("PUT", path, params={"showFields": "all"}, json={"schema": body},
                                       headers=headers)
        return self._schema_from(self._json(response, "PUT", path), "PUT", path, response.status_code)

    async def delete_schema(self, schema_id: str) -> None:
        """DELETE a schema and all its records (200, empty body). Gone on a retry counts as done."""
        path = f"/customObjects/schemas/{_quote(schema_id)}"
        await self._request("DELETE", path, ok=(200, 202, 204), gone_ok=True)

    async def delete_field(self, schema_id: str, field_id: str) -> Schema:
        """DELETE a field (202 with the schema; the field comes back ``marked_for_deletion``)."""
        path = f"/customObjects/schemas/{_quote(schema_id)}/fields/{_quote(field_id)}"
        response = await self._request("DELETE", path, params={"showFields": "all"}, ok=(200, 202), gone_ok=True)
        if response.status_code == 404:  # gone on a retry: our first attempt did it
            return await self.get_schema(schema_id)
        return self._schema_from(self._json(response, "DELETE", path), "DELETE", path, response.status_code)


def _first_problem(exc: Exception) -> str:
    """``fields.0.type: Input should be …`` for a pydantic error (no input values: they are API text),
    else the exception's type and text."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors(include_input=False, include_url=False)[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            return f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))
        except (TypeError, IndexError, AttributeError):  # not pydantic's shape: its type says enough
            return type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _filter_param(key: str) -> str:
    key = key.strip()
    if key.startswith("filters["):
        return key
    if "[" in key:
        prop, rest = key.split("[", 1)
        return f"filters[{prop}][{rest}"
    return f"filters[{key}]"


class _PagesRepeat(UnexpectedResponse):
    """A list page that holds only items already read (see :meth:`Client._list_all`)."""


@dataclass
class _Listing:
    """What :meth:`Client._list_all` read: the converted items, the first page's ``meta.total``, each
    item's id (``None`` for an item without one) and whether another page reported another total."""

    total: int
    ids: list[str | None]
    items: list[Any] = field(default_factory=list)
    totals_differ: bool = False

    def problem(self) -> str | None:
        """Why the pages do not add up to one whole list, or ``None``."""
        counts = Counter(i for i in self.ids if i is not None)
        repeated = sum(n - 1 for n in counts.values())
        if repeated:
            return f"{repeated} item{'s' if repeated > 1 else ''} listed twice"
        if self.totals_differ:
            return "meta.total changed from one page to the next"
        if len(self.ids) != self.total:
            return f"{len(self.ids)} items read, meta.total is {self.total}"
        return None


def _item_ids(items: list[Any]) -> list[str | None]:
    return [str(i["id"]) if isinstance(i, dict) and i.get("id") is not None else None for i in items]


def _ids(items: list[Any]) -> list[str] | None:
    """The ids of a page's items; ``None`` when some item has none (then repeats cannot be told)."""
    ids = [str(i["id"]) for i in items if isinstance(i, dict) and i.get("id") is not None]
    return ids if len(ids) == len(items) else None


def _admin_only(method: str, path: str, query: str) -> str | None:
    """What this request does that only admin users may do (docs/api-notes.md §2 field deletes, §7.4 unfiltered
    record lists), or ``None``."""
    if method == "DELETE" and "/fields/" in path:
        return "deleting a field"
    if method == "GET" and path.startswith("/customObjects/records/") and "filters" not in unquote(query):
        return "listing records without a filter"
    return None


def _looks_rate_limited(response: httpx.Response) -> bool:
    return "Retry-After" in response.headers or response.headers.get("RateLimit-Remaining") == "0"


# re-exported for callers that catch errors from the client module
__all__ += [
    "ApiError",
    "AuthenticationFailed",
    "NotFound",
    "RateLimited",
    "ServerError",
    "TransportFailure",
    "ValidationFailed",
]

"""The only module that speaks HTTP: the ActiveCampaign Custom Objects API client.

``async with Client(url, token) as c: schemas = await c.list_schemas()``

* Auth: the token goes only into the ``Api-Token`` header, added per request by an :class:`httpx.Auth`
  (so it is not even in the httpx client's default headers). It is held in a :class:`Secret` whose
  ``repr``/``str`` is ``'***'``; exceptions, log lines, :attr:`Client.stats` and reprs never show it.
* Limiter: one token bucket per :class:`Client`, shared by every concurrent request, at the account's
  5 req/s (ac-api.md §1) with headroom so latency jitter between us and the server's bucket never
  costs a 429: the bucket refills at 95 % of ``rate`` (``rate_headroom``) and holds ``rate - 1``
  tokens (``burst``), one token of slack.
* Retries: capped exponential backoff with full jitter, ``Retry-After`` honoured (seconds or an
  HTTP-date), on 429/502/503/504 and on transport failures, for GET/PUT/DELETE. A schema create (POST)
  is retried blindly only when it cannot have been processed (429, connection refused); after an
  ambiguous failure the slug is looked up first, so a schema is never created twice (DESIGN §6).
* Errors: typed exceptions from :mod:`reconciler.errors`, one line each.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import gc
import ipaddress
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from reconciler.errors import (
    ApiError,
    AuthenticationFailed,
    ConfigError,
    NotFound,
    RateLimited,
    ServerError,
    TransportFailure,
    UnexpectedResponse,
    ValidationFailed,
    error_class_for,
    parse_error_body,
)
from reconciler.model import Schema
from reconciler.wire import schema_from_api, schema_to_api

__all__ = [
    "PAGE_SIZE",
    "Client",
    "ClientStats",
    "RequestRecord",
    "Secret",
    "TokenBucket",
    "normalize_base_url",
    "parse_retry_after",
]

log = logging.getLogger("reconciler.client")

#: The API's maximum page size (ac-api.md §1).
PAGE_SIZE = 100
#: Items converted between two turns of the event loop when a list page is parsed (a few ms of work).
_CONVERT_SLICE = 10
#: Statuses worth another attempt: rate limit and gateway/availability errors (a 503 was seen at the limit, C7).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
SleepFn = Callable[[float], Awaitable[Any]]


class Secret:
    """A string that never shows itself: ``repr``/``str``/``format`` give ``'***'``. :meth:`reveal` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        object.__setattr__(self, "_value", str(value))

    def reveal(self) -> str:
        return self._value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


# --------------------------------------------------------------------------------------------
# URLs


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(url: str, *, allow_http: bool = False) -> str:
    """``https://acct.api-us1.com`` or ``…/api/3`` (trailing slash or not) -> ``https://acct.api-us1.com/api/3``.

    ``http://`` is refused (:class:`ConfigError`) unless the host is loopback or ``allow_http`` (a custom
    transport such as the in-process sandbox). Credentials, queries and fragments in the URL are refused.
    """
    raw = (url or "").strip()
    if not raw:
        raise ConfigError("no API URL given")
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
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: SleepFn = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock: asyncio.Lock | None = None
        self.waited = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self.rate
                self.waited += wait
                await self._sleep(wait)

    def drain(self) -> None:
        """Empty the bucket (after a 429: the server thinks we are over, so slow everyone down)."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)


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

    def by_status(self) -> dict[int | None, int]:
        return dict(Counter(r.status for r in self.records))

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
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


class _ApiTokenAuth(httpx.Auth):
    def __init__(self, token: Secret) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Api-Token"] = self._token.reveal()
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


@dataclass
class _Outcome:
    response: httpx.Response | None = None
    error: Exception | None = None
    retryable: bool = False
    ambiguous: bool = False  # the server may have processed it
    retry_after: float | None = None


class Client:
    """Async client of the Custom Objects API. Use as ``async with Client(url, token) as c:``.

    ``rate`` is the account's limit in requests/s (``0``/``None``: no limiter); the bucket refills at
    ``rate * rate_headroom`` and holds ``burst`` tokens (default ``rate - 1``: one token of slack).
    ``max_retries`` counts attempts after the first. ``sleep`` is used for retry backoff only
    (inject a fake one in tests); the limiter paces in real time.
    """

    def __init__(
        self,
        base_url: str,
        token: str | Secret,
        *,
        rate: float | None = 5.0,
        burst: float | None = None,
        rate_headroom: float = 0.95,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        max_retries: int = 8,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 300.0,
        sleep: SleepFn = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url, allow_http=transport is not None)
        self._token = token if isinstance(token, Secret) else Secret(token)
        if not self._token:
            raise ConfigError(f"no API token given for {self.base_url}")
        self.max_retries = max(0, int(max_retries))
        self._reached = False  # an HTTP answer came back at least once
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.limiter: TokenBucket | None = None
        if rate:
            # one token of slack (burst 4 at 5 req/s): the server's bucket starts when our first request
            # ARRIVES, and connection set-up delays that one more than later ones; with burst == rate a
            # loopback test still saw an occasional limiter 429 on the 6th request.
            self.limiter = TokenBucket(rate * rate_headroom, burst if burst is not None else max(1.0, rate - 1.0))
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

    def __repr__(self) -> str:
        rate = f"{self.limiter.rate:g}/s" if self.limiter else "off"
        return f"<Client {self.base_url} token=*** rate={rate}>"

    # -- the attempt loop -------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        secret = self._token.reveal()
        return text.replace(secret, "***") if secret else text

    async def _attempt(
        self,
        method: str,
        path: str,
        *,
        attempt: int,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Outcome:
        http = self._ensure_http()
        if self.limiter is not None:
            await self.limiter.acquire()
        query = str(httpx.QueryParams(params or {}))
        started = time.monotonic()
        try:
            response = await http.request(method, path, params=params, json=json, headers=headers)
            await response.aread()
        except (httpx.TransportError, ConnectionError) as exc:
            # ConnectionError: an in-process (ASGI) transport re-raises the app's dropped connection
            not_sent = isinstance(exc, (*_NOT_SENT, ConnectionRefusedError))
            maybe_sent = not not_sent and isinstance(exc, (*_MAYBE_SENT, ConnectionError))
            self._record(method, path, None, attempt, query, type(exc).__name__, started)
            log.debug("%s %s attempt %d: %s", method, path, attempt, type(exc).__name__)
            return _Outcome(error=exc, retryable=not_sent or maybe_sent, ambiguous=maybe_sent)
        self._reached = True
        status = response.status_code
        self._record(method, path, status, attempt, query, None, started)
        log.debug("%s %s attempt %d: %d", method, path, attempt, status)
        if status in RETRY_STATUSES:
            if status == 429 and self.limiter is not None:
                self.limiter.drain()
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            # a 429 was refused before processing; a 5xx from a gateway may have been processed
            return _Outcome(response=response, retryable=True, ambiguous=status != 429, retry_after=retry_after)
        return _Outcome(response=response)

    def _record(self, method: str, path: str, status: int | None, attempt: int, query: str,
                error: str | None, started: float) -> None:
        self.stats.records.append(
            RequestRecord(method, path, status, attempt, attempt > 1, query, error, time.monotonic() - started)
        )

    async def _backoff(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            delay = min(retry_after, self.retry_after_cap)
        else:
            delay = self._rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))
        self.stats.sleeps.append(delay)
        await self._sleep(delay)

    def _error(self, method: str, path: str, outcome: _Outcome, attempts: int) -> ApiError:
        """The exception for a final outcome (an error status, or retries exhausted)."""
        if outcome.response is None:
            exc = outcome.error
            text = self._scrub(str(exc) or "") if exc is not None else ""
            name = type(exc).__name__ if exc is not None else "TransportError"
            reason = f"transport failure: {name}" + (f": {text}" if text else "")
            return TransportFailure(None, method, path, reason=reason, attempts=attempts)
        response = outcome.response
        status = response.status_code
        items = parse_error_body(response.content)
        items = [type(i)(*(self._scrub(v) if isinstance(v, str) else v for v in
                           (i.title, i.detail, i.pointer, i.code))) for i in items]
        reason = response.reason_phrase or None
        cls = error_class_for(status)
        if status == 503 and outcome.retryable and attempts > 1 and _looks_rate_limited(response):
            cls = RateLimited
        if cls is AuthenticationFailed:
            return AuthenticationFailed(status, method, path, items, reason=reason, attempts=attempts,
                                        base_url=self.base_url)
        return cls(status, method, path, items, reason=reason, attempts=attempts)

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
    ) -> httpx.Response:
        """Send with retries. Non-idempotent requests are repeated only when surely not processed.

        With ``gone_ok``, a 404 after an attempt that may have been processed is returned as is
        (a retried DELETE whose first attempt did the job).
        """
        maybe_done = False
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            out = await self._attempt(method, path, attempt=attempt, params=params, json=json, headers=headers)
            if not out.retryable:
                if out.response is None:
                    raise self._error(method, path, out, attempt) from None
                response = out.response
                if response.status_code in ok or (200 <= response.status_code < 300 and not ok):
                    return response
                if gone_ok and maybe_done and response.status_code == 404:
                    return response
                raise self._error(method, path, out, attempt)
            if out.ambiguous and not idempotent:
                raise self._error(method, path, out, attempt) from None
            maybe_done = maybe_done or out.ambiguous
            if attempt == attempts or (
                attempt >= _UNREACHED_ATTEMPTS and not self._reached and isinstance(out.error, httpx.ConnectError)
            ):
                raise self._error(method, path, out, attempt) from None
            await self._backoff(attempt, out.retry_after)
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
        return schema_from_api(data["schema"])

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
            items = data.get("objectTypes")  # legacy key (ac-api.md §3)
        if not isinstance(items, list):
            raise UnexpectedResponse(200, "GET", path, reason=f'the list response has no "{key}" array')
        meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
        return items, meta

    async def _list_all(self, path: str, key: str, extra: Mapping[str, str] | None = None,
                        convert: Callable[[Any], Any] | None = None) -> list[Any]:
        """First page, then (once ``meta.total`` is known) every other page concurrently.

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
            out = []
            for i in range(0, len(items), _CONVERT_SLICE):
                await asyncio.sleep(0)
                out.extend(map(convert, items[i:i + _CONVERT_SLICE]))
            return out

        first, meta = await self._page(path, key, 0, PAGE_SIZE, extra)
        total = _as_int(meta.get("total"))
        page = _as_int(meta.get("limit")) or PAGE_SIZE
        page = min(page, PAGE_SIZE) if page > 0 else PAGE_SIZE
        if total is None:
            # no total: walk sequentially until a short page
            items = await converted(first)
            offset = len(first)
            while len(first) >= page and first:
                first, _ = await self._page(path, key, offset, page, extra)
                items.extend(await converted(first))
                offset += len(first)
            return items
        offsets = range(len(first), total, page) if first else range(0)

        async def rest(offset: int) -> list[Any]:
            chunk, _meta = await self._page(path, key, offset, page, extra)
            return await converted(chunk)

        # the other pages' requests first, then the first page's conversion
        *pages, head = await asyncio.gather(*(rest(off) for off in offsets), converted(first, sliced=bool(offsets)))
        items = list(head)
        for chunk in pages:
            items.extend(chunk)
        return items

    async def list_schemas(self) -> list[Schema]:
        """Every schema of the account, deleted fields included (``showFields=all``).

        250 schemas cost exactly 3 requests: one, then the other two concurrently. Each page is
        parsed (validated into :class:`Schema` objects) as it arrives, see :meth:`_list_all`. The
        cyclic GC is paused meanwhile (as :func:`reconciler.planner.plan` does): decoding and
        validating pages allocates hundreds of thousands of objects that all stay alive, and the
        collections they set off, each walking every object of the process, took as long as the
        parsing itself (bench/NOTES.md). It is switched back on (if it was on) however this ends.
        """
        with _gc_paused():
            schemas: list[Schema] = await self._list_all("/customObjects/schemas", "schemas",
                                                          {"showFields": "all"}, convert=schema_from_api)
        seen: dict[str, Schema] = {}
        for schema in schemas:
            seen.setdefault(schema.id or f"slug:{schema.slug}", schema)  # a list that shifted may repeat one
        if len(seen) != len(schemas):
            log.warning("the schema list changed while it was read (%d items, %d distinct)", len(schemas), len(seen))
        return list(seen.values())

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
        path = "/customObjects/schemas"
        body = {"schema": schema_to_api(schema)}
        attempts = self.max_retries + 1
        maybe_done = False
        for attempt in range(1, attempts + 1):
            out = await self._attempt("POST", path, attempt=attempt, json=body)
            if not out.retryable and out.response is not None:
                response = out.response
                if response.status_code in (200, 201):
                    return self._schema_from(self._json(response, "POST", path), "POST", path, response.status_code)
                if maybe_done and response.status_code == 422:
                    # "slug must be unique" after a lost answer: probably our own earlier attempt
                    found = await self.find_schema_by_slug(schema.slug)
                    if found is not None:
                        return found
                raise self._error("POST", path, out, attempt)
            if not out.retryable or attempt == attempts:
                if out.ambiguous or maybe_done:
                    found = await self.find_schema_by_slug(schema.slug)
                    if found is not None:
                        return found
                raise self._error("POST", path, out, attempt) from None
            await self._backoff(attempt, out.retry_after)
            if out.ambiguous:
                maybe_done = True
                found = await self.find_schema_by_slug(schema.slug)
                if found is not None:
                    log.info("create %s: the earlier attempt went through; not sending it again", schema.slug)
                    return found
        raise AssertionError("unreachable")  # pragma: no cover

    async def update_schema(self, schema_id: str, body: dict[str, Any], *, validate_only: bool = False) -> Schema:
        """PUT ``{"schema": body}`` (a merge, ac-api.md U1). ``validate_only`` sends the documented
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


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic GC off meanwhile (back on, if it was, however the block ends)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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

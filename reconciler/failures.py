"""The exception a request's final outcome raises: one line, naming what to check, the token masked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import httpx

from reconciler.errors import (
    ApiError,
    AuthenticationFailed,
    NotFound,
    RateLimited,
    TransportFailure,
    error_class_for,
    format_seconds,
    parse_error_body,
)
from reconciler.exchange import Outcome
from reconciler.urls import SCHEMAS_PATH


@dataclass(frozen=True)
class FailureContext:
    """What an error line says about the account: its host and URL, where the token came from, whether
    the host ever answered, the ``Retry-After`` cap, and how to mask the token in response texts."""

    host: str
    account: str
    base_url: str
    token_source: str | None
    reached: bool
    retry_after_cap: float
    scrub: Callable[[str], str]


def failure(outcome: Outcome, method: str, path: str, attempts: int, ctx: FailureContext) -> ApiError:
    """The exception for a final outcome (an error status, or retries exhausted), with what to check."""
    if outcome.response is None:
        exc = outcome.error
        text = ctx.scrub(str(exc) or "") if exc is not None else ""
        name = type(exc).__name__ if exc is not None else "TransportError"
        if isinstance(exc, httpx.TimeoutException) and not text:
            text = f"no answer in {format_seconds(outcome.elapsed)}"
        reason = f"transport failure: {name}" + (f": {text}" if text else "")
        if not ctx.reached:
            return TransportFailure(None, method, path, reason=f"cannot reach {ctx.host} ({reason})",
                                    attempts=attempts, hint="check the URL and network")
        return TransportFailure(None, method, path, reason=reason, attempts=attempts)
    response = outcome.response
    status = response.status_code
    items = parse_error_body(response.content, mask=ctx.scrub)
    phrase = ctx.scrub(response.reason_phrase or "") or None
    if outcome.retry_after is not None and outcome.retry_after > ctx.retry_after_cap:
        return RateLimited(status, method, path, items, reason=phrase, attempts=attempts,
                           retry_after=outcome.retry_after, cap=ctx.retry_after_cap)
    cls = error_class_for(status)
    if status == 503 and outcome.retryable and attempts > 1 and looks_rate_limited(response):
        cls = RateLimited
    if cls is AuthenticationFailed:
        return AuthenticationFailed(status, method, path, items, reason=phrase, attempts=attempts,
                                    base_url=ctx.base_url, token_source=ctx.token_source,
                                    needs_admin=admin_only(method, path, outcome.query))
    if status == 404 and method == "GET" and path == SCHEMAS_PATH:
        return NotFound(status, method, path, items, reason=phrase, attempts=attempts,
                        hint=f"no Custom Objects API at {ctx.account}; check the account URL "
                             "(https://<account>.api-us1.com)")
    return cls(status, method, path, items, reason=phrase, attempts=attempts)


def admin_only(method: str, path: str, query: str) -> str | None:
    """What this request does that only admin users may do (docs/api-notes.md §2 field deletes, §7.4 unfiltered
    record lists), or ``None``."""
    if method == "DELETE" and "/fields/" in path:
        return "deleting a field"
    if method == "GET" and path.startswith("/customObjects/records/") and "filters" not in unquote(query):
        return "listing records without a filter"
    return None


def looks_rate_limited(response: httpx.Response) -> bool:
    return "Retry-After" in response.headers or response.headers.get("RateLimit-Remaining") == "0"

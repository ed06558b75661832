"""Exception classes of the library, and the parser of the API's error bodies.

Every exception here renders as ONE line (``str(exc)``) that is safe to print: no token, no request
headers. :class:`ApiError` and its subclasses are raised by :mod:`reconciler.client` only;
:class:`ConfigError` by :mod:`reconciler.config` (and by the client for a refused base URL).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApiError",
    "ApiErrorItem",
    "AuthenticationFailed",
    "ConfigError",
    "DeadlineExceeded",
    "NotFound",
    "RateLimited",
    "ReconcilerError",
    "ServerError",
    "TransportFailure",
    "UnexpectedResponse",
    "ValidationFailed",
    "error_class_for",
    "format_seconds",
    "parse_error_body",
]


class ReconcilerError(Exception):
    """Base of every error the library raises on purpose."""


class ConfigError(ReconcilerError):
    """The target account cannot be resolved (bad URL, missing token variable, unknown environment)."""


class DeadlineExceeded(ReconcilerError):
    """The client's overall deadline was reached (or a wait would have passed it); nothing more is sent.

    ``label`` names the deadline as the user set it (``"the 60 s --timeout"``); ``waiting`` is the wait
    that was refused because it would end past the deadline (``None``: the deadline came during a request).
    """

    def __init__(self, method: str, path: str, *, label: str = "the deadline", waiting: float | None = None) -> None:
        self.method = method
        self.path = path
        self.label = label
        self.waiting = waiting
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.waiting is not None:
            return (f"gave up: waiting {format_seconds(self.waiting)} to retry {self.method} {self.path} "
                    f"would pass {self.label}")
        return f"gave up: {self.label} was reached during {self.method} {self.path}"

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_deadline, (self.method, self.path, self.label, self.waiting))


def _rebuild_deadline(method: str, path: str, label: str, waiting: float | None) -> DeadlineExceeded:
    return DeadlineExceeded(method, path, label=label, waiting=waiting)


def format_seconds(seconds: float) -> str:
    """``"30 s"``, ``"1.5 s"``, ``"99999 s (about 28 h)"``: a duration for a one-line message."""
    text = f"{seconds:.0f} s" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f} s"
    if seconds >= 2 * 3600:
        text += f" (about {seconds / 3600:.0f} h)"
    elif seconds >= 300:
        text += f" (about {seconds / 60:.0f} min)"
    return text


@dataclass(frozen=True)
class ApiErrorItem:
    """One entry of an error body. Every part is optional because the API's shapes differ (docs/api-notes.md §9–§10)."""

    title: str | None = None
    detail: str | None = None
    pointer: str | None = None
    code: str | None = None

    def __str__(self) -> str:
        parts = [p for p in (self.title, self.detail) if p]
        if not parts and self.code:
            parts = [self.code]
        return _one_line(": ".join(parts))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: A function that hides secrets in a text (the client's token masking). It runs on the whole text
#: BEFORE anything is cut, so a secret that straddles the cut cannot leave a prefix behind.
Mask = Callable[[str], str]


def _masked(value: str | None, mask: Mask | None) -> str | None:
    return mask(value) if value is not None and mask is not None else value


def _str_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _item_from(entry: Any) -> ApiErrorItem | None:
    if isinstance(entry, str):
        return ApiErrorItem(title=entry)
    if not isinstance(entry, dict):
        return None
    source = entry.get("source")
    pointer = None
    if isinstance(source, dict):
        # custom objects: {"type":"pointer","value":…}; other v3 resources: {"pointer":…}
        pointer = _str_or_none(source.get("pointer"))
        if pointer is None and source.get("type", "pointer") == "pointer":
            pointer = _str_or_none(source.get("value"))
    elif isinstance(source, str):
        pointer = source
    title = _str_or_none(entry.get("title")) or _str_or_none(entry.get("message"))
    detail = _str_or_none(entry.get("detail"))
    code = _str_or_none(entry.get("code")) or _str_or_none(entry.get("error"))
    if title is None and detail is None and code is None and pointer is None:
        return None
    return ApiErrorItem(title=title, detail=detail, pointer=pointer, code=code)


def parse_error_body(body: bytes | str | dict[str, Any] | list[Any] | None, *,
                     mask: Mask | None = None) -> list[ApiErrorItem]:
    """The error entries of a response body, whatever its shape.

    Accepted (docs/api-notes.md §9–§10): ``{"errors":[{"title","detail","source":{"type":"pointer","value"}}]}``,
    ``{"errors":[{"title","detail","code","source":{"pointer"}}]}``, ``{"message":…}``,
    ``{"errors":[{"status","title"}]}``, ``{}``, an empty body, and non-JSON text (kept, on one line,
    cut to 200 characters). ``mask`` is applied to every text taken from the body before it is cut.
    """
    items = _parse_error_body(body, mask)
    if mask is None:
        return items
    return [ApiErrorItem(*(_masked(v, mask) for v in (i.title, i.detail, i.pointer, i.code))) for i in items]


def _parse_error_body(body: bytes | str | dict[str, Any] | list[Any] | None, mask: Mask | None) -> list[ApiErrorItem]:
    data: Any = body
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        if not text.strip():
            return []
        try:
            data = json.loads(text)
        except ValueError:
            return [ApiErrorItem(detail=_one_line(_masked(text, mask) or "", 200))]
    if data is None:
        return []
    items: list[ApiErrorItem] = []
    if isinstance(data, list):
        entries: Iterable[Any] = data
    elif isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list):
            entries = errors
        elif isinstance(errors, dict):
            # {"errors": {"field": ["msg", …]}} (seen in other REST APIs; tolerated)
            entries = [
                {"title": f"Invalid value for field {k!r}", "detail": "; ".join(map(str, v if isinstance(v, list) else [v]))}
                for k, v in errors.items()
            ]
        else:
            entries = []
        for key in ("message", "error"):
            if _str_or_none(data.get(key)) and not isinstance(data.get(key), dict | list):
                items.append(ApiErrorItem(title=_str_or_none(data[key])))
                break
    else:
        return [ApiErrorItem(detail=_one_line(_masked(str(data), mask) or "", 200))]
    for entry in entries:
        item = _item_from(entry)
        if item is not None:
            items.append(item)
    return items


def _with_detail(text: str, detail: str) -> str:
    """``text (detail)``, or ``text`` alone when there is no detail."""
    return f"{text} ({detail})" if detail else text


class ApiError(ReconcilerError):
    """The API refused a request (or could not be reached: ``status`` is then ``None``).

    ``path`` is relative to the base URL (``/customObjects/schemas/…``), without the query string.
    ``hint`` says what to check (the URL, the network); it ends the line and is never cut.
    """

    def __init__(
        self,
        status: int | None,
        method: str,
        path: str,
        errors: Iterable[ApiErrorItem] = (),
        *,
        reason: str | None = None,
        attempts: int = 1,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.errors: list[ApiErrorItem] = list(errors)
        self.reason = reason
        self.attempts = attempts
        self.hint = hint
        super().__init__(self.message)

    @property
    def summary(self) -> str:
        """The explanation after the status: the error entries joined, or the reason phrase."""
        texts = [str(e) for e in self.errors if str(e)]
        if texts:
            return "; ".join(dict.fromkeys(texts))
        return self.reason or ""

    @property
    def message(self) -> str:
        head = f"{self.method} {self.path}: "
        status = f"{self.status} " if self.status is not None else ""
        text = _one_line(head + status + self.summary, 500).rstrip()
        hint = getattr(self, "hint", None)
        return f"{text}: {hint}" if hint else text

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (e.g. across processes), same fields
        return (
            _rebuild,
            (type(self), self.status, self.method, self.path, self.errors, self.reason, self.attempts, self.__dict__),
        )


def _rebuild(cls: type[ApiError], status: int | None, method: str, path: str, errors: list[ApiErrorItem],
             reason: str | None, attempts: int, state: dict[str, Any]) -> ApiError:
    exc = cls.__new__(cls)
    exc.__dict__.update(state)
    Exception.__init__(exc, exc.message)
    return exc


class ValidationFailed(ApiError):
    """422: the API rejected the body (slug taken, bad field, …). ``errors`` holds the pointers."""


class NotFound(ApiError):
    """404: no such schema, field or record."""


class AuthenticationFailed(ApiError):
    """401/403: the token was refused. The message names the account URL and where the token came from
    (``token_source``, e.g. ``"$AC_STAGING_TOKEN"``), never the token. ``needs_admin`` names a request
    that only admin users may make (docs/api-notes.md §2, §7.4), e.g. ``"deleting a field"``."""

    def __init__(self, status: int | None, method: str, path: str, errors: Iterable[ApiErrorItem] = (), *,
                 reason: str | None = None, attempts: int = 1, base_url: str = "", token_source: str | None = None,
                 needs_admin: str | None = None) -> None:
        self.base_url = base_url
        self.token_source = token_source
        self.needs_admin = needs_admin
        super().__init__(status, method, path, errors, reason=reason, attempts=attempts)

    @property
    def summary(self) -> str:
        account = self.base_url.removesuffix("/api/3") or "the API"
        token = f"the token in {self.token_source}" if self.token_source else "the API token"
        check = f"check that {self.token_source} holds" if self.token_source else "check that the token is"
        detail = super().summary
        if self.needs_admin:
            return (_with_detail("permission denied", detail) + f": the account at {account} refused {token} for "
                    f"{self.needs_admin}, which only admin users may do; {check} an admin user's API token "
                    "(Settings > Developer)")
        return (_with_detail("authentication failed", detail) + f": the account at {account} refused {token}; "
                f"{check} this account's API token (Settings > Developer)")


class RateLimited(ApiError):
    """429 (or a 503 at the limit) on every attempt: retries are exhausted. Or the account asked for a
    wait (``retry_after`` seconds) longer than the client's ``cap``: the client gave up at once."""

    def __init__(self, status: int | None, method: str, path: str, errors: Iterable[ApiErrorItem] = (), *,
                 reason: str | None = None, attempts: int = 1, retry_after: float | None = None,
                 cap: float | None = None) -> None:
        self.retry_after = retry_after
        self.cap = cap
        super().__init__(status, method, path, errors, reason=reason, attempts=attempts)

    @property
    def summary(self) -> str:
        if self.retry_after is not None and self.cap is not None:
            tried = "1 attempt" if self.attempts == 1 else f"{self.attempts} attempts"
            return _with_detail(f"rate limited: the account asked to wait {format_seconds(self.retry_after)}, "
                                f"more than the {format_seconds(self.cap)} cap on Retry-After; gave up after "
                                f"{tried}", super().summary)
        return _with_detail(f"rate limited, gave up after {self.attempts} attempts", super().summary)


class ServerError(ApiError):
    """5xx (after retries where retrying was safe)."""

    @property
    def summary(self) -> str:
        inner = super().summary
        if self.attempts > 1:
            return f"{inner} (after {self.attempts} attempts)".strip()
        return inner


class TransportFailure(ApiError):
    """The request got no HTTP answer: connection refused or dropped, timeout, TLS failure."""

    @property
    def summary(self) -> str:
        inner = super().summary
        if self.attempts > 1:
            return f"{inner} (after {self.attempts} attempts)"
        return inner


class UnexpectedResponse(ApiError):
    """A success status with a body that is not what the API documents (not JSON, missing key)."""


def error_class_for(status: int) -> type[ApiError]:
    """The exception class for a final (not retried) HTTP error status."""
    if status == 422:
        return ValidationFailed
    if status == 404:
        return NotFound
    if status in (401, 403):
        return AuthenticationFailed
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return ApiError

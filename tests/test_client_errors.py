"""Error bodies of every shape in docs/api-notes.md §9–§10 -> exception class and a one-line message.

Shapes the sandbox does not emit are checked on the parser directly; the live ones (422, 404, 403)
are in test_client.py against the sandbox.
"""

from __future__ import annotations

import pickle
from datetime import UTC

import pytest

from reconciler.client import parse_retry_after
from reconciler.errors import (
    ApiError,
    ApiErrorItem,
    AuthenticationFailed,
    NotFound,
    RateLimited,
    ServerError,
    TransportFailure,
    ValidationFailed,
    error_class_for,
    parse_error_body,
)

CUSTOM_OBJECTS_422 = (
    b'{"errors":[{"title":"Invalid value for field \\"schema.slug\\"","detail":"Schema slug must be unique",'
    b'"source":{"type":"pointer","value":"/data/attributes/schema/slug"}}]}'
)
CONTACTS_422 = (
    b'{"errors":[{"title":"Contact Email Address is not valid.","code":"email_invalid",'
    b'"error":"must_be_valid_email_address","source":{"pointer":"/data/attributes/email"}}]}'
)


def test_custom_objects_422_shape() -> None:
    [item] = parse_error_body(CUSTOM_OBJECTS_422)
    assert item == ApiErrorItem('Invalid value for field "schema.slug"', "Schema slug must be unique",
                                "/data/attributes/schema/slug")
    exc = ValidationFailed(422, "PUT", "/customObjects/schemas/abc", [item])
    assert str(exc) == ('PUT /customObjects/schemas/abc: 422 Invalid value for field "schema.slug": '
                        "Schema slug must be unique")


def test_other_v3_422_shape_with_code_and_pointer() -> None:
    [item] = parse_error_body(CONTACTS_422)
    assert item.pointer == "/data/attributes/email"
    assert item.code == "email_invalid"
    assert item.title == "Contact Email Address is not valid."


def test_message_shape() -> None:
    assert parse_error_body(b'{"message":"Not Found"}') == [ApiErrorItem(title="Not Found")]
    exc = NotFound(404, "GET", "/customObjects/schemas/x", parse_error_body(b'{"message":"Not Found"}'))
    assert str(exc) == "GET /customObjects/schemas/x: 404 Not Found"


def test_status_title_shape() -> None:
    [item] = parse_error_body(b'{"errors":[{"status":400,"title":"Bad Request"}]}')
    assert item.title == "Bad Request" and item.detail is None
    exc = error_class_for(400)(400, "GET", "/customObjects/records/x", [item])
    assert type(exc) is ApiError
    assert str(exc) == "GET /customObjects/records/x: 400 Bad Request"


@pytest.mark.parametrize("body", [b"", b"   ", b"{}", b"null", b"[]"])
def test_empty_bodies(body: bytes) -> None:
    assert parse_error_body(body) == []
    exc = NotFound(404, "PUT", "/customObjects/schemas/x", parse_error_body(body), reason="Not Found")
    assert str(exc) == "PUT /customObjects/schemas/x: 404 Not Found"


def test_non_json_body_is_kept_on_one_line() -> None:
    [item] = parse_error_body(b"<html>\n<body>Bad   gateway</body>\n</html>")
    assert "\n" not in str(item) and "Bad gateway" in str(item)
    exc = ServerError(502, "GET", "/x", [item], attempts=3)
    assert "\n" not in str(exc) and str(exc).startswith("GET /x: 502 ") and "after 3 attempts" in str(exc)


def test_several_errors_joined_on_one_line() -> None:
    body = (b'{"errors":[{"title":"A","detail":"one\\nline"},{"title":"B","detail":"two"},'
            b'{"title":"B","detail":"two"}]}')
    exc = ValidationFailed(422, "POST", "/customObjects/schemas", parse_error_body(body))
    assert str(exc) == "POST /customObjects/schemas: 422 A: one line; B: two"


@pytest.mark.parametrize(
    ("status", "cls"),
    [(422, ValidationFailed), (404, NotFound), (401, AuthenticationFailed), (403, AuthenticationFailed),
     (429, RateLimited), (500, ServerError), (503, ServerError), (400, ApiError), (405, ApiError)],
)
def test_status_to_class(status: int, cls: type[ApiError]) -> None:
    assert error_class_for(status) is cls


def test_authentication_failed_message_names_the_url_only() -> None:
    exc = AuthenticationFailed(403, "GET", "/customObjects/schemas", parse_error_body(b'{"message":"Forbidden"}'),
                               base_url="https://acme.api-us1.com/api/3")
    assert "authentication failed (Forbidden): the account at https://acme.api-us1.com refused" in str(exc)
    assert "\n" not in str(exc)


def test_transport_failure_and_rate_limited_messages() -> None:
    t = TransportFailure(None, "GET", "/customObjects/schemas", reason="transport failure: ConnectError", attempts=9)
    assert str(t) == "GET /customObjects/schemas: transport failure: ConnectError (after 9 attempts)"
    r = RateLimited(429, "GET", "/customObjects/schemas", [ApiErrorItem(title="Too Many Requests")], attempts=9)
    assert str(r) == "GET /customObjects/schemas: 429 rate limited, gave up after 9 attempts (Too Many Requests)"


def test_errors_pickle() -> None:
    exc = ValidationFailed(422, "PUT", "/p", parse_error_body(CUSTOM_OBJECTS_422))
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is ValidationFailed and str(again) == str(exc) and again.errors == exc.errors


def test_retry_after_parsing() -> None:
    from datetime import datetime

    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:07 GMT", now=now) == 7.0

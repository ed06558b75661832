"""The UI's app and routes: schemas, one schema, its records, one contact, the request log, login.

Every page but the login page, the stylesheet and the favicon needs the admin token
(:mod:`~reconciler.sandbox.ui.auth`); without it the answer is the login page with status 401.
Pages only read; the login POST is the one form, and it writes nothing but a cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reconciler.sandbox.ui import auth, reads
from reconciler.sandbox.ui.render import STATIC, html

#: Records per page unless ``?limit=`` says otherwise (at most ``MAX_LIMIT``).
PAGE_SIZE = 25
MAX_LIMIT = 100
#: Requests shown by ``/requests`` unless ``?limit=`` says otherwise (at most ``MAX_REQUESTS``).
REQUESTS_SHOWN = 100
MAX_REQUESTS = 1000
#: The login form's body is a token and a path: anything longer is refused unread.
MAX_LOGIN_BODY = 8192


class LoginRequired(Exception):
    """Raised by the guard; answered with the login page (401)."""


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        number = default
    return min(max(number, low), high)


def build_ui_app(sandbox: Callable[[], Any]) -> FastAPI:
    """The UI's ASGI app; ``sandbox()`` gives the SandboxState (store, settings, traffic) it reads."""

    def guard(request: Request) -> None:
        if not auth.signed_in(request, sandbox().settings.token):
            raise LoginRequired()

    open_routes = APIRouter(include_in_schema=False)
    pages = APIRouter(include_in_schema=False, dependencies=[Depends(guard)])

    def login_page(request: Request, status: int, error: str = "", target: str | None = None) -> Response:
        nxt = auth.safe_next(target if target is not None else request.url.path +
                             (f"?{request.url.query}" if request.url.query else ""))
        return html("login.html", status, request=request, title="Log in", nav="login", error=error, next=nxt)

    @open_routes.get("/login")
    async def login_form(request: Request) -> Response:
        return login_page(request, 200, target=request.query_params.get("next") or "/")

    @open_routes.post("/login")
    async def login(request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_LOGIN_BODY:
            return login_page(request, 413, "The form was too large.", "/")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BODY:
                return login_page(request, 413, "The form was too large.", "/")
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        given = (form.get("token") or [""])[0].strip()
        target = auth.safe_next((form.get("next") or ["/"])[0])
        token = sandbox().settings.token
        if not auth.token_matches(given, token):
            return login_page(request, 401, "That is not the sandbox's API token.", target)
        response = RedirectResponse(target, status_code=303)
        auth.set_cookie(response, token)
        return response

    @open_routes.get("/ui-static/style.css")
    async def stylesheet() -> Response:
        return Response((STATIC / "style.css").read_bytes(), media_type="text/css",
                        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"})

    @open_routes.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    @pages.get("/")
    async def schemas(request: Request) -> Response:
        return html("schemas.html", request=request, title="Schemas", nav="schemas",
                    schemas=reads.schema_summaries(sandbox().store))

    @pages.get("/schemas")
    async def schemas_again() -> Response:
        return RedirectResponse("/", status_code=308)

    def schema_or_404(schema_id: str) -> dict[str, Any]:
        doc = sandbox().store.get_schema(schema_id)
        if doc is None:
            raise StarletteHTTPException(404)
        return doc

    @pages.get("/schemas/{schema_id}")
    async def schema(request: Request, schema_id: str) -> Response:
        store = sandbox().store
        doc = schema_or_404(schema_id)
        return html("schema.html", request=request, title=_label(doc, "singular"), nav="schemas", schema=doc,
                    records=reads.record_count(store, schema_id), schema_names=reads.schema_names(store),
                    marked=reads.MARKED)

    @pages.get("/schemas/{schema_id}/records")
    async def records(request: Request, schema_id: str) -> Response:
        store = sandbox().store
        doc = schema_or_404(schema_id)
        cols = reads.columns(doc)
        params = request.query_params
        chosen: list[tuple[str, str, str]] = []
        form: dict[str, tuple[str, str]] = {}
        error = ""
        for col in cols:
            op = params.get(f"op.{col.prop}", "eq")
            value = params.get(f"v.{col.prop}", "")
            form[col.prop] = (op, value)
            if op not in reads.OPERATORS:
                error = f"{col.label}: {op!r} is not one of the API's filter operators"
            elif value != "" or op in ("blank", "not_blank"):
                chosen.append((col.prop, op, value))
        limit = _int(params.get("limit"), PAGE_SIZE, 1, MAX_LIMIT)
        number = _int(params.get("page"), 1, 1, 10**9)
        page = reads.RecordPage(0, [], 0, limit)
        if not error:
            try:
                conds = reads.compile_filters(doc, chosen)
            except reads.FilterError as exc:
                error = str(exc)
            else:
                page = reads.record_page(store, doc, conds, (number - 1) * limit, limit)
        last = max(1, -(-page.total // limit))
        keep = [(k, v) for k, v in params.multi_items() if k != "page"]

        def page_link(n: int) -> str:
            return "?" + urlencode([*keep, ("page", str(n))])

        return html("records.html", 400 if error else 200, request=request, title=_label(doc, "plural"),
                    nav="schemas", schema=doc, columns=cols, fields=reads.live_fields(doc), form=form,
                    operators=reads.OPERATORS, error=error, page=page, number=number, last=last,
                    page_link=page_link, filtered=bool(chosen), active=len(chosen), shown=reads.shown_value,
                    contact_name=reads.contact_name, schema_names=reads.schema_names(store))

    @pages.get("/contacts/{contact_id}")
    async def contact(request: Request, contact_id: str) -> Response:
        store = sandbox().store
        doc = reads.contacts_by_id(store, [contact_id]).get(contact_id)
        if doc is None:
            raise StarletteHTTPException(404)
        groups = reads.records_of_contact(store, contact_id)

        def all_link(group: reads.ContactRecords) -> str:
            prop = f"relationships.{group.relationship['id']}"
            return f"/schemas/{quote(group.schema['id'])}/records?" + urlencode(
                [(f"op.{prop}", "eq"), (f"v.{prop}", contact_id)])

        return html("contact.html", request=request, title=reads.contact_name(doc) or f"Contact {contact_id}",
                    nav="", contact=doc, groups=groups, all_link=all_link, shown=reads.shown_value,
                    live_fields=reads.live_fields)

    @pages.get("/requests")
    async def requests_log(request: Request) -> Response:
        state = sandbox()
        limit = _int(request.query_params.get("limit"), REQUESTS_SHOWN, 1, MAX_REQUESTS)
        log = state.traffic.log
        secrets = [t for t in (state.settings.token, *state.settings.member_tokens) if t]
        rows = [_request_row(e, secrets) for e in reversed(log[-limit:])]
        return html("requests.html", request=request, title="Requests", nav="requests", rows=rows,
                    total=len(log), limit=limit)

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(open_routes)
    app.include_router(pages)

    async def login_required(request: Request, _exc: Exception) -> Response:
        return login_page(request, 401)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            return html("error.html", 405, request=request, title="Not allowed", nav="",
                        message="These pages are read-only.")
        return html("error.html", exc.status_code, request=request, title="Not found", nav="",
                    message="There is nothing at this address.")

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(StarletteHTTPException, http_error)
    return app


def _label(doc: dict[str, Any], which: str) -> str:
    return str((doc.get("labels") or {}).get(which) or doc.get("slug") or doc.get("id"))


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, "[token]")
    return text


def _request_row(exchange: Any, secrets: list[str]) -> dict[str, Any]:
    """One line of the request log, any token in the path or query replaced by ``[token]``."""
    where = exchange.path + (f"?{exchange.query}" if exchange.query else "")
    return {"method": exchange.method, "path": _redact(where, secrets),
            "status": "" if exchange.status is None else str(exchange.status),
            "ms": "" if exchange.elapsed is None else f"{exchange.elapsed * 1000:.0f}",
            "fault": exchange.fault or "", "closed": exchange.status is None and exchange.elapsed is not None}


__all__ = ["build_ui_app"]

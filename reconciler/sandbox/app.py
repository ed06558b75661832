"""``create_app``: the FastAPI application of the sandbox, its layers and its error handlers.

Layers, outermost first: the web interface's split (its pages never reach the API layers) ->
request log (traffic) -> faults -> auth, rate limit and body size (gate) -> routes. The sandbox's
OpenAPI document is served at ``openapi.OPENAPI_PATH``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from reconciler.sandbox import api_contacts, api_records, api_schemas, openapi
from reconciler.sandbox.faults import FaultMiddleware
from reconciler.sandbox.gate import GateMiddleware
from reconciler.sandbox.rules import Unprocessable
from reconciler.sandbox.seed import seed_unknown_type_schema
from reconciler.sandbox.settings import SandboxSettings
from reconciler.sandbox.state import SandboxState
from reconciler.sandbox.store import Store
from reconciler.sandbox.traffic import TrafficMiddleware, printer
from reconciler.sandbox.ui import UiSplit
from reconciler.sandbox.wire import BadRequest, BodyTooLarge, NotFound, bad_request, message, unprocessable


async def _unprocessable(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Unprocessable)
    return unprocessable(exc.errors)


async def _bad_request(_request: Request, exc: Exception) -> Response:
    detail = str(exc) if str(exc).startswith(("Malformed", "The request body")) else None
    return bad_request(detail)


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return message(404)


async def _too_large(_request: Request, _exc: Exception) -> Response:
    return message(413)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return message(exc.status_code, exc.headers)


async def _server_error(_request: Request, _exc: Exception) -> Response:
    return message(500)


#: The OpenAPI title: how a client tells a served sandbox from a real account (``seed-records``).
TITLE = "ActiveCampaign Custom Objects sandbox"

def create_app(settings: SandboxSettings | None = None, store: Store | None = None) -> FastAPI:
    """A sandbox app. Without ``store`` it uses a fresh in-memory database. The app's
    ``state.sandbox`` (a :class:`SandboxState`) holds settings, store, traffic, limiter, faults."""
    settings = settings or SandboxSettings()
    state = SandboxState(settings=settings, store=store if store is not None else Store(":memory:"))
    if settings.seed_unknown_type_schema:
        seed_unknown_type_schema(state.store)
    app = FastAPI(title=TITLE, docs_url=None, redoc_url=None,
                  openapi_url=openapi.OPENAPI_PATH)
    app.state.sandbox = state
    for router in (api_schemas.router, api_records.router, api_contacts.router):
        app.include_router(router)
    openapi.install(app)
    app.add_exception_handler(Unprocessable, _unprocessable)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(BadRequest, _bad_request)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
    # add_middleware puts the last one outermost
    app.add_middleware(GateMiddleware, settings=lambda: state.settings, limiter=state.limiter)
    app.add_middleware(FaultMiddleware, faults=lambda: state.faults, settings=lambda: state.settings)
    app.add_middleware(TrafficMiddleware, traffic=state.traffic,
                       on_done=printer() if settings.log_requests else None)
    app.add_middleware(UiSplit, sandbox=lambda: app.state.sandbox)
    return app

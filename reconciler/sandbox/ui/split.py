"""``UiSplit``: the outermost ASGI layer, routing the UI's paths to the UI app and the rest to the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

#: The UI's paths. The API lives under ``/api/``; nothing here overlaps it.
UI_PATHS = frozenset({"/", "/login", "/requests", "/schemas", "/favicon.ico"})
UI_PREFIXES = ("/schemas/", "/contacts/", "/ui-static/")


def is_ui_path(path: str) -> bool:
    return path in UI_PATHS or path.startswith(UI_PREFIXES)


class UiSplit:
    """Sends HTTP requests for UI paths to the UI app (built on first use; ``sandbox()`` gives the
    :class:`~reconciler.sandbox.state.SandboxState` whose store and settings the pages read),
    everything else to the wrapped API app."""

    def __init__(self, app: ASGIApp, sandbox: Callable[[], Any]) -> None:
        self.app = app
        self.sandbox = sandbox
        self._ui: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_ui_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._ui is None:
            from reconciler.sandbox.ui.pages import build_ui_app

            self._ui = build_ui_app(self.sandbox)
        await self._ui(scope, receive, send)

"""Fixtures of the web interface's in-process tests: one sandbox app, two clients on it over httpx's
ASGI transport: ``api`` sends the admin token, ``browser`` sends nothing of its own (cookies only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from reconciler.sandbox import SandboxSettings, create_app
from tests.sandbox.helpers import TOKEN, _SyncASGI


@dataclass
class Ui:
    app: Any
    api: httpx.Client
    browser: httpx.Client

    @property
    def state(self) -> Any:
        return self.app.state.sandbox

    def page(self, path: str, **kwargs: Any) -> httpx.Response:
        """A page fetched as a script does: with the ``Api-Token`` header."""
        return self.browser.get(path, headers={"Api-Token": TOKEN}, **kwargs)


def make_ui(**overrides: Any) -> Ui:
    app = create_app(SandboxSettings(**{"rate_limit": 0, **overrides}))
    api = _SyncASGI(httpx.ASGITransport(app=app), app)
    browser = _SyncASGI(httpx.ASGITransport(app=app), app)
    del browser.headers["Api-Token"]
    return Ui(app, api, browser)


@pytest.fixture
def ui() -> Iterator[Ui]:
    made = make_ui()
    yield made
    made.api.close()
    made.browser.close()

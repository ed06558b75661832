"""Jinja2 rendering of the UI's templates: autoescaped (every stored value is text, never markup),
an absent property renders empty, and sent with headers that forbid scripts, frames and caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from starlette.responses import HTMLResponse

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

_ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True)

#: No script runs on these pages (there is none), no other site frames them, no referrer leaks.
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def html(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The rendered page ``template`` with ``context`` (``nav`` names the current main link)."""
    context.setdefault("nav", "")
    return HTMLResponse(_ENV.get_template(template).render(**context), status_code=status, headers=HEADERS)

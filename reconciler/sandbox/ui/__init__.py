"""The sandbox's web interface: read-only, server-rendered pages of the store (no JavaScript).

``UiSplit`` sits outside every API layer and sends the UI's paths (:func:`is_ui_path`) straight to
the UI's own app, so page views are not API requests: they are not in the request log, not counted
by the rate limiter and never get an injected fault. The API's OpenAPI document does not list them.
"""

from __future__ import annotations

from reconciler.sandbox.ui.split import UiSplit, is_ui_path

__all__ = ["UiSplit", "is_ui_path"]

"""The embedded ActiveCampaign Custom Objects emulator (FastAPI + SQLite).

It plays the vendor: nothing here imports from ``reconciler`` outside ``reconciler.sandbox``.
Every behaviour the API docs leave open is a named switch of :class:`SandboxSettings`, described by
the registry in ``quirks.py``; ``SandboxSettings.from_profile("documented" | "pessimistic")`` bundles them.
FastAPI and uvicorn are imported lazily, on first use of ``create_app`` / ``serve`` / ``running_sandbox``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.sandbox.settings import SandboxSettings

if TYPE_CHECKING:
    from reconciler.sandbox.app import create_app
    from reconciler.sandbox.faults import Faults
    from reconciler.sandbox.server import serve
    from reconciler.sandbox.store import Store
    from reconciler.sandbox.testing import running_sandbox

__all__ = ["Faults", "SandboxSettings", "Store", "create_app", "running_sandbox", "serve"]

_LAZY = {
    "create_app": "reconciler.sandbox.app",
    "Faults": "reconciler.sandbox.faults",
    "serve": "reconciler.sandbox.server",
    "Store": "reconciler.sandbox.store",
    "running_sandbox": "reconciler.sandbox.testing",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reconciler.sandbox' has no attribute {name!r}")

"""``serve``: run the sandbox over HTTP with uvicorn (no access log: nothing that could leak headers)."""

from __future__ import annotations

from reconciler.sandbox.settings import SandboxSettings


def serve(host: str = "127.0.0.1", port: int = 8080, db: str | None = None,
          settings: SandboxSettings | None = None) -> None:
    """Serve until interrupted. ``db`` is a SQLite file path (None: in memory, lost on exit)."""
    import uvicorn

    from reconciler.sandbox.app import create_app
    from reconciler.sandbox.store import Store

    store = Store(db or ":memory:")
    try:
        app = create_app(settings or SandboxSettings(), store)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        store.close()

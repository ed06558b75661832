"""``serve``: run the sandbox over HTTP with uvicorn (no access log: nothing that could leak headers;
``SandboxSettings.log_requests`` prints its own request lines, without headers)."""

from __future__ import annotations

import socket

from reconciler.sandbox.settings import SandboxSettings


def serve(host: str = "127.0.0.1", port: int = 8080, db: str | None = None,
          settings: SandboxSettings | None = None, *, sock: socket.socket | None = None) -> None:
    """Serve until interrupted. ``db`` is a SQLite file path (None: in memory, lost on exit).

    ``sock``: an already bound socket (the CLI binds it first, to report a busy port in one line and
    to print the real port of ``--port 0``); ``host``/``port`` are then ignored.
    """
    import uvicorn

    from reconciler.sandbox.app import create_app
    from reconciler.sandbox.store import Store

    store = Store(db or ":memory:")
    try:
        app = create_app(settings or SandboxSettings(), store)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        server.run(sockets=[sock] if sock is not None else None)
    finally:
        store.close()

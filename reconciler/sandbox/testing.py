"""``running_sandbox``: the sandbox served by uvicorn in a background thread on a free loopback port.

    with running_sandbox() as sb:
        httpx.get(sb.url + "/api/3/customObjects/schemas", headers={"Api-Token": sb.settings.token})
        sb.traffic.writes()   # the request log; sb.state.limiter.limited; sb.store.seed_records(...)

End-to-end tests run under both quirk profiles with :data:`PROFILES`:

    @pytest.mark.parametrize("profile", PROFILES)
    def test_x(profile):
        with running_sandbox(SandboxSettings.from_profile(profile, token=TOKEN, rate_limit=0)) as sb: ...
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox.quirks import PROFILES
from reconciler.sandbox.settings import SandboxSettings

__all__ = ["PROFILES", "RunningSandbox", "running_sandbox"]


@dataclass
class RunningSandbox:
    url: str
    app: Any  # FastAPI
    store: Any  # Store
    settings: SandboxSettings

    @property
    def state(self) -> Any:
        return self.app.state.sandbox

    @property
    def traffic(self) -> Any:
        return self.app.state.sandbox.traffic

    @property
    def headers(self) -> dict[str, str]:
        return {"Api-Token": self.settings.token}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_sandbox(settings: SandboxSettings | None = None, db: str = ":memory:",
                    timeout: float = 10.0) -> Iterator[RunningSandbox]:
    """Start, wait until it listens, yield, shut down cleanly (the store is closed afterwards)."""
    import uvicorn

    from reconciler.sandbox.app import create_app
    from reconciler.sandbox.store import Store

    settings = settings or SandboxSettings()
    store = Store(str(db))
    app = create_app(settings, store)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", access_log=False,
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            store.close()
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.01)
    try:
        yield RunningSandbox(f"http://127.0.0.1:{port}", app, store, settings)
    finally:
        server.should_exit = True
        thread.join(timeout)
        store.close()

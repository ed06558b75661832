"""What one sandbox app holds: settings, store, traffic log, rate limiter and faults."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ratelimit import RateLimiter
from reconciler.sandbox.settings import SandboxSettings
from reconciler.sandbox.store import Store
from reconciler.sandbox.traffic import Traffic


@dataclass
class SandboxState:
    settings: SandboxSettings
    store: Store
    traffic: Traffic = field(default_factory=Traffic)
    faults: Faults | None = None

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(lambda: self.settings.rate_limit)
        if self.faults is None and self.settings.faults:
            self.faults = Faults.parse(self.settings.faults, self.settings.fault_seed)

    def set_faults(self, spec: str | None, seed: int | None = None) -> None:
        """Switch faults at run time ("" or None turns them off); ValueError on a bad spec."""
        self.faults = Faults.parse(spec, seed) if spec else None


def state_of(request: Request) -> SandboxState:
    return request.app.state.sandbox

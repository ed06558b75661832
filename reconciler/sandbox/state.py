"""What one sandbox app holds: settings, store, traffic log, rate limiter, faults, list lag and the
random source of shuffled lists."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from reconciler.sandbox.faults import Faults
from reconciler.sandbox.lag import SchemaListLag
from reconciler.sandbox.ratelimit import RateLimiter
from reconciler.sandbox.settings import SandboxSettings
from reconciler.sandbox.store import SHUFFLE_PRIME, Store
from reconciler.sandbox.traffic import Traffic


@dataclass
class SandboxState:
    settings: SandboxSettings
    store: Store
    traffic: Traffic = field(default_factory=Traffic)
    faults: Faults | None = None
    lag: SchemaListLag = field(default_factory=SchemaListLag)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(lambda: self.settings.rate_limit)
        if self.faults is None and self.settings.faults:
            self.faults = Faults.parse(self.settings.faults, self.settings.fault_seed)
        seed = self.settings.list_seed if self.settings.list_seed is not None else self.settings.fault_seed
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def set_faults(self, spec: str | None, seed: int | None = None) -> None:
        """Switch faults at run time ("" or None turns them off); ValueError on a bad spec."""
        self.faults = Faults.parse(spec, seed) if spec else None

    def shuffled(self, items: list[Any]) -> list[Any]:
        """``items`` in a random order (reproducible with ``list_seed`` / ``fault_seed``)."""
        out = list(items)
        with self._rng_lock:
            self._rng.shuffle(out)
        return out

    def shuffle_key(self) -> tuple[int, int]:
        """The ``(a, b)`` of one shuffled record list (``Store.list_records``)."""
        with self._rng_lock:
            return self._rng.randrange(1, SHUFFLE_PRIME), self._rng.randrange(SHUFFLE_PRIME)


def state_of(request: Request) -> SandboxState:
    return request.app.state.sandbox


def is_member(request: Request) -> bool:
    """The request came with one of ``SandboxSettings.member_tokens`` (a non-admin user)."""
    return bool(request.scope.get("sandbox.member"))

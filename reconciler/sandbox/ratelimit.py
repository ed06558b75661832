"""Token bucket per API token (U19, a guess for the window): ``rate`` req/s, burst = the rate."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # whole seconds, >= 1 when refused


class RateLimiter:
    """``rate`` is read through ``rate()`` on each call, so settings can change at run time."""

    def __init__(self, rate: Callable[[], float], clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        self.allowed = 0
        self.limited = 0

    def take(self, key: str) -> Decision | None:
        """Spend one token for ``key``; None when the limiter is off (rate 0)."""
        rate = float(self._rate() or 0)
        if rate <= 0:
            return None
        burst = max(1.0, rate)
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                tokens -= 1.0
                self._buckets[key] = (tokens, now)
                self.allowed += 1
                return Decision(True, math.ceil(rate), int(tokens), 0)
            self._buckets[key] = (tokens, now)
            self.limited += 1
            return Decision(False, math.ceil(rate), 0, max(1, math.ceil((1.0 - tokens) / rate)))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self.allowed = self.limited = 0

"""The client's rate limiter: an adaptive asyncio token bucket (docs/api-notes.md §1, 5 req/s per account)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: The adaptive limiter never goes below this rate (requests/s), whatever the 429s say.
MIN_RATE = 0.2
#: How fast a slowed-down limiter climbs back: this fraction of its configured rate per second after
#: the pause that followed a 429 (from the floor to the full rate in about 10 s). With time, not per
#: run of successes: at a low rate a run of successes takes long to come, and against a 1 req/s
#: account with 20 % extra 429s a per-run climb kept the client at the floor, 5 s a request.
_RECOVERY_PER_S = 0.1
SleepFn = Callable[[float], Awaitable[Any]]


class TokenBucket:
    """An asyncio token bucket shared by concurrent requests: ``rate`` tokens/s, ``burst`` at most.

    Waiters are served in arrival order (one lock). Uses the real clock: it paces real requests.

    The rate adapts (multiplicative decrease, additive increase): :meth:`slow_down` (a 429) halves it,
    not below ``min_rate``, and turns bursts off; from the end of the pause that follows, the rate
    climbs back linearly, by :data:`_RECOVERY_PER_S` of the configured rate each second, and the burst
    comes back once ``max_rate`` is reached. The tokens accrue at the climbing rate (an integral, not
    the rate of the moment), so a request queued at a low rate is let through as soon as the climb
    allows. :meth:`limit_to` lowers the ceiling ``max_rate`` below the configured ``rate`` (the
    account's own ``RateLimit-Limit``).
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        min_rate: float = MIN_RATE,
        clock: Callable[[], float] = time.monotonic,
        sleep: SleepFn = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.configured_rate = self.max_rate = float(rate)
        self.min_rate = min(self.max_rate, float(min_rate))
        self.configured_burst = self.max_burst = self.burst = float(burst if burst is not None else max(1.0, rate))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock: asyncio.Lock | None = None
        self._climb = self.max_rate * _RECOVERY_PER_S  # requests/s gained per second
        self._base = self.max_rate  # the rate at _climb_from, climbing after it
        self._climb_from = -math.inf
        self._calm_after = -math.inf  # a 429 to a request sent before this instant changes nothing
        self.waited = 0.0
        self.slowdowns = 0

    def _rate_at(self, t: float) -> float:
        return min(self.max_rate, self._base + self._climb * max(0.0, t - self._climb_from))

    @property
    def rate(self) -> float:
        """The rate now (requests/s)."""
        return self._rate_at(self._clock())

    def _accrued(self, t: float) -> float:
        """Tokens accrued from ``_climb_from`` to ``t`` (negative before it): the integral of the rate."""
        tau = t - self._climb_from
        if tau <= 0:
            return self._base * tau
        ramp = (self.max_rate - self._base) / self._climb if self._base < self.max_rate else 0.0
        if tau <= ramp:
            return self._base * tau + self._climb * tau * tau / 2.0
        return self._base * ramp + self._climb * ramp * ramp / 2.0 + self.max_rate * (tau - ramp)

    def _refill(self) -> None:
        now = self._clock()
        if self._climb_from == -math.inf:
            gained = (now - self._stamp) * self.max_rate
        else:
            gained = self._accrued(now) - self._accrued(self._stamp)
        if self._rate_at(now) >= self.max_rate:
            self.burst = self.max_burst
        self._tokens = min(self.burst, self._tokens + gained)
        self._stamp = now

    def _wait_for(self, need: float) -> float:
        """Seconds until ``need`` more tokens have accrued (at most: the climb is counted without its cap)."""
        now = self._clock()
        rate = self._rate_at(now)
        if rate >= self.max_rate or now < self._climb_from:
            return need / rate
        return (-rate + math.sqrt(rate * rate + 2.0 * self._climb * need)) / self._climb

    async def acquire(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1.0 - 1e-9:  # (a wait computed to the token can fall short by a rounding)
                    self._tokens -= 1.0
                    return
                wait = self._wait_for(1.0 - self._tokens)
                self.waited += wait
                await self._sleep(wait)

    def drain(self) -> None:
        """Empty the bucket (the server thinks we are over, so slow everyone down)."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)

    def limit_to(self, rate: float, burst: float) -> None:
        """Set the ceiling to ``rate`` (and ``burst``), never above the configured ones: the account's
        own limit, from its ``RateLimit-Limit`` header."""
        rate = min(self.configured_rate, max(self.min_rate, rate))
        if rate == self.max_rate:
            return
        self._refill()
        self.max_rate = rate
        self.max_burst = min(self.configured_burst, max(1.0, burst))
        self._base = min(self._base, rate)
        self.burst = min(self.burst, self.max_burst)
        self._tokens = min(self._tokens, self.burst)

    def slow_down(self, sent_at: float | None = None, *, settle: float = 0.0) -> bool:
        """A 429: halve the rate (not below ``min_rate``), no bursts, one token at most. True if it did.

        ``settle`` is the pause that follows (the ``Retry-After``): the rate stays down during it and
        climbs after it. A 429 to a request sent (``sent_at``) before the end of the last such pause
        reports the congestion that slow-down already answered: it changes nothing, so eight requests
        refused together halve the rate once, not eight times.
        """
        if sent_at is not None and sent_at < self._calm_after:
            return False
        self._refill()
        now = self._clock()
        settle = max(0.0, settle)
        self._base = max(self.min_rate, self._rate_at(now) / 2.0)
        self._climb_from = self._calm_after = now + settle
        self.burst = 1.0
        # one token, no more: the pause (which the client waits out before it asks for a token) spaces
        # the first request after it; the rate spaces the others
        self._tokens = min(self._tokens, 1.0)
        self.slowdowns += 1
        return True


"""Many accounts at once: pick environments from ``reconciler.yaml`` and run one job per environment
concurrently, each with its own client (so each under its own rate limit), collecting a result or a
one-line error per environment. The exit code of the whole run is the most severe one (1 > 3 > 2 > 0).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reconciler.errors import ConfigError, ReconcilerError

if TYPE_CHECKING:
    from reconciler.config import Target

__all__ = ["EnvResult", "environment_names", "most_severe", "run_environments"]

T = TypeVar("T")

#: Exit codes from most to least severe: error, refused, changes/drift, ok.
_RANK = {1: 3, 3: 2, 2: 1, 0: 0}


def most_severe(codes: Iterable[int]) -> int:
    """The exit code that wins: 1 (error) > 3 (refused) > 2 (changes/drift) > 0 (ok)."""
    best = 0
    for code in codes:
        if _RANK.get(code, 3) > _RANK.get(best, 3):
            best = code
    return best


def environment_names(environments: Mapping[str, Any], chosen: Sequence[str], all_envs: bool) -> list[str]:
    """The environments to run, in the order given (``--all-envs``: every one, in file order).

    Raises :class:`ConfigError` for an unknown name or for ``--all-envs`` without environments.
    """
    known = list(environments)
    if all_envs:
        if not known:
            raise ConfigError("--all-envs: reconciler.yaml defines no environments")
        names = known + [n for n in chosen if n not in known]
    else:
        names = list(dict.fromkeys(chosen))
    unknown = [n for n in names if n not in environments]
    if unknown:
        raise ConfigError(f'unknown environment "{unknown[0]}" in reconciler.yaml '
                          f"(defined: {', '.join(sorted(known)) or 'none'})")
    return names


@dataclass
class EnvResult(Generic[T]):
    """One environment's outcome: ``value`` or a one-line ``error`` (never both)."""

    name: str
    target: Target | None = None
    value: T | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def run_environments(names: Sequence[str], resolve: Callable[[str], Target],
                           job: Callable[[Target], Awaitable[T]]) -> list[EnvResult[T]]:
    """Resolve and run ``job`` for every environment concurrently; results in ``names`` order.

    A failure in one environment (bad config, API error) is recorded as its ``error`` and does not
    stop the others. Unexpected exceptions are recorded too, unless ``RECONCILER_DEBUG`` is set.
    """

    async def one(name: str) -> EnvResult[T]:
        result: EnvResult[T] = EnvResult(name)
        try:
            result.target = resolve(name)
            result.value = await job(result.target)
        except ReconcilerError as exc:
            result.error = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        except Exception as exc:
            if os.environ.get("RECONCILER_DEBUG"):
                raise
            result.error = f"Internal error: {exc.__class__.__name__}: {exc}"
        return result

    return list(await asyncio.gather(*(one(n) for n in names)))

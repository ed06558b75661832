"""Lists that lag writes (U20, a guess: the live record list is eventually consistent, S10).

``SchemaListLag`` remembers, for each schema written through the API in the last ``lag_s`` seconds,
its versions (the one before the first write in the window, then each write's); ``GET /schemas``
lists then show each schema as it was ``lag_s`` seconds ago: a new schema is absent, a changed one
shows its old state, a deleted one is still listed. Get-by-id reads the store and is current.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]


class SchemaListLag:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._versions: dict[str, list[tuple[float, Doc | None]]] = {}

    def wrote(self, schema_id: str, before: Doc | None, after: Doc | None, lag_s: float) -> None:
        """A write through the API: ``before`` / ``after`` are the documents (None: absent)."""
        if lag_s <= 0:
            return
        with self._lock:
            versions = self._versions.setdefault(schema_id, [(-math.inf, before)])
            versions.append((self._clock(), after))

    def _settle(self, cutoff: float) -> None:
        """Keep, per schema, only the versions from the last one written before ``cutoff`` on, and
        forget schemas whose latest version is that old (lists show them as they are)."""
        for sid in list(self._versions):
            versions = self._versions[sid]
            last_old = max(i for i, (t, _) in enumerate(versions) if t <= cutoff)
            versions[:] = versions[last_old:]
            if len(versions) == 1:
                del self._versions[sid]

    def view(self, current: Callable[[], list[Doc]], lag_s: float) -> list[Doc] | None:
        """The schema list as lagging lists show it (creation order), or None when nothing was
        written in the last ``lag_s`` seconds (lists show ``current()``, the store's list, as it is)."""
        with self._lock:
            self._settle(self._clock() - max(lag_s, 0.0))
            if not self._versions:
                return None
            visible = {sid: versions[0][1] for sid, versions in self._versions.items()}
        shown = [d for d in current() if d["id"] not in visible]
        shown += [doc for doc in visible.values() if doc is not None]
        return sorted(shown, key=lambda d: str(d.get("createdTimestamp", "")))

"""Machine-readable progress of ``apply --json``: one JSON object per line, as Terraform's ``-json``.

Every event has ``@message`` (the line a person would have read), ``@timestamp`` (UTC, ISO 8601)
and ``type``; the other keys depend on the type (:data:`EVENT_TYPES`). Objects are written with
``ensure_ascii``, so no event carries a control character or a raw non-ASCII byte to a terminal or
a log; no event carries a token (targets are named by URL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["EVENTS_VERSION", "EVENT_TYPES", "EventStream"]

#: The version of the event format, in the first event (``version``).
EVENTS_VERSION = 1

#: Event types and what each holds besides ``@message``, ``@timestamp`` and ``type``.
EVENT_TYPES = {
    "version": "reconciler (the tool's version), events (EVENTS_VERSION)",
    "target": "name, url: the account (never its token)",
    "planned": "summary {add, change, destroy, blocked, errors}, changes [{key, kind, action, describe}]",
    "refused": "reasons: the safety gates that refused the plan (nothing was changed)",
    "backup": "skipped (--no-backup), records, subject, directory: the records saved before the first write",
    "copy": "subject, done, total, copied, eta_s: a field migration's progress (every tenth of its records)",
    "step": "key, kind, action, slug, describe, status (done, failed, unknown, not started, not needed), "
            "elapsed_s, error",
    "summary": "outcome (applied, no_changes, refused, cancelled, stopped, interrupted, unverified, differs, "
               "error), added, changed, destroyed, exit_code",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventStream:
    """Writes events through ``write`` (one line each, no newline given: ``click.echo`` adds it)."""

    def __init__(self, write: Callable[[str], None], now: Callable[[], str] = _now) -> None:
        self._write = write
        self._now = now

    def emit(self, type_: str, message: str, **data: Any) -> None:
        """One event of ``type_`` (a key of :data:`EVENT_TYPES`)."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        event = {"@message": message, "@timestamp": self._now(), "type": type_, **data}
        self._write(json.dumps(event, ensure_ascii=True, separators=(",", ":"), default=str))

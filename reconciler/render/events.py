"""Machine-readable progress of ``apply --json``: one JSON object per line, as Terraform's ``-json``.

Every event has ``@message`` (the line a person would have read), ``@timestamp`` (UTC, ISO 8601)
and ``type``; the other keys depend on the type: one model per type below, the union of them is
:data:`Event`, and ``reconciler json-schema --kind events`` publishes its JSON Schema (what each
line validates against). :meth:`EventStream.emit` checks each event against its model before
writing it. Objects are written with ``ensure_ascii``, so no event carries a control character or
a raw non-ASCII byte to a terminal or a log; no event carries a token (targets are named by URL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = ["EVENTS_VERSION", "EVENT_TYPES", "Event", "EventStream", "events_json_schema"]

#: The version of the event format, in the first event (``version``).
EVENTS_VERSION = 1


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    message: str = Field(alias="@message")
    timestamp: str = Field(alias="@timestamp", pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class VersionEvent(_Event):
    """The first event: the tool's version and the event format's."""

    type: Literal["version"]
    reconciler: str
    events: int


class TargetEvent(_Event):
    """The account (never its token)."""

    type: Literal["target"]
    name: str
    url: str


class _PlannedChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    kind: str
    action: Literal["add", "update", "delete", "copy"]
    describe: str


class PlannedEvent(_Event):
    """The plan about to be applied: its counts and its changes."""

    type: Literal["planned"]
    summary: dict[str, int]
    changes: list[_PlannedChange]


class RefusedEvent(_Event):
    """The safety gates that refused the plan (nothing was changed)."""

    type: Literal["refused"]
    reasons: list[str]


class WaitEvent(_Event):
    """The client waits over 2 s before sending again (a 429's Retry-After, a backoff): its line."""

    type: Literal["wait"]


class BackupEvent(_Event):
    """A backup made before the first write, or ``skipped`` (``--no-backup``)."""

    type: Literal["backup"]
    skipped: bool
    records: int | None = None
    subject: str | None = None
    directory: str | None = None


class CopyEvent(_Event):
    """A field migration's progress (every tenth of its records)."""

    type: Literal["copy"]
    subject: str
    done: int
    total: int
    copied: int
    eta_s: float | None


class StepEvent(_Event):
    """One change's step: what became of it."""

    type: Literal["step"]
    key: str
    kind: str
    action: Literal["add", "update", "delete", "copy"]
    slug: str
    describe: str
    status: Literal["done", "failed", "unknown", "not started", "not needed"]
    elapsed_s: float
    error: str | None


class SummaryEvent(_Event):
    """The last event: the outcome and the exit code."""

    type: Literal["summary"]
    outcome: Literal["applied", "no_changes", "refused", "cancelled", "stopped", "interrupted", "unverified",
                     "differs", "error"]
    added: int
    changed: int
    destroyed: int
    exit_code: int


_MODELS: tuple[type[_Event], ...] = (VersionEvent, TargetEvent, PlannedEvent, RefusedEvent, WaitEvent, BackupEvent,
                                     CopyEvent, StepEvent, SummaryEvent)

#: One line of ``apply --json``.
Event = Annotated[
    VersionEvent | TargetEvent | PlannedEvent | RefusedEvent | WaitEvent | BackupEvent | CopyEvent | StepEvent
    | SummaryEvent,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)

#: Event type -> what it is (the first line of its model's docstring).
EVENT_TYPES: dict[str, str] = {
    m.model_fields["type"].annotation.__args__[0]: (m.__doc__ or "").splitlines()[0]  # type: ignore[union-attr]
    for m in _MODELS
}


def events_json_schema() -> dict[str, Any]:
    """The JSON Schema of one line of ``apply --json``."""
    doc = _ADAPTER.json_schema(by_alias=True)
    doc["title"] = "reconciler apply --json event"
    doc["description"] = f"One line of `reconciler apply --json` (event format {EVENTS_VERSION})."
    return doc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventStream:
    """Writes events through ``write`` (one line each, no newline given: ``click.echo`` adds it)."""

    def __init__(self, write: Callable[[str], None], now: Callable[[], str] = _now) -> None:
        self._write = write
        self._now = now

    def emit(self, type_: str, message: str, **data: Any) -> None:
        """One event of ``type_`` (a key of :data:`EVENT_TYPES`), checked against its model."""
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        event = {"@message": message, "@timestamp": self._now(), "type": type_, **data}
        _ADAPTER.validate_python(event)  # a wrong key or value is our bug: it fails here, not in a reader
        self._write(json.dumps(event, ensure_ascii=True, separators=(",", ":"), default=str))

"""Backups before destruction: which record values an apply is about to delete (:func:`backup_tasks`,
pure), what saving them costs (:func:`backup_requests`), and saving them (:func:`take_backups`).

An apply with a backup directory saves, before its first write, every record holding a value that a
field delete or a schema delete of the plan will lose, with :func:`reconciler.records.backup.backup_records`:
one subfolder per schema, ``<directory>/<slug>/`` (``<slug>.<field>.ndjson`` per deleted field, or
``<slug>.ndjson`` with every record of a deleted schema, and its ``manifest.json``). The count read
must be the plan's impact count; any difference or failure raises :class:`BackupFailed`, and then
nothing is written to the account. What remains: a value written between the backup and the delete
(the other stages of the same apply, or another writer) is not in the backup; the API has no
conditional delete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import changes as ops
from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.client import Client
    from reconciler.plan import Plan
    from reconciler.records.backup import Backup

__all__ = ["BackupFailed", "BackupOptions", "BackupTask", "backup_requests", "backup_tasks", "take_backups"]

class BackupFailed(ReconcilerError):
    """A backup could not be made whole (a count that differs from the plan's, a failed read, a file
    that could not be written): the apply writes nothing."""


@dataclass(frozen=True)
class BackupTask:
    """The values one schema's deletes lose: ``field_ids`` (``None``: the schema goes, every record)
    and the plan's count of the records holding them (``None`` per field: not counted)."""

    schema_id: str
    slug: str
    field_ids: tuple[str, ...] | None
    expected: dict[str, int | None]

    @property
    def id(self) -> str:
        return self.schema_id

    @property
    def subjects(self) -> list[str]:
        """``online-order.order-link`` per field, or ``online-order`` for a whole schema."""
        return [self.slug] if self.field_ids is None else [f"{self.slug}.{f}" for f in self.field_ids]


@dataclass(frozen=True)
class BackupOptions:
    """Where an apply saves its backups, and who hears of them: ``on_progress(subject, done, total)``
    after each page read (``total``: the plan's count, or what the list reports), ``on_done(backup)``
    when one is whole."""

    directory: Path
    target_name: str | None = None
    on_progress: Callable[[str, int, int], None] | None = None
    on_done: Callable[[Backup], None] | None = None


def _count(change: ops.Change) -> int | None:
    for finding in change.findings:
        if finding.counted and finding.impact is not None:
            return finding.impact.affected
    return None


def backup_tasks(plan: Plan) -> list[BackupTask]:
    """The plan's field and schema deletes that lose data, per schema in the plan's order (blocked
    changes are not applied, and schemas without an id have no records)."""
    fields: dict[str, list[ops.DeleteField]] = {}
    tasks: list[BackupTask] = []
    for c in plan.changes:
        if c.blocked or c.schema_id is None:
            continue
        if isinstance(c, ops.DeleteSchema):
            tasks.append(BackupTask(c.schema_id, c.slug, None, {"": _count(c)}))
        elif isinstance(c, ops.DeleteField):
            fields.setdefault(c.schema_id, []).append(c)
    for schema_id, deletes in fields.items():
        tasks.append(BackupTask(schema_id, deletes[0].slug, tuple(d.field_id for d in deletes),
                                {d.field_id: _count(d) for d in deletes}))
    return tasks


def backup_requests(plan: Plan) -> int:
    """List requests the backups of ``plan`` send when nothing fails: one per page of each file (an
    uncounted file: one page)."""
    from reconciler.records.backup import backup_requests as file_requests

    return sum(file_requests(n or 0) for task in backup_tasks(plan) for n in task.expected.values())


async def take_backups(client: Client, tasks: Sequence[BackupTask], options: BackupOptions) -> list[Backup]:
    """Save each task's records under ``options.directory`` (see the module docstring); BackupFailed
    names the first that could not be saved whole."""
    from reconciler.records.backup import BackupCountMismatch, backup_records
    from reconciler.records.files import make_private_dir

    made: list[Backup] = []
    if not tasks:
        return made
    try:
        make_private_dir(options.directory)
    except (OSError, ReconcilerError) as exc:
        raise BackupFailed(f"cannot make the backup folder {options.directory}: {exc}") from None
    for task in tasks:
        expected: int | dict[str, int] | None
        if task.field_ids is None:
            expected = task.expected[""]
        else:
            expected = {f: n for f, n in task.expected.items() if n is not None}

        def progress(done: int, total: int, subject: str = ", ".join(task.subjects)) -> None:
            if options.on_progress is not None:
                options.on_progress(subject, done, total)

        try:
            made.append(await backup_records(client, task, task.field_ids, options.directory / task.slug,
                                             expected=expected, target_name=options.target_name,
                                             on_progress=progress))
            if options.on_done is not None:
                options.on_done(made[-1])
        except BackupCountMismatch as exc:
            raise BackupFailed(f"{exc}; the records changed since the plan counted them: plan again") from None
        except ReconcilerError as exc:
            raise BackupFailed(f"the backup of {', '.join(task.subjects)} failed: {exc}") from None
        except OSError as exc:
            raise BackupFailed(f"the backup of {', '.join(task.subjects)} could not be written: "
                               f"{exc.strerror or exc}") from None
    return made

"""The risks of each change kind: the findings (``DL``/``BC`` codes) a change carries. Pure.

One function, :func:`risks`, with a ``case`` per change kind (a type checker reports a kind it
forgets). The ``NA`` codes are not risks of a change but plan errors: the planner makes those where
it finds them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import assert_never

from reconciler import changes as ops
from reconciler.changes import Finding
from reconciler.codes import Code
from reconciler.conversions import by_name
from reconciler.props import Prop

__all__ = ["risks"]


def _finding(code: Code, message: str, subject: str, acks: Collection[str]) -> Finding:
    return Finding(code=code, message=message, subject=subject, acknowledged=code in acks)


def risks(change: ops.Change, acks: Collection[str] = (), *, required_managed: bool = True) -> tuple[Finding, ...]:
    """The findings of ``change``. ``acks``: the codes its schema's file acknowledges (a field's
    own ``acknowledge`` is read from the desired field). ``required_managed`` False: ``required``
    is not planned (see :class:`~reconciler.planner.PlanOptions`), so it risks nothing."""
    subject = change.subject
    match change:
        case ops.CreateSchema() | ops.AddRelationship() | ops.UpdateRelationship():
            return ()
        case ops.UpdateSchema():
            if not change.renames:
                return ()
            old = change.before.slug
            return (_finding(Code.BC202, f'rename schema {old} to {change.slug}: integrations using the slug '
                                         f'"{old}" break', subject, acks),)
        case ops.AddField():
            if not (change.after.required and required_managed):
                return ()
            return (_finding(Code.BC201, f"add required field {subject}", subject,
                             (*acks, *change.after.acknowledge)),)
        case ops.UpdateField():
            if Prop.REQUIRED not in change.changed or not change.after.required:
                return ()
            return (_finding(Code.BC201, f"make field {subject} required", subject,
                             (*acks, *change.after.acknowledge)),)
        case ops.CopyField():
            conv = by_name(change.conversion)
            found: list[Finding] = []
            field_acks = (*acks, *change.after.acknowledge)
            if conv is not None and conv.can_fail:
                # counted by reconciler.copycount, which drops it when every value converts
                found.append(_finding(Code.DL103, f"{change.describe} ({conv.name}): values it cannot convert are "
                                                  "not copied", subject, field_acks))
            if conv is not None and conv.lossy:
                found.append(_finding(Code.DL104, f"{change.describe} ({conv.name}): {conv.lossy} is lost",
                                      subject, field_acks))
            return tuple(found)
        case ops.DeleteField():
            return (_finding(Code.DL102, f"delete field {subject}", subject, acks),)
        case ops.DeleteSchema():
            return (_finding(Code.DL101, f"delete schema {subject}", subject, ()),)
        case _:
            assert_never(change)

"""The properties the planner compares, one enum, and how to read each from a model.

The planner compares explicitly, property by property (:func:`differing`), with the same getter
that the plan's renderers use to show a property's two values (:meth:`Prop.read`), so "changed" and
"shown as changed" cannot disagree. Each noun compares its own list: :data:`SCHEMA_PROPS`,
:data:`FIELD_PROPS` (options apart: they are compared as sets of values, additions only),
:data:`RELATIONSHIP_PROPS`. What is never compared (server ids, timestamps, option ids,
``inherited``, the file-only flags) has no member here.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from reconciler.model import Field, Relationship, Schema

__all__ = ["FIELD_PROPS", "RELATIONSHIP_PROPS", "SCHEMA_PROPS", "Prop", "differing", "ordered"]

Compared = Schema | Field | Relationship


class Prop(StrEnum):
    """A compared property, by the name the plan file and the output use. The members are in the
    order in which a change lists them."""

    SLUG = "slug"
    LABELS_SINGULAR = "labels.singular"
    LABELS_PLURAL = "labels.plural"
    DESCRIPTION = "description"
    REQUIRED = "required"
    SCALE = "scale"
    DEFAULT_CURRENCY = "defaultCurrency"
    OPTIONS = "options"
    NAMESPACE = "namespace"
    HAS_MANY = "hasMany"
    #: a field's type: never changed (NA301), named by drift
    TYPE = "type"

    @property
    def is_label(self) -> bool:
        return self is Prop.LABELS_SINGULAR or self is Prop.LABELS_PLURAL

    def read(self, obj: Compared | None) -> Any:
        """The property's value on ``obj`` as compared and shown (``None`` for no object, or a
        property the object does not have); options as the sorted list of their values."""
        if obj is None:
            return None
        return _READ[self](obj)


def _options(obj: Compared) -> list[str] | None:
    return sorted(obj.option_values) if isinstance(obj, Field) and obj.type.has_options else None


_READ: dict[Prop, Any] = {
    Prop.SLUG: lambda o: getattr(o, "slug", None),
    Prop.LABELS_SINGULAR: lambda o: o.labels.singular,
    Prop.LABELS_PLURAL: lambda o: o.labels.plural,
    Prop.DESCRIPTION: lambda o: o.description,
    Prop.REQUIRED: lambda o: getattr(o, "required", None),
    Prop.SCALE: lambda o: getattr(o, "scale", None),
    Prop.DEFAULT_CURRENCY: lambda o: getattr(o, "default_currency", None),
    Prop.OPTIONS: _options,
    Prop.NAMESPACE: lambda o: getattr(o, "namespace", None),
    Prop.HAS_MANY: lambda o: getattr(o, "has_many", None),
    Prop.TYPE: lambda o: o.type.value if isinstance(o, Field) else None,
}

#: A schema's own properties (its fields and relationships are compared one by one).
SCHEMA_PROPS = (Prop.SLUG, Prop.LABELS_SINGULAR, Prop.LABELS_PLURAL, Prop.DESCRIPTION)
#: A field's properties, options apart. ``scale`` and ``defaultCurrency`` are compared only when
#: the file sets them (the API has no way to unset them: not in the file means not managed).
FIELD_PROPS = (Prop.LABELS_SINGULAR, Prop.LABELS_PLURAL, Prop.DESCRIPTION, Prop.REQUIRED, Prop.SCALE,
               Prop.DEFAULT_CURRENCY)
#: A relationship's properties, the namespace apart (it cannot change: NA308).
RELATIONSHIP_PROPS = (Prop.LABELS_SINGULAR, Prop.LABELS_PLURAL, Prop.DESCRIPTION, Prop.HAS_MANY)

_RANK = {p: i for i, p in enumerate(Prop)}


def differing(props: Iterable[Prop], live: Compared, desired: Compared) -> list[Prop]:
    """The properties of ``props`` whose values differ between ``live`` and ``desired``; a property
    that ``desired`` leaves unset (``None``) where the file may leave it out (``scale``,
    ``defaultCurrency``) is not managed, so not compared."""
    out = []
    for p in props:
        want = _READ[p](desired)
        if want is None and (p is Prop.SCALE or p is Prop.DEFAULT_CURRENCY):
            continue
        if want != _READ[p](live):
            out.append(p)
    return out


def ordered(props: Iterable[Prop]) -> tuple[Prop, ...]:
    """``props`` without repeats, in the enum's order."""
    return tuple(sorted(set(props), key=_RANK.__getitem__))

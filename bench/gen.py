"""Generated accounts: desired and live schemas that differ in a chosen share of their fields.

Deterministic (a seeded ``random.Random``), no I/O. Live schemas carry what the API adds (server ids,
timestamps, option UUIDs) so the planner sees what it sees in production.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from reconciler.model import Field, FieldType, Labels, Option, Relationship, Schema

__all__ = ["account", "field_specs", "schema_spec", "with_added_field", "without_fields"]

_TYPES = (FieldType.TEXT, FieldType.TEXTAREA, FieldType.NUMBER, FieldType.DATE, FieldType.DATETIME,
          FieldType.CURRENCY, FieldType.DROPDOWN, FieldType.MULTISELECT)
_TS = "2024-01-01T00:00:00Z"


def _field(i: int, *, live: bool, rng: random.Random) -> dict[str, Any]:
    ftype = _TYPES[i % len(_TYPES)]
    spec: dict[str, Any] = {
        "id": f"field-{i:04d}",
        "type": ftype,
        "labels": {"singular": f"Field {i}", "plural": f"Fields {i}"},
        "description": f"Generated field number {i}",
        "required": i % 7 == 0,
    }
    if ftype is FieldType.NUMBER:
        spec["scale"] = i % 3
    if ftype is FieldType.CURRENCY:
        spec["defaultCurrency"] = "USD"
    if ftype.has_options:
        spec["options"] = [{"value": f"Choice {j}", **({"id": str(uuid.UUID(int=rng.getrandbits(128)))}
                                                       if live else {})} for j in range(5)]
    return spec


def _mutate(spec: dict[str, Any], k: int) -> dict[str, Any]:
    """One property-level difference (the desired side of a differing field), by rotation."""
    spec = dict(spec)
    kind = k % 3
    if kind == 0:
        spec["labels"] = {"singular": spec["labels"]["singular"] + " (new)", "plural": spec["labels"]["plural"]}
    elif kind == 1 and spec.get("options"):
        spec["options"] = [{"value": o["value"]} for o in spec["options"]] + [{"value": "Added choice"}]
    else:
        spec["description"] = spec["description"] + ", edited"
    return spec


def field_specs(n_fields: int, differ: float, rng: random.Random, start: int = 0
                ) -> tuple[list[Field], list[Field], int]:
    """(desired fields, live fields, how many differ): ``differ`` of the fields, spread evenly.

    ``start`` is the index of the first field in the whole account: the differing fields are spread
    over the account, not per schema, so exactly ``differ`` of its fields differ whatever the number
    of fields a schema (per schema, 25, 50 and 100 fields at 5% gave 4%, 4% and 5%).
    """
    desired: list[Field] = []
    live: list[Field] = []
    step = max(1, round(1 / differ)) if differ > 0 else 0
    changed = 0
    for i in range(n_fields):
        live_spec = _field(i, live=True, rng=rng)
        want = {**live_spec, "options": [{"value": o["value"]} for o in live_spec["options"]]} \
            if live_spec.get("options") else dict(live_spec)
        g = start + i
        if step and g % step == step // 2:
            want = _mutate(want, g // step)
            changed += 1
        live.append(Field.model_validate(live_spec))
        desired.append(Field.model_validate(want))
    return desired, live, changed


def schema_spec(slug: str, fields: list[Field], *, live_id: str | None = None) -> Schema:
    rel = Relationship(id="primary-contact", namespace="contacts",
                       labels=Labels(singular="Primary Contact", plural="Primary Contacts"))
    extra: dict[str, Any] = {}
    if live_id is not None:
        extra = {"id": live_id, "visibility": "private", "customized": False,
                 "createdTimestamp": _TS, "updatedTimestamp": _TS}
    return Schema.model_validate({
        "slug": slug, "labels": {"singular": slug.replace("-", " ").title(), "plural": slug + "s"},
        "description": f"Generated schema {slug}", "fields": fields, "relationships": [rel], **extra,
    })


def account(n_schemas: int, n_fields: int, differ: float = 0.05, seed: int = 7
            ) -> tuple[dict[str, Schema], dict[str, Schema], int]:
    """(desired, live, differing field count): ``n_schemas`` schemas of ``n_fields`` fields each."""
    rng = random.Random(seed)
    desired: dict[str, Schema] = {}
    live: dict[str, Schema] = {}
    changed = 0
    for s in range(n_schemas):
        slug = f"object-{s:05d}"
        d_fields, l_fields, c = field_specs(n_fields, differ, rng, start=s * n_fields)
        changed += c
        desired[slug] = schema_spec(slug, d_fields)
        live[slug] = schema_spec(slug, l_fields, live_id=str(uuid.UUID(int=rng.getrandbits(128))))
    return desired, live, changed


def with_added_field(schema: Schema) -> Schema:
    """The schema with one text field added at the end and its first field's singular label changed
    (the "updates" row of the whole-command apply benchmark: one PUT a schema)."""
    first = schema.fields[0]
    renamed = first.model_copy(update={"labels": Labels(singular=first.labels.singular + " (renamed)",
                                                          plural=first.labels.plural)})
    added = Field.model_validate({"id": "field-added", "type": FieldType.TEXT,
                                  "labels": {"singular": "Added field", "plural": "Added fields"},
                                  "description": "Added by the update benchmark"})
    return schema.model_copy(update={"fields": (renamed, *schema.fields[1:], added)})


def without_fields(schema: Schema, n: int) -> Schema:
    """The schema without its last ``n`` fields (the "deletes" row: ``n`` field deletions)."""
    return schema.model_copy(update={"fields": tuple(schema.fields[:-n])})


# keep Option importable for callers that build their own specs
_ = Option

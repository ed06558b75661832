"""The vendor's validation of schemas and records, with errors in the custom-object 422 shape (§10).

Every function raises :class:`Unprocessable` carrying the list of ``errors``. What the docs state is
enforced as documented; the rest follows the §14 recommendations (U2, U4-U10, U12, U14, U15, U23,
U25, U26), each one a GUESS that is marked where it is made.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.sandbox.settings import SandboxSettings
from reconciler.sandbox.values import OPTION_TYPES, coerce, is_blank

FIELD_TYPES = ("text", "textarea", "number", "date", "datetime", "currency", "dropdown", "multiselect", "decimal")
BUILTIN_NAMESPACES = ("contacts", "accounts", "deals")
SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")  # U5, a guess
ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")  # documented charset (S1)
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")  # a guess: ISO 4217 code
MARKED = "marked_for_deletion"


class Unprocessable(Exception):
    """A 422 with the custom-object error list."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["detail"] if errors else "invalid")
        self.errors = errors


def error(field: str, detail: str) -> dict[str, Any]:
    """One §10 error: title names the field, the pointer is ``/data/attributes/<field with / for .>``."""
    return {
        "title": f'Invalid value for field "{field}"',
        "detail": detail,
        "source": {"type": "pointer", "value": "/data/attributes/" + field.replace(".", "/")},
    }


def norm_id(value: str) -> str:
    """Ids clash when equal after ``_`` -> ``-`` (documented) and lower-casing (U5, a guess)."""
    return value.replace("_", "-").lower()


def _raise(errs: list[dict[str, Any]]) -> None:
    if errs:
        raise Unprocessable(errs)


def _labels(raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, Mapping):
        return None
    singular, plural = raw.get("singular"), raw.get("plural")
    if not (isinstance(singular, str) and singular.strip() and isinstance(plural, str) and plural.strip()):
        return None
    return {"singular": singular, "plural": plural}


def _check_id(value: Any, where: str, what: str, settings: SandboxSettings, errs: list) -> str | None:
    if not isinstance(value, str) or not value:
        errs.append(error(where, f"{what} must provide an id"))
        return None
    if not ID_RE.match(value) or len(value) > settings.field_id_max_len:
        errs.append(error(where, f"{what} id {value!r} must be 1-{settings.field_id_max_len} letters, digits, - or _"))
        return None
    return value


def check_slug(slug: Any, settings: SandboxSettings, errs: list) -> str | None:
    if not isinstance(slug, str) or not slug:
        errs.append(error("schema.slug", "Schema slug must be provided"))
        return None
    if not SLUG_RE.match(slug) or len(slug) > settings.slug_max_len:
        errs.append(error("schema.slug", f"Schema slug must be lower-case words of letters and digits joined by "
                                         f"dashes, at most {settings.slug_max_len} characters"))
        return None
    return slug


def slug_unique(slug: str, others: Sequence[Mapping[str, Any]], errs: list[Any]) -> None:
    if any(o["slug"] == slug for o in others):
        errs.append(error("schema.slug", "Schema slug must be unique"))


# -- fields ----------------------------------------------------------------------------------------
def _options(raw: Any, fid: str, existing: list[dict] | None, settings: SandboxSettings, errs: list) -> list | None:
    """U8: append-only options; the server assigns UUID ids. A stored option is found by value or
    by its server id (``options_match="value"``) or by its server id only (``"id"``: an option
    without one is new, even when its value is a stored one's, which then holds that value twice)."""
    if not isinstance(raw, list) or not raw:
        errs.append(error("schema.fields.options", f"Field {fid} must provide options"))
        return None
    existing = existing or []
    by_value = {o["value"]: o for o in existing}
    by_id = {o["id"]: o for o in existing}
    result: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in raw:
        value = item.get("value") if isinstance(item, Mapping) else None
        if not isinstance(value, str) or not value.strip():
            errs.append(error("schema.fields.options", f"Field {fid} options must provide a value"))
            return None
        if value in seen:
            errs.append(error("schema.fields.options", f"Field {fid} option values must be unique"))
            return None
        seen.add(value)
        oid = item.get("id") if isinstance(item.get("id"), str) else None
        if settings.options_match == "value" and value in by_value:
            match: dict[str, str] | None = by_value[value]
        else:  # options_match "id": only the server's id finds a stored option
            match = by_id.get(oid) if oid is not None else None
        if match is None:
            result.append({"id": str(uuid.uuid4()), "value": value})
            continue
        if any(o["id"] == match["id"] for o in result):
            errs.append(error("schema.fields.options", f"Field {fid} option ids must be unique"))
            return None
        if match["value"] == value:
            result.append(dict(match))
        elif settings.options_strict:  # a rename through the server id
            errs.append(error("schema.fields.options", f"Field {fid} options cannot be renamed or removed"))
            return None
        else:
            result.append({"id": match["id"], "value": value})
    kept = {o["id"] for o in result}
    missing = [o for o in existing if o["id"] not in kept]
    if missing and settings.options_strict:
        errs.append(error("schema.fields.options", f"Field {fid} options cannot be renamed or removed"))
        return None
    # lenient: omitted options are kept, in their old place before the new ones
    ordered = [o for o in existing if o["id"] not in kept] + result if missing else result
    if settings.max_options is not None and len(ordered) > settings.max_options:
        errs.append(error("schema.fields.options", f"Field {fid} may have at most {settings.max_options} options"))
        return None
    return ordered


def _type_props(raw: Mapping[str, Any], field: dict, settings: SandboxSettings, errs: list,
                replace: bool = False) -> None:
    """scale / defaultCurrency / options: only on their types (U2). ``replace``: the options must be
    sent again (matched against the stored ones in ``field["options"]``)."""
    fid, ftype = field["id"], field["type"]
    if raw.get("scale") is not None:
        scale = raw["scale"]
        if ftype not in ("number", "decimal"):
            errs.append(error("schema.fields.scale", f"Field {fid}: scale is only allowed on number fields"))
        elif isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= 10:
            errs.append(error("schema.fields.scale", f"Field {fid}: scale must be an integer from 0 to 10"))
        else:
            field["scale"] = scale
    if raw.get("defaultCurrency") is not None:
        cur = raw["defaultCurrency"]
        if ftype != "currency":
            errs.append(error("schema.fields.defaultCurrency",
                              f"Field {fid}: defaultCurrency is only allowed on currency fields"))
        elif not isinstance(cur, str) or not CURRENCY_RE.match(cur):
            errs.append(error("schema.fields.defaultCurrency", f"Field {fid}: defaultCurrency must be a currency code"))
        else:
            field["defaultCurrency"] = cur
    if ftype in OPTION_TYPES:
        if "options" in raw or not field.get("options") or replace:
            opts = _options(raw.get("options"), fid, field.get("options"), settings, errs)
            if opts is not None:
                field["options"] = opts
    elif raw.get("options") is not None:
        errs.append(error("schema.fields.options", f"Field {fid}: options are only allowed on dropdown and "
                                                   "multiselect fields"))


def _required(raw: Mapping[str, Any], current: bool, settings: SandboxSettings, errs: list) -> bool:
    if "required" in raw and raw["required"] is not None:
        if not isinstance(raw["required"], bool):
            errs.append(error("schema.fields.required", "Field required must be a boolean"))
            return current
        return raw["required"] and settings.required_honoured  # required_honoured: U2/U4/C5 switch
    if settings.treat_is_required and isinstance(raw.get("isRequired"), bool):  # U4 switch
        return raw["isRequired"] and settings.required_honoured
    return current and settings.required_honoured  # U4: isRequired ignored by default


def _description(raw: Mapping[str, Any], target: dict, where: str, errs: list) -> None:
    if "description" not in raw:
        return
    desc = raw["description"]
    if desc is None or desc == "":
        target.pop("description", None)
    elif isinstance(desc, str):
        target["description"] = desc
    else:
        errs.append(error(where, "Description must be a string"))


def new_field(raw: Any, settings: SandboxSettings, errs: list) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        errs.append(error("schema.fields", "Schema fields must be objects"))
        return None
    fid = _check_id(raw.get("id"), "schema.fields.id", "Schema fields", settings, errs)
    labels = _labels(raw.get("labels"))
    if labels is None:
        errs.append(error("schema.fields.labels", "Schema fields must provide labels"))
    ftype = raw.get("type")
    known = ftype in FIELD_TYPES or ftype in settings.extra_field_types
    if not known:
        errs.append(error("schema.fields.type", f"Field type {ftype!r} is not supported"))
    if fid is None or labels is None or not known:
        return None
    field: dict[str, Any] = {"id": fid, "labels": labels, "type": ftype, "required": False, "inherited": False}
    field["required"] = _required(raw, False, settings, errs)
    _type_props(raw, field, settings, errs)
    _description(raw, field, "schema.fields.description", errs)
    return field  # field ``slug``, ``isRequired`` (U4), ``status``, ``inherited``: never stored


def _update_field(old: dict, raw: Mapping[str, Any], settings: SandboxSettings, errs: list) -> dict:
    """A PUT's field over the stored one: merged (``field_put_merge``, U1's recommendation) or, a
    guess of the other reading, replacing it: what is left out falls back to its default (not
    required, no description, no scale or currency) and type, labels and options must be sent."""
    fid = old["id"]
    merge = settings.field_put_merge
    if raw.get("type") is not None and raw["type"] != old["type"]:
        errs.append(error("schema.fields.type", f"Field {fid}: type cannot be changed"))
        return old
    if not merge and raw.get("type") is None:
        errs.append(error("schema.fields.type", f"Field {fid}: type must be provided"))
        return old
    if merge:
        field = copy.deepcopy(old)
    else:
        field = {"id": fid, "labels": old["labels"], "type": old["type"], "required": False,
                 "inherited": old.get("inherited", False)}
        if old.get("options"):
            field["options"] = copy.deepcopy(old["options"])
    if "labels" in raw or not merge:
        labels = _labels(raw.get("labels"))
        if labels is None:
            errs.append(error("schema.fields.labels", "Schema fields must provide labels"))
        else:
            field["labels"] = labels
    field["required"] = _required(raw, field["required"], settings, errs)
    _type_props(raw, field, settings, errs, replace=not merge)
    _description(raw, field, "schema.fields.description", errs)
    if old.get("inherited") and field != old:  # U23, a guess
        errs.append(error("schema.fields", f"Field {fid} is inherited and cannot be changed"))
        return old
    return field


def merge_fields(
    stored: list[dict], raw: Any, settings: SandboxSettings, errs: list
) -> list[dict]:
    """U1 merge by id: new ids appended, existing ones updated, omitted ones kept."""
    if raw is None:
        return stored
    if not isinstance(raw, list):
        errs.append(error("schema.fields", "Schema fields must be a list"))
        return stored
    result = [dict(f) for f in stored]
    position = {f["id"]: i for i, f in enumerate(result)}
    for item in raw:
        fid = item.get("id") if isinstance(item, Mapping) else None
        if isinstance(fid, str) and fid in position:
            old = result[position[fid]]
            if old.get("status") == MARKED:
                errs.append(error("schema.fields.id", f"Field id {fid} belongs to a deleted field and cannot be reused"))
                continue
            result[position[fid]] = _update_field(old, item, settings, errs)
            continue
        field = new_field(item, settings, errs)
        if field is None:
            continue
        clash = next((f for f in result if norm_id(f["id"]) == norm_id(field["id"])), None)
        if clash is not None:
            detail = (f"Field id {field['id']} belongs to a deleted field and cannot be reused"
                      if clash.get("status") == MARKED else "Schema field ids must be unique")
            errs.append(error("schema.fields.id", detail))
            continue
        position[field["id"]] = len(result)
        result.append(field)
    if settings.max_fields is not None and len(result) > settings.max_fields:
        errs.append(error("schema.fields", f"Schema may have at most {settings.max_fields} fields"))
    for part in ("singular", "plural"):  # U7: unique case-insensitively among the schema's live fields
        seen: set[str] = set()
        for f in result:
            if f.get("status") == MARKED:
                continue
            key = f["labels"][part].casefold()
            if key in seen:
                errs.append(error("schema.fields.labels", "Schema field labels must be unique"))
                break
            seen.add(key)
    return result


# -- relationships ---------------------------------------------------------------------------------
def _namespace_ok(ns: Any, own: Mapping[str, Any], others: list[Mapping[str, Any]]) -> bool:
    """U10 (guess): built-ins, or another schema's slug or id (or this schema's own)."""
    if not isinstance(ns, str) or not ns:
        return False
    if ns in BUILTIN_NAMESPACES or ns in (own.get("slug"), own.get("id")):
        return True
    return any(ns in (o["slug"], o["id"]) for o in others)


def _relationship(raw: Any, old: dict | None, own: Mapping, others: list, settings: SandboxSettings,
                  errs: list) -> dict | None:
    if not isinstance(raw, Mapping):
        errs.append(error("schema.relationships", "Schema relationships must be objects"))
        return None
    if raw.get("hasMany") not in (None, False):
        errs.append(error("schema.relationships.hasMany", "Relationship hasMany value should be set to false"))
        return None
    if old is None:
        rid = _check_id(raw.get("id"), "schema.relationships.id", "Schema relationships", settings, errs)
        labels = _labels(raw.get("labels"))
        if labels is None:
            errs.append(error("schema.relationships.labels", "Schema relationships must provide labels"))
        ns = raw.get("namespace")
        if not _namespace_ok(ns, own, others):
            errs.append(error("schema.relationships.namespace", f"Relationship namespace {ns!r} is not valid"))
            return None
        if rid is None or labels is None:
            return None
        rel: dict[str, Any] = {"id": rid, "labels": labels, "namespace": ns, "hasMany": False, "inherited": False}
        _description(raw, rel, "schema.relationships.description", errs)
        return rel
    rel = copy.deepcopy(old)
    if raw.get("namespace") is not None and raw["namespace"] != old["namespace"]:
        errs.append(error("schema.relationships.namespace", "Relationship namespace cannot be changed"))
        return old
    if "labels" in raw:
        labels = _labels(raw["labels"])
        if labels is None:
            errs.append(error("schema.relationships.labels", "Schema relationships must provide labels"))
        else:
            rel["labels"] = labels
    _description(raw, rel, "schema.relationships.description", errs)
    if old.get("inherited") and rel != old:
        errs.append(error("schema.relationships", f"Relationship {old['id']} is inherited and cannot be changed"))
        return old
    return rel


def merge_relationships(stored: list[dict], raw: Any, own: Mapping, others: list, settings: SandboxSettings,
                        errs: list) -> list[dict]:
    if raw is None:
        return stored
    if not isinstance(raw, list):
        errs.append(error("schema.relationships", "Schema relationships must be a list"))
        return stored
    result = [dict(r) for r in stored]
    for item in raw:
        rid = item.get("id") if isinstance(item, Mapping) else None
        idx = next((i for i, r in enumerate(result) if isinstance(rid, str) and r["id"] == rid), None)
        rel = _relationship(item, None if idx is None else result[idx], own, others, settings, errs)
        if rel is None:
            continue
        if idx is not None:
            result[idx] = rel
        elif any(norm_id(r["id"]) == norm_id(rel["id"]) for r in result):
            errs.append(error("schema.relationships.id", "Schema relationship ids must be unique"))
        else:
            result.append(rel)
    return result


# -- schemas ---------------------------------------------------------------------------------------
def body_part(body: Any, key: str) -> Mapping[str, Any]:
    """The ``{"schema": {...}}`` / ``{"record": {...}}`` envelope's content, or a 422."""
    part = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(part, Mapping):
        raise Unprocessable([error(key, f"A {key} object must be provided")])
    return part


def check_new_schema(raw: Mapping[str, Any], others: list[dict], settings: SandboxSettings,
                     slug: str | None = None) -> dict[str, Any]:
    """Validate a create body; returns the schema parts (slug, labels, description, fields,
    relationships). Unknown top-level keys are ignored (U26). ``slug`` overrides the body's (public)."""
    errs: list[dict[str, Any]] = []
    if slug is None:
        slug = check_slug(raw.get("slug"), settings, errs)
    if slug is not None:
        slug_unique(slug, others, errs)
    if settings.max_schemas is not None and len(others) >= settings.max_schemas:
        errs.append(error("schema", f"An account may have at most {settings.max_schemas} schemas"))
    labels = _labels(raw.get("labels"))
    if labels is None:
        errs.append(error("schema.labels", "Schema must provide labels"))
    doc: dict[str, Any] = {"slug": slug, "labels": labels}
    _description(raw, doc, "schema.description", errs)
    doc["fields"] = merge_fields([], raw.get("fields", []), settings, errs)
    doc["relationships"] = merge_relationships([], raw.get("relationships", []), doc, others, settings, errs)
    _raise(errs)
    return doc


def check_update(stored: dict[str, Any], raw: Mapping[str, Any], others: list[dict],
                 settings: SandboxSettings) -> dict[str, Any]:
    """U1 merge of a PUT body into ``stored``; returns the new document (not saved)."""
    errs: list[dict[str, Any]] = []
    doc = copy.deepcopy(stored)
    if raw.get("slug") is not None and raw["slug"] != stored["slug"]:  # U25
        slug = check_slug(raw["slug"], settings, errs)
        if slug is not None:
            slug_unique(slug, others, errs)
            doc["slug"] = slug
    if "labels" in raw:
        labels = _labels(raw["labels"])
        if labels is None:
            errs.append(error("schema.labels", "Schema must provide labels"))
        else:
            doc["labels"] = labels
    _description(raw, doc, "schema.description", errs)
    doc["fields"] = merge_fields(doc["fields"], raw.get("fields"), settings, errs)
    doc["relationships"] = merge_relationships(doc["relationships"], raw.get("relationships"), doc, others,
                                               settings, errs)
    _raise(errs)
    return doc


# -- records ---------------------------------------------------------------------------------------
def live_fields(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [f for f in schema["fields"] if f.get("status") != MARKED]


def check_record(
    schema: Mapping[str, Any],
    raw: Mapping[str, Any],
    settings: SandboxSettings,
    target_exists: Callable[[Mapping[str, Any], str], bool],
) -> tuple[dict[str, Any], dict[str, list[str]] | None]:
    """Validate an upsert's ``fields`` and ``relationships`` (U12, U14, U15). Returns the stored
    fields (in request order) and the relationships (None when the key is absent: U16 keeps them).
    ``target_exists(relationship, id)`` says whether a referenced object exists."""
    errs: list[dict[str, Any]] = []
    defs = {f["id"]: f for f in live_fields(schema)}
    fields: dict[str, Any] = {}
    raw_fields = raw.get("fields", [])
    if raw_fields is None:
        raw_fields = []
    if not isinstance(raw_fields, list):
        raise Unprocessable([error("record.fields", "Record fields must be a list")])
    for item in raw_fields:
        fid = item.get("id") if isinstance(item, Mapping) else None
        if not isinstance(fid, str):
            errs.append(error("record.fields", "Record fields must provide an id"))
            continue
        if fid not in defs:  # U15: unknown (or deleted) field ids are rejected
            errs.append(error(fid, f"{fid} is not a field of this schema"))
            continue
        if fid in fields:
            errs.append(error(fid, f"{fid} is given more than once"))
            continue
        try:
            fields[fid] = coerce(defs[fid], item.get("value"))
        except ValueError as exc:
            errs.append(error(fid, str(exc)))
    for fid, fdef in defs.items():  # U15: required fields enforced
        if fdef.get("required") and is_blank(fields.get(fid)) and not any(e["detail"].startswith(fid) for e in errs):
            errs.append(error(fid, f"{fid} is required"))
    rels: dict[str, list[str]] | None = None
    if "relationships" in raw and raw["relationships"] is not None:
        rels = {}
        raw_rels = raw["relationships"]
        rdefs = {r["id"]: r for r in schema["relationships"]}
        if not isinstance(raw_rels, Mapping):
            raise Unprocessable([error("record.relationships", "Record relationships must be an object")])
        for rid, targets in raw_rels.items():
            where = f"relationships.{rid}"
            if rid not in rdefs:
                errs.append(error(where, f"{rid} is not a relationship of this schema"))
                continue
            if targets is None:
                targets = []
            if not isinstance(targets, list):
                targets = [targets]
            ids: list[str] = []
            for target in targets:
                text = str(target) if isinstance(target, (int, str)) and not isinstance(target, bool) else ""
                if not text or not target_exists(rdefs[rid], text):
                    errs.append(error(where, f"{rid} cannot relate to {target!r}: it does not exist"))
                    break
                ids.append(text)
            rels[rid] = ids
    _raise(errs)
    return fields, rels

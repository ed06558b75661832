"""Checking one schema file's document: the file model (:mod:`reconciler.fileformat`), then the
domain model, every problem as a located message in the house wording.

:func:`to_schema` gives the domain :class:`~reconciler.model.Schema` or the errors that prevent it.
The file model's errors come first: unknown keys (``unknown key 'requried' in a field (did you mean
'required'?)``), keys the account sets, types, missing keys, the apiVersion and kind, an unknown
field type. Where it refuses something a domain rule words better (``scale`` on a text field, a
dropdown without options: :func:`_deferred`), the domain model judges. When the file model refuses
the file, the domain model's errors elsewhere in it are reported too, so one run lists every
problem. The domain's rules across values (:func:`reconciler.model.local_problems`) are the
caller's to run on the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from reconciler.fileerrors import (
    FileError,
    Loc,
    Located,
    describe,
    quote,
    suggest,
    validate_strict,
    validation_errors,
)
from reconciler.fileformat import FIELD_MODELS, SchemaFile, account_keys, domain_input, model_at
from reconciler.model import Schema, excerpt

__all__ = ["to_schema"]


def to_schema(path: Path, doc: Located, *, plain: bool = False) -> tuple[Schema | None, list[FileError]]:
    """The domain schema of a document whose data is a mapping, or the errors that prevent it.

    First the file model (structure, in the file's terms), then the domain model. Its rules
    (:func:`reconciler.model.local_problems`) are the caller's to run. ``plain``: ``data`` holds
    only JSON types (the fast reader's), so it is validated as it is.
    """
    data = doc.get(())
    try:
        validate_strict(SchemaFile, data, plain=plain)
    except ValidationError as exc:
        blocking = _structure_errors(exc, data, plain)
        if blocking:
            # The domain's verdict on the rest, as if the file had gone on: every problem at once.
            places = [e["loc"] for e in blocking]
            return None, [*validation_errors(path, doc, blocking, rename=_file_message(doc)),
                          *_domain_errors(path, doc, data, plain, besides=places)]
    try:
        return validate_strict(Schema, domain_input(data), plain=plain), []
    except ValidationError as exc:
        return None, validation_errors(path, doc, exc, rename=_domain_message(doc))


def _domain_errors(path: Path, doc: Located, data: Any, plain: bool, besides: list[Loc]) -> list[FileError]:
    """The domain model's errors but those at or under the places ``besides`` (the file model's)."""
    try:
        validate_strict(Schema, domain_input(data), plain=plain)
    except ValidationError as exc:
        found = [e for e in exc.errors() if not any(tuple(e["loc"][:len(b)]) == b for b in besides)]
        return validation_errors(path, doc, found, rename=_domain_message(doc))
    return []


def _literal(info: FieldInfo) -> str | None:
    """The one value a ``Literal`` field allows (apiVersion, kind), else None."""
    if get_origin(info.annotation) is Literal and len(get_args(info.annotation)) == 1:
        return str(get_args(info.annotation)[0])
    return None


def _deferred(loc: Loc, e: Mapping[str, Any]) -> bool:
    """An error of the file model that a domain rule reports in its own words (``scale applies only
    to number fields, not text``, ``a dropdown field needs a non-empty options list``): the file
    goes on to the domain model with it, and gets that message beside the domain's other ones."""
    if e["type"] == "none_required":
        return True
    is_options = len(loc) == 3 and loc[0] == "fields" and loc[2] == "options"
    return is_options and (e["type"] == "missing" or e.get("input", 0) is None)


def _strip_tags(loc: tuple[Any, ...]) -> Loc:
    """pydantic's location with the union's tag taken out: ``('fields', 0, 'text', 'scale')`` ->
    ``('fields', 0, 'scale')``, a path into the document."""
    if len(loc) >= 3 and loc[0] == "fields" and isinstance(loc[1], int) and loc[2] in FIELD_MODELS:
        return (*loc[:2], *loc[3:])
    return tuple(loc)


def _structure_errors(exc: ValidationError, data: Any, plain: bool) -> list[dict[str, Any]]:
    """The file model's errors as document paths, the deferred ones left out (:func:`_deferred`).

    A field whose ``type`` is missing or unknown matches no field model: its ``type`` is the error,
    and the rest of it is checked against the keys every field type has (:func:`_untyped_errors`).
    """
    errors: list[dict[str, Any]] = []
    for e in exc.errors():
        loc = _strip_tags(e["loc"])
        if e["type"] in ("union_tag_not_found", "union_tag_invalid"):
            errors += _untyped_errors(loc, data, plain)
            kind = "missing" if e["type"] == "union_tag_not_found" else e["type"]
            errors.append({**e, "type": kind, "loc": (*loc, "type")})
        else:
            errors.append({**e, "loc": loc})
    return [e for e in errors if not _deferred(e["loc"], e)]


def _untyped_errors(loc: Loc, data: Any, plain: bool) -> list[dict[str, Any]]:
    """The errors of the field at ``loc`` but its type's: it is checked as a field of any type (the
    keys are the same; the type-specific ones are the domain's to judge, see :func:`_deferred`)."""
    item = data["fields"][loc[1]]
    stand_in = next(iter(FIELD_MODELS))
    try:
        validate_strict(FIELD_MODELS[stand_in], {**item, "type": stand_in}, plain=plain)
    except ValidationError as exc:
        return [{**e, "loc": (*loc, *e["loc"])} for e in exc.errors() if tuple(e["loc"]) != ("type",)]
    return []


def _real_key(doc: Located, parent: Loc, key: str) -> Any:
    """The key as written (validation sees keys as strings: ``5:`` is ``'5'`` there)."""
    node = doc.get(parent)
    if isinstance(node, Mapping) and key not in node:
        for k in node:
            if str(k) == key:
                return k
    return key


def _option_message(doc: Located, loc: Loc) -> str:
    o = doc.get(loc)
    hint = f" (quote it: '{excerpt(o)}')" if isinstance(o, (int, float)) and not isinstance(o, bool) else ""
    return f"an option must be a string, not {describe(o)}{hint}"


def _is_option(loc: Loc) -> bool:
    return len(loc) >= 4 and loc[0] == "fields" and loc[2] == "options" and isinstance(loc[3], int)


def _file_message(doc: Located) -> Any:
    def message(loc: Loc, e: dict[str, Any]) -> tuple[Loc, str] | None:
        kind = e["type"]
        if kind == "extra_forbidden":
            key = _real_key(doc, loc[:-1], str(loc[-1]))
            model = model_at(loc[:-1])
            if model is None:
                return None
            if isinstance(key, str) and key in account_keys(model):
                return (*loc[:-1], key), f"{key!r} is set by the account and cannot be written in a file"
            return (*loc[:-1], key), f"unknown key {excerpt(key)} in {model.what}{suggest(str(key), model.model_fields)}"
        if kind == "union_tag_invalid":
            value = doc.get(loc)
            valid = list(FIELD_MODELS)
            hint = suggest(value, valid) if isinstance(value, str) else ""
            return loc, f"unknown field type {quote(value)}{hint}; valid types: {', '.join(valid)}"
        if kind in ("missing", "literal_error") and len(loc) == 1 and loc[0] in SchemaFile.model_fields:
            want = _literal(SchemaFile.model_fields[str(loc[0])])
            if want is not None and kind == "missing":
                return (), f"missing required key {loc[0]!r} (use {loc[0]}: {want})"
            if want is not None:
                return loc, f"unsupported {loc[0]} {quote(doc.get(loc))}: the supported {loc[0]} is {want!r}"
        if _is_option(loc):
            return loc[:4], _option_message(doc, loc[:4])
        return None
    return message


def _domain_message(doc: Located) -> Any:
    def message(loc: Loc, e: dict[str, Any]) -> tuple[Loc, str] | None:
        if not _is_option(loc):
            return None
        loc = loc[:4]
        if not isinstance(doc.get(loc), str):
            return loc, _option_message(doc, loc)
        if e["type"] == "string_too_short":
            return loc, "an option must not be empty"
        return loc, f"option: {e['msg']}"
    return message

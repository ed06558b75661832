"""JSON Schemas for editors: one for schema files, one for ``reconciler.yaml``.

The schema-file format is not the :class:`reconciler.model.Schema` model: options are plain
strings, ``apiVersion``/``kind`` are required, live-only keys (``id``, ``status``, timestamps …) are
forbidden and ``snake_case`` aliases are not accepted. So it is generated from dedicated pydantic
models of the *file format* below (:class:`SchemaFile`), which carry the model's rules that a JSON
Schema can express: charsets and lengths, ISO 4217 codes, ``hasMany: false``, unique options and the
type-specific properties (``if``/``then``). Rules across values or files (ids equal modulo ``-``/``_``,
unique labels, one file per slug, ``renamed_from`` naming the own slug, namespaces of other schemas)
stay with ``reconciler validate``.

``reconciler.yaml``'s schema comes from :class:`reconciler.project.ProjectConfig` itself, with the
URL and ``protect`` patterns its loader checks added.

Committed copies live in ``json-schema/`` at the project root (:data:`COPY_DIR`); schema files point
at theirs with a first line ``# yaml-language-server: $schema=../json-schema/schema.json``
(:data:`MODELINE_PREFIX`), written by ``reconciler export`` and ``reconciler fmt``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField

from reconciler.files import API_VERSION, KIND, MODELINE_PREFIX
from reconciler.model import ACK_CODE_RE, FIELD_ID_MAX, FIELD_ID_RE, ISO_4217, SLUG_MAX, SLUG_RE, FieldType

__all__ = [
    "COPY_DIR",
    "COPY_FILES",
    "KINDS",
    "MODELINE_PREFIX",
    "SchemaFile",
    "copy_path",
    "json_schema",
    "json_schema_text",
    "modeline_ref",
    "write_copies",
]

KINDS = ("schema", "config")
#: Where the committed copies live, relative to the project root (the folder of reconciler.yaml).
COPY_DIR = "json-schema"
COPY_FILES = {"schema": "schema.json", "config": "config.json"}
DRAFT = "https://json-schema.org/draft/2020-12/schema"

_NOT_BLANK = r"\S"


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


Text = Annotated[str, PydField(min_length=1, pattern=_NOT_BLANK)]
Slug = Annotated[str, PydField(min_length=1, max_length=SLUG_MAX, pattern=SLUG_RE.pattern,
                               description="Lower-case words and digits joined by '-'.")]
FieldId = Annotated[str, PydField(min_length=1, max_length=FIELD_ID_MAX, pattern=FIELD_ID_RE.pattern,
                                  description="Letters, digits, '-' and '_' ('-' and '_' count as the same).")]
AckCode = Annotated[str, PydField(pattern=ACK_CODE_RE.pattern, description="A risk code, like DL102.")]
Currency = Literal[tuple(sorted(ISO_4217))]  # type: ignore[valid-type]


class LabelsFile(_FileModel):
    """Human-readable names (white space is folded)."""

    singular: Text
    plural: Text


_OPTION_TYPES = [t.value for t in FieldType if t.has_options]
_SCALE_TYPES = [t.value for t in FieldType if t.has_scale]


def _type_rules(schema: dict[str, Any]) -> None:
    def when(types: list[str], negate: bool) -> dict[str, Any]:
        cond: dict[str, Any] = {"enum": types}
        return {"properties": {"type": {"not": cond} if negate else cond}, "required": ["type"]}

    null = {"type": "null"}
    schema["allOf"] = [
        {"if": when(_OPTION_TYPES, False),
         "then": {"required": ["options"], "properties": {"options": {"type": "array"}}},
         "else": {"properties": {"options": null}}},
        {"if": when(_SCALE_TYPES, True), "then": {"properties": {"scale": null}}},
        {"if": when(["currency"], True), "then": {"properties": {"defaultCurrency": null}}},
    ]


class FieldFile(_FileModel):
    """A field. ``options`` only (and always) on dropdown/multiselect, ``scale`` on number,
    ``defaultCurrency`` on currency."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_type_rules)

    id: FieldId
    type: FieldType
    labels: LabelsFile
    description: str | None = None
    required: bool = False
    scale: Annotated[int, PydField(ge=0)] | None = None
    defaultCurrency: Currency | None = PydField(default=None, description="ISO 4217 code.")
    options: Annotated[list[Text], PydField(min_length=1, json_schema_extra={"uniqueItems": True})] | None = \
        PydField(default=None, description="Option values; the API assigns the ids. Append-only.")
    protect: bool = PydField(default=False, description="Never deleted by apply, whatever the flags.")
    acknowledge: list[AckCode] = PydField(default=[], description="Risk codes accepted for this field.")


class RelationshipFile(_FileModel):
    """A link to contacts, accounts, deals or another schema's slug."""

    id: Annotated[str, PydField(min_length=1, pattern=FIELD_ID_RE.pattern)]
    namespace: Annotated[str, PydField(min_length=1, description="contacts, accounts, deals or a schema slug.")]
    labels: LabelsFile
    description: str | None = None
    hasMany: Literal[False] = PydField(default=False, description="The API accepts only false.")


class SchemaFile(_FileModel):
    """One ActiveCampaign Custom Object schema (``schemas/<slug>.yaml``)."""

    apiVersion: Literal[API_VERSION] = PydField(description="The file format's version.")  # type: ignore[valid-type]
    kind: Literal[KIND]  # type: ignore[valid-type]
    slug: Slug
    renamed_from: Annotated[str, PydField(min_length=1)] | None = PydField(
        default=None, description="The slug this schema had in the account (a rename).")
    labels: LabelsFile
    description: str | None = None
    protect: bool = PydField(default=False, description="Never deleted by apply, whatever the flags.")
    acknowledge: list[AckCode] = PydField(default=[], description="Risk codes accepted for this schema.")
    fields: list[FieldFile] = []
    relationships: list[RelationshipFile] = []



def _walk_defs(schema: dict[str, Any], name: str) -> dict[str, Any]:
    defs = schema.get("$defs", {})
    return defs.get(name, schema)


def json_schema(kind: str = "schema") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) for schema files (``schema``) or ``reconciler.yaml`` (``config``)."""
    if kind == "schema":
        out = SchemaFile.model_json_schema()
        out["title"] = "reconciler schema file"
    elif kind == "config":
        from reconciler.project import ProjectConfig

        out = ProjectConfig.model_json_schema()
        out["title"] = "reconciler.yaml"
        out["description"] = "reconciler project settings: schemas directory, prune, environments, ignore rules."
        env = _walk_defs(out, "Environment")
        env["properties"]["url"]["pattern"] = "^https?://"
        env["properties"]["protect"]["items"]["pattern"] = (
            f"{SLUG_RE.pattern.rstrip('$')}(\\.{FIELD_ID_RE.pattern.lstrip('^').rstrip('$')})?$")
        env["properties"]["token_env"]["description"] = "The environment variable holding the API token."
        out["properties"]["ignore"]["description"] = (
            "Drift to leave alone: globs on slug.field.property, e.g. '*.description'.")
    else:
        raise ValueError(f"unknown kind {kind!r}: use schema or config")
    return {"$schema": DRAFT, **out}


def json_schema_text(kind: str = "schema") -> str:
    """The schema as the committed copy holds it (2-space indent, sorted keys, final newline)."""
    return json.dumps(json_schema(kind), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def copy_path(root: str | os.PathLike[str], kind: str = "schema") -> Path:
    """``<root>/json-schema/schema.json`` (or ``config.json``)."""
    return Path(root) / COPY_DIR / COPY_FILES[kind]


def modeline_ref(root: str | os.PathLike[str], directory: str | os.PathLike[str]) -> str:
    """The committed schema copy's path relative to ``directory`` (forward slashes), for the modeline."""
    rel = os.path.relpath(Path(root).resolve() / COPY_DIR / COPY_FILES["schema"], Path(directory).resolve())
    return rel.replace(os.sep, "/")


def write_copies(root: str | os.PathLike[str], *, only_missing: bool = False) -> list[Path]:
    """Write the committed copies under ``root`` when missing or different; return those written."""
    from reconciler.writes import write_atomic

    written = []
    for kind in KINDS:
        path = copy_path(root, kind)
        text = json_schema_text(kind)
        if path.exists() and (only_missing or path.read_text(encoding="utf-8") == text):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
        written.append(path)
    return written

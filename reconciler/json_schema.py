"""JSON Schemas for editors, one for schema files and one for ``reconciler.yaml``; and one of the
plan file, for CI tools that read plans (``--kind plan``: the plan model's own, as it writes it).

The schema files' comes from the file format's model, :class:`reconciler.fileformat.SchemaFile`:
its keys, types and required keys, one variant a field type (``options`` only on dropdown and
multiselect, ``scale`` on number, ``defaultCurrency`` on currency), and the domain's rules that a
JSON Schema can express (charsets and lengths, ISO 4217 codes, ``hasMany: false``, unique options).
Rules across values or files (ids equal modulo ``-``/``_``, unique labels, one file per slug,
``renamed_from`` naming the own slug, namespaces of other schemas) stay with ``reconciler validate``.

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
from typing import Any

from reconciler.fileformat import SchemaFile
from reconciler.model import FIELD_ID_RE, SLUG_RE
from reconciler.writing import MODELINE_PREFIX

__all__ = [
    "COPY_DIR",
    "COPY_FILES",
    "KINDS",
    "MODELINE_PREFIX",
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


def _walk_defs(schema: dict[str, Any], name: str) -> dict[str, Any]:
    defs = schema.get("$defs", {})
    return defs.get(name, schema)


def json_schema(kind: str = "schema") -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) for schema files (``schema``), ``reconciler.yaml`` (``config``)
    or plan files (``plan``)."""
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
    elif kind == "events":
        from reconciler.render.events import events_json_schema

        out = events_json_schema()
    elif kind == "plan":
        from reconciler.plan import Plan

        out = Plan.model_json_schema(mode="serialization")
        out["title"] = "reconciler plan file"
        out["description"] = "A saved plan (reconciler plan --out, or --format json): format_version 1."
        out["required"] = [k for k in out.get("required", []) if k != "estimate"]  # written only when stated
        cost = out["$defs"]["_EstimateJson"]
        cost["required"] = [k for k in cost["required"] if k != "backup"]  # written only when there is one
    else:
        raise ValueError(f"unknown kind {kind!r}: use schema, config, plan or events")
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

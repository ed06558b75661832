"""Writing schema files in canonical form: :func:`dump_schema`, :func:`export_schemas`, the modeline.

The canonical form: the file format's key order (:func:`reconciler.fileformat.key_order`), defaults
left out, 2-space indentation with lists indented under their key, flow style for the collections
that hold only scalars (labels, options, acknowledge: :func:`reconciler.fileformat.flow_at`),
multi-line text as a literal block. ``fmt`` brings hand-written files to the same form
(:mod:`reconciler.fmt`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from reconciler.fileerrors import FileError, FilesError, Loc
from reconciler.fileformat import file_data, flow_at
from reconciler.model import EXCERPT_CHARS, Schema, excerpt
from reconciler.source import FORBIDDEN, char_name, read_text
from reconciler.writes import check_writable, write_atomic
from reconciler.yamlrt import rt_yaml

__all__ = [
    "MODELINE_PREFIX",
    "dump",
    "dump_schema",
    "export_schemas",
    "schema_document",
    "with_modeline",
]


#: The key whose multi-line values are written as literal blocks (``|``); other text is quoted.
_BLOCK_TEXT = "description"


def _node(value: Any, loc: Loc) -> Any:
    if isinstance(value, dict):
        node: Any = CommentedMap((k, _node(v, (*loc, k))) for k, v in value.items())
    elif isinstance(value, list):
        node = CommentedSeq(_node(v, (*loc, i)) for i, v in enumerate(value))
    elif isinstance(value, str) and "\n" in value and loc[-1:] == (_BLOCK_TEXT,):
        return LiteralScalarString(value if value.endswith("\n") else value + "\n")
    else:
        return value
    if flow_at(loc):
        node.fa.set_flow_style()
    return node


def schema_document(schema: Schema) -> CommentedMap:
    """The canonical YAML document of a schema: defaults omitted, live-only data and deleted fields dropped."""
    doc: CommentedMap = _node(file_data(schema), ())
    return doc


def dump(doc: Any, *, preserve_quotes: bool = False) -> str:
    """A round-trip document as text, in the house style."""
    buf = StringIO()
    rt_yaml(preserve_quotes=preserve_quotes).dump(doc, buf)
    return buf.getvalue()


def dump_schema(schema: Schema, *, schema_ref: str | None = None) -> str:
    """The canonical YAML text of a schema (``schema_ref``: a ``yaml-language-server`` first line).

    A live schema's fields of types reconciler does not manage (``Schema.opaque_fields``) are not
    written (a file cannot declare them); a comment at the top names each one.
    """
    text = _opaque_comment(schema) + dump(schema_document(schema))
    return text if schema_ref is None else with_modeline(text, schema_ref)


def _opaque_comment(schema: Schema) -> str:
    """``# not exported: field "is-member" (boolean) …`` lines, one per opaque field ('' if none).

    Ids and types come from the account: quoted as JSON (ASCII only), so no character of theirs can
    end the comment line or act on a terminal, and cut to :data:`EXCERPT_CHARS`.
    """
    def quoted(value: str) -> str:
        return json.dumps(value[:EXCERPT_CHARS] + ("…" if len(value) > EXCERPT_CHARS else ""), ensure_ascii=True)

    return "".join(f"# not exported: field {quoted(f.id)} ({quoted(f.type)[1:-1]}), a type reconciler does not "
                   "manage; it stays in the account as it is\n" for f in schema.active_opaque_fields)


#: The first line that points editors (yaml-language-server: VS Code, Neovim …) at a JSON Schema.
MODELINE_PREFIX = "# yaml-language-server: $schema="


def with_modeline(text: str, schema_ref: str) -> str:
    """``text`` whose first line is ``# yaml-language-server: $schema=<schema_ref>``.

    Any ``yaml-language-server`` line in the leading comment block is replaced, so applying this
    again gives the same text. Nothing else changes.
    """
    lines = text.splitlines(keepends=True)
    head = 0
    while head < len(lines) and lines[head].lstrip().startswith("#"):
        head += 1
    kept = [line for i, line in enumerate(lines)
            if not (i < head and line.lstrip().startswith("# yaml-language-server:"))]
    return f"{MODELINE_PREFIX}{schema_ref}\n" + "".join(kept)


#: The longest file name export writes, in bytes: most file systems allow 255 (ext4, APFS, NTFS),
#: and the atomic writer's temporary name (``.<name>.<random>.tmp``) needs room beside it.
_NAME_MAX = 200


def _export_name_problem(slug: str) -> str | None:
    """Why ``<slug>.yaml`` would not be a file that :func:`~reconciler.loading.load_dir` reads back
    (None: it would)."""
    if not slug or "/" in slug or "\\" in slug or "\0" in slug:
        return "not a usable file name"
    if slug.startswith("."):
        return "the file would be hidden, and hidden files are not read"
    bad = FORBIDDEN.search(slug)
    if bad is not None:
        return f"the slug holds a {char_name(bad.group()[0])}"
    if len(f"{slug}.yaml".encode()) > _NAME_MAX:
        return f"the file name would be longer than {_NAME_MAX} bytes"
    return None


def export_schemas(schemas: Iterable[Schema], directory: str | os.PathLike[str],
                   force: bool = False, *, schema_ref: str | None = None,
                   project_file: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write each schema as canonical ``<directory>/<slug>.yaml``; return the files written.

    Every file written is one ``load_dir`` reads: a slug that would give a hidden, unusable or
    over-long file name, or the project file itself, is refused. Slugs equal but for case are
    refused too (one file on a case-insensitive file system). Files that already hold exactly that
    text are left alone. An existing file with other content is an error unless ``force``;
    everything is checked before anything is written.
    """
    d = Path(directory)
    project_real = os.path.realpath(project_file) if project_file is not None else None
    planned: list[tuple[Path, str]] = []
    errors: list[FileError] = []
    seen: dict[str, str] = {}
    for schema in schemas:
        slug = schema.slug
        problem = _export_name_problem(slug)
        target = d / f"{slug}.yaml" if problem is None else d
        if problem is None and slug.casefold() in seen:
            other = seen[slug.casefold()]
            problem = "is exported twice" if other == slug else f"differs from {excerpt(other)} only in case"
        if problem is None and project_real is not None and os.path.realpath(target) == project_real:
            problem = "its file would be the project file"
        if problem is not None:
            errors.append(FileError(target, 0, 0, f"cannot export schema {excerpt(slug)}: {problem}"))
            continue
        seen[slug.casefold()] = slug
        text = dump_schema(schema, schema_ref=schema_ref)
        if os.path.lexists(target):
            current, _ = read_text(target)
            if current == text:
                continue
            if not force:
                errors.append(FileError(target, 0, 0, "already exists with different content; "
                                        "not overwritten (use --force to replace it)"))
                continue
        planned.append((target, text))
    if errors:
        raise FilesError(errors)
    if planned:
        d.mkdir(parents=True, exist_ok=True)
    for target, _ in planned:
        check_writable(target)  # a link or a device in the way: refused before anything is written
    for target, text in planned:
        write_atomic(target, text)
    return [target for target, _ in planned]

"""Schema files in and out: YAML with ruamel.yaml round-trip, errors as ``path:line:col: message``.

Loading (:func:`load_dir`, :func:`load_file`, :func:`load_text`) reports *every* problem of *every*
file in one :class:`FilesError`, each pointing at the offending node: syntax errors, tabs, duplicate
keys, unknown keys (with a "did you mean" hint), wrong types (strict: ``"yes"`` is not a boolean),
every model rule of :func:`reconciler.model.check_schema` and slugs declared twice.

Schema files may come from a pull request, so reading them is defensive:

* which files (:func:`schema_files`): ``**/*.yaml|yml`` under the directory, hidden names skipped,
  symbolic links followed only inside the repository, anything that is not a regular file an
  error that names it (never opened);
* limits (:data:`MAX_FILE_BYTES`, :data:`MAX_ALIAS_NODES`, :data:`MAX_DEPTH`,
  :data:`MAX_INT_DIGITS`, :data:`MAX_TEXT_CHARS`), each one error line, found before the step
  it protects; control and bidirectional characters are refused;
* messages quote at most a short excerpt of a file (:func:`reconciler.model.excerpt`).

Writing (:func:`dump_schema`, :func:`export_schemas`) produces the canonical form;
:func:`format_text` / :func:`fmt_dir` bring a hand-written file into canonical key order and style
while keeping its comments (:class:`Reformat` holds a change and its diff).

The YAML machinery shared with ``project.py`` (:func:`read_yaml`, :func:`validate_strict`,
:func:`node_position`, :func:`unknown_key_errors`) lives here too.
"""

from __future__ import annotations

import difflib
import errno
import json
import math
import os
import re
import stat
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedBase, CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarstring import LiteralScalarString
from ruamel.yaml.scanner import RoundTripScanner
from ruamel.yaml.tokens import CommentToken

from reconciler.model import EXCERPT_CHARS, FieldType, Schema, excerpt, local_problems, namespace_problems
from reconciler.writes import check_writable, write_atomic

__all__ = [
    "API_VERSION",
    "FIELD_KEYS",
    "KIND",
    "LABEL_KEYS",
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT_DIGITS",
    "MAX_LISTED",
    "MAX_TEXT_CHARS",
    "RELATIONSHIP_KEYS",
    "SCHEMA_KEYS",
    "FileError",
    "FilesError",
    "LoadedSchemas",
    "Reformat",
    "default_root",
    "dump_schema",
    "export_schemas",
    "fmt_dir",
    "format_text",
    "load_dir",
    "load_file",
    "load_text",
    "schema_files",
    "with_modeline",
]

API_VERSION = "reconciler/v1"
KIND = "CustomObjectSchema"

#: Allowed keys, in canonical order.
SCHEMA_KEYS = ("apiVersion", "kind", "slug", "renamed_from", "labels", "description", "protect",
               "acknowledge", "fields", "relationships")
FIELD_KEYS = ("id", "type", "labels", "description", "required", "scale", "defaultCurrency", "options",
              "protect", "acknowledge")
RELATIONSHIP_KEYS = ("id", "namespace", "labels", "description", "hasMany")
LABEL_KEYS = ("singular", "plural")
#: Attributes the account sets; they exist on the model but may not be written in files.
LIVE_ONLY_KEYS = frozenset({"id", "inherited", "status", "visibility", "customized", "parentId", "appId",
                            "createdTimestamp", "updatedTimestamp"})
SCHEMA_SUFFIXES = (".yaml", ".yml")

# Limits. A schema file may come from a pull request: each limit turns an input that would take
# minutes or gigabytes into one error line, found before the expensive step it protects.

MAX_FILE_BYTES = 1 << 20
"""Largest YAML file read, 1 MiB; checked with ``stat`` before the file is opened. A hand-written
schema of 1,000 fields is about 150 KB. (The pure-Python YAML parser reads a dense 1 MiB file in
some 20 s: the limit bounds the time, it does not make a file at the limit fast.)"""

MAX_ALIAS_NODES = 10_000
"""Most YAML nodes that aliases (``*name``) may add when expanded: an "alias bomb" of 1 KB
expands to billions. Counted on the parsed node graph, before anything walks it as a tree."""

MAX_DEPTH = 32
"""Deepest nesting of mappings and lists; a schema file needs 4 levels. Enforced while scanning,
so 50,000 nested brackets stop at the 33rd."""

MAX_INT_DIGITS = 15
"""Most digits in a YAML integer (``scale``, or a number anywhere): more is a typo or an attack,
and a few thousand digits cannot even be converted by Python."""

MAX_TEXT_CHARS = 64 * 1024
"""Longest string (a description, a label, any value or key), 64 KiB characters."""

#: Characters no schema file may hold, as such or through a ``"\\e"`` escape: C0 controls but
#: tab and newline (a CR only as part of a CRLF line end), DEL, C1 controls, the bidirectional
#: overrides and isolates (they make a terminal or an editor show other text than the file holds),
#: and U+FFFE/U+FFFF, which YAML itself refuses.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff]"
                        "|\r(?!\n)")

Loc = tuple[str | int, ...]


# --------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class FileError:
    """One problem in one file. ``line``/``col`` are 1-based; 0 means "the file as a whole"."""

    path: Path
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}:{self.col}: {self.message}"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (str(self.path), self.line, self.col, self.message)


class FilesError(Exception):
    """Every problem found, sorted by path, line and column. ``str()`` is one problem a line."""

    def __init__(self, errors: Iterable[FileError]) -> None:
        self.errors: list[FileError] = sorted(errors, key=FileError.sort_key)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


# --------------------------------------------------------------------------------------------
# Reading YAML (shared with project.py)


class _TooDeep(Exception):
    """Raised by :class:`_GuardedScanner` at the first collection past :data:`MAX_DEPTH`."""

    def __init__(self, mark: Any) -> None:
        super().__init__("nesting too deep")
        self.mark = mark


class _GuardedScanner(RoundTripScanner):
    """ruamel's round-trip scanner with a nesting bound.

    Unbounded, ``[`` x 50,000 costs quadratic time in the scanner (it keeps one possible simple key
    a level) and then exhausts the composer's recursion. Block levels and flow levels are counted
    as they open; this never counts more levels than the document has.
    """

    def _guard(self) -> None:
        if self.flow_level + len(self.indents) >= MAX_DEPTH:
            raise _TooDeep(self.reader.get_mark())

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: Any) -> None:
        self._guard()
        super().fetch_flow_collection_start(TokenClass, to_push)

    def add_indent(self, column: int) -> bool:
        if self.indent < column and not self.flow_level:
            self._guard()
        return bool(super().add_indent(column))


def _rt_yaml(*, preserve_quotes: bool = False) -> YAML:
    """A fresh round-trip YAML instance with the house style for dumping and a guarded scanner."""
    yaml = YAML(typ="rt")
    yaml.Scanner = _GuardedScanner
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold long lines
    yaml.preserve_quotes = preserve_quotes
    return yaml


def _err(path: Path, mark: Any, message: str) -> FileError:
    if mark is None:
        return FileError(path, 1, 1, message)
    return FileError(path, mark.line + 1, mark.column + 1, message)


def _depth_error(path: Path, mark: Any) -> FileError:
    return _err(path, mark, f"nesting deeper than the limit of {MAX_DEPTH} levels")


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    """``"a FIFO"``, ``"a directory"`` …: what a non-regular file is, for messages."""
    for test, name in _FILE_KINDS:
        if test(mode):
            return name
    return "a file" if stat.S_ISREG(mode) else "not a regular file"


def _size_error(path: Path, size: int) -> FileError:
    limit = f"{MAX_FILE_BYTES >> 20} MiB" if MAX_FILE_BYTES % (1 << 20) == 0 else f"{MAX_FILE_BYTES:,} bytes"
    return FileError(path, 0, 0, f"file is {size:,} bytes, over the size limit of {limit}; not read")


def _read_bytes(path: Path) -> tuple[bytes | None, list[FileError]]:
    """The bytes of a regular file of at most :data:`MAX_FILE_BYTES`, else one error.

    ``stat`` comes first, so a FIFO or a device is never opened; the open is non-blocking and the
    opened file is checked again, in case the path changed in between.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None, [FileError(path, 0, 0, f"is {_kind(st.st_mode)}, not a file; not read")]
        if st.st_size > MAX_FILE_BYTES:
            return None, [_size_error(path, st.st_size)]
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None, [FileError(path, 0, 0, f"is {_kind(st.st_mode)}, not a file; not read")]
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, [FileError(path, 0, 0, f"cannot read file: {exc.strerror or exc}")]
    if len(raw) > MAX_FILE_BYTES:
        return None, [_size_error(path, len(raw))]
    return raw, []


def _decode(path: Path, raw: bytes) -> tuple[str | None, list[FileError]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        bad = raw[exc.start : exc.start + 1].hex()
        return None, [FileError(path, line, col, f"file is not UTF-8 (invalid byte 0x{bad}); save it as UTF-8")]
    return text.removeprefix("\ufeff"), []


def _read_text(path: str | os.PathLike[str]) -> tuple[str | None, list[FileError]]:
    """The text of a YAML file, within the size limit and decoded as UTF-8 (a BOM dropped)."""
    p = Path(path)
    raw, errors = _read_bytes(p)
    if raw is None:
        return None, errors
    return _decode(p, raw)


def _char_name(ch: str) -> str:
    """``control character U+001B``, ``bidirectional control character U+202E`` …"""
    code = ord(ch)
    if 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
        return f"bidirectional control character U+{code:04X}"
    if code in (0xFFFE, 0xFFFF):
        return f"noncharacter U+{code:04X}"
    return f"control character U+{code:04X}"


def _char_problem(*chars: str) -> str:
    """The message for forbidden characters, e.g. ``control character U+001B is not allowed …``."""
    names = [_char_name(ch) for ch in dict.fromkeys(chars)]
    shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    verb = "is" if len(names) == 1 else "are"
    return f"{shown} {verb} not allowed (it can hide or rewrite text on a terminal)"


#: At most this many errors of one kind are listed for one file (a file of 100,000 bad lines gives
#: 20 lines and a count, not 100,000 lines).
MAX_LISTED = 20


def _capped(path: Path, errors: list[FileError], what: str) -> list[FileError]:
    if len(errors) <= MAX_LISTED:
        return errors
    return [*errors[:MAX_LISTED], FileError(path, 0, 0, f"{len(errors):,} {what}; the first {MAX_LISTED} are listed")]


def _control_errors(path: Path, text: str) -> list[FileError]:
    """Forbidden characters written as such: one error a line, at the first, naming each kind."""
    errors: list[FileError] = []
    line, counted = 1, 0
    m = _FORBIDDEN.search(text)
    while m is not None:
        start = m.start()
        line += text.count("\n", counted, start)
        counted = start
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        col = start - (text.rfind("\n", 0, start) + 1) + 1
        chars = [found[0] for found in _FORBIDDEN.findall(text, start, end)]
        errors.append(FileError(path, line, col, _char_problem(*chars)))
        m = _FORBIDDEN.search(text, end)
    return _capped(path, errors, "lines hold forbidden characters")


def _tab_errors(path: Path, text: str) -> list[FileError]:
    """Tabs in indentation: YAML indents with spaces only."""
    errors = []
    for n, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            errors.append(FileError(path, n, indent.index("\t") + 1,
                                    "tab character in indentation (YAML indents with spaces)"))
    return _capped(path, errors, "lines are indented with tabs")


def _int_digits(value: str) -> int:
    body = value.lstrip("+-").replace("_", "")
    if body[:2].lower() in ("0x", "0o", "0b"):
        body = body[2:]
    return len(body)


def _scalar_errors(path: Path, node: ScalarNode) -> list[FileError]:
    """Limits on one scalar: text length, integer digits, control characters written as escapes."""
    value = node.value
    if not isinstance(value, str):
        return []
    if len(value) > MAX_TEXT_CHARS:
        return [_err(path, node.start_mark, f"text of {len(value):,} characters, over the limit of "
                                            f"{MAX_TEXT_CHARS:,} characters")]
    if str(node.tag).endswith(":int") and _int_digits(value) > MAX_INT_DIGITS:
        return [_err(path, node.start_mark, f"number of {_int_digits(value):,} digits, over the limit of "
                                            f"{MAX_INT_DIGITS} digits")]
    bad = _FORBIDDEN.search(value)
    char = bad.group()[0] if bad is not None else ("\r" if "\r" in value else None)  # CRLF too: from an escape
    if char is not None:
        return [_err(path, node.start_mark, _char_problem(char))]
    return []


def _node_errors(path: Path, root: Node) -> list[FileError]:
    """Limits on the composed node graph, before anything walks it as a tree or builds values.

    Aliases make the graph a DAG (or a cycle): nodes are counted as expanded, and the walk stops
    at :data:`MAX_ALIAS_NODES` repeated visits or :data:`MAX_DEPTH` levels, so it costs at most
    the distinct nodes plus the bound. Scalars are checked once each (:func:`_scalar_errors`).
    """
    errors: list[FileError] = []
    seen: set[int] = set()
    repeats = 0
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            repeats += 1
            if repeats > MAX_ALIAS_NODES:
                return [_err(path, node.start_mark, f"aliases expand to more than the limit of "
                                                    f"{MAX_ALIAS_NODES:,} nodes")]
        else:
            seen.add(id(node))
            if isinstance(node, ScalarNode):
                errors += _scalar_errors(path, node)
                continue
        if isinstance(node, (MappingNode, SequenceNode)):
            if depth > MAX_DEPTH:
                return [_depth_error(path, node.start_mark)]
            if isinstance(node, MappingNode):
                for key, value in reversed(node.value):
                    stack.append((value, depth + 1))
                    stack.append((key, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in reversed(node.value))
    return _capped(path, sorted(errors, key=FileError.sort_key), "values are over a limit")


def _duplicate_key_errors(path: Path, node: Node | None) -> list[FileError]:
    errors: list[FileError] = []
    stack = [node]
    done: set[int] = set()  # an aliased mapping is reported once, where it is written
    while stack:
        n = stack.pop()
        if id(n) in done:
            continue
        done.add(id(n))
        if isinstance(n, MappingNode):
            seen: dict[Any, Any] = {}
            for key, value in n.value:
                if isinstance(key, ScalarNode):
                    if key.value in seen:
                        first = seen[key.value]
                        errors.append(_err(path, key.start_mark,
                                           f"duplicate key {excerpt(key.value)} (first at line {first.line + 1})"))
                    else:
                        seen[key.value] = key.start_mark
                stack.extend([key, value])
        elif isinstance(n, SequenceNode):
            stack.extend(n.value)
    return errors


_QUOTED = re.compile(rf"'([^']{{{EXCERPT_CHARS}}})[^']+'")  # a quoted piece of the file, longer than an excerpt


def _yaml_problem(exc: YAMLError) -> tuple[Any, str]:
    """(mark, text) of a parser error; file content it quotes is cut to a short excerpt."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or type(exc).__name__
    context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and cmark is not None and cmark is not mark and context != problem:
        problem += f" ({context} at line {cmark.line + 1}, column {cmark.column + 1})"
    problem = _QUOTED.sub(lambda m: f"'{m.group(1)}…'", problem)
    if len(problem) > 200:
        problem = problem[:200] + "…"
    return mark, problem


def read_yaml(path: Path, *, allow_empty: bool = False, text: str | None = None,
              what: str = "a schema") -> tuple[Any, list[FileError]]:
    """Read one single-document YAML file with round-trip types (positions in ``.lc``).

    Returns ``(data, errors)``; ``data`` is None when there are errors or the file is empty
    (an error unless ``allow_empty``). ``text`` skips reading the file. Never raises for bad input.
    Every limit (``MAX_*``) and the forbidden characters are checked before the document is built.
    """
    if text is None:
        text, errors = _read_text(path)
        if text is None:
            return None, errors
    elif len(text) > MAX_FILE_BYTES // 4 and len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return None, [_size_error(path, len(text.encode("utf-8")))]
    errors = _control_errors(path, text) + _tab_errors(path, text)
    if errors:
        return None, errors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            docs = list(_rt_yaml().compose_all(text))
        except _TooDeep as exc:
            return None, [_depth_error(path, exc.mark)]
        except RecursionError:  # a bound the scanner guard missed: still the depth limit
            return None, [FileError(path, 0, 0, f"nesting deeper than the limit of {MAX_DEPTH} levels")]
        except ReaderError as exc:  # a character YAML does not allow (not one of _FORBIDDEN: unexpected)
            before = text[: exc.position]
            message = _char_problem(chr(exc.character)) if isinstance(exc.character, int) \
                else f"invalid YAML: {exc.reason}"
            return None, [FileError(path, before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1,
                                    message)]
        except YAMLError as exc:
            mark, problem = _yaml_problem(exc)
            return None, [_err(path, mark, f"invalid YAML: {problem}")]
        docs = [d for d in docs if not (isinstance(d, ScalarNode) and d.tag.endswith(":null") and not d.value)]
        if not docs:
            if allow_empty:
                return None, []
            return None, [FileError(path, 1, 1, f"file is empty: expected {what}")]
        if len(docs) > 1:
            return None, [_err(path, docs[1].start_mark,
                               f"file holds {len(docs)} YAML documents: put one in each file")]
        errors = _node_errors(path, docs[0])
        if errors:
            return None, errors
        errors = _duplicate_key_errors(path, docs[0])
        if errors:
            return None, errors
        try:
            data = _rt_yaml().load(text)
        except (YAMLError, ValueError) as exc:  # pragma: no cover - composing succeeded, so unexpected
            return None, [_err(path, getattr(exc, "problem_mark", None), f"invalid YAML: {type(exc).__name__}")]
    return data, []


# --------------------------------------------------------------------------------------------
# Positions and messages


def node_position(data: Any, loc: Loc, *, key: bool = False) -> tuple[int, int]:
    """1-based (line, col) of the node at ``loc`` inside round-trip ``data``.

    ``key=True`` points at the key of the last step instead of its value. When the path leaves the
    document (a missing key), the deepest existing node is used.
    """
    node = data
    pos = (data.lc.line, data.lc.col) if isinstance(data, CommentedBase) and hasattr(data, "lc") else (0, 0)
    for i, step in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, CommentedMap) and not isinstance(step, int) and step in node:
            value = node[step]
            pos = node.lc.key(step) if (key and last) or value is None else node.lc.value(step)
            node = value
        elif isinstance(node, CommentedSeq) and isinstance(step, int) and 0 <= step < len(node):
            pos = node.lc.item(step)
            node = node[step]
        else:
            break
        if isinstance(node, CommentedBase) and not isinstance(node, (CommentedMap, CommentedSeq)):
            break
    if pos is None:
        pos = (0, 0)
    return pos[0] + 1, pos[1] + 1


def _get(data: Any, loc: Loc) -> Any:
    node = data
    for step in loc:
        in_map = isinstance(node, Mapping) and step in node
        in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        if not (in_map or in_list):
            return None
        node = node[step]
    return node


def describe(value: Any) -> str:
    """A short, user-facing description of a YAML value, e.g. ``the string 'yes'``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {excerpt(value)}"
    if isinstance(value, str):
        return f"the string {excerpt(str(value))}"
    if isinstance(value, (date, datetime)):
        return f"the date {value.isoformat()}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _name(loc: Loc) -> str:
    """``('fields', 2, 'required')`` -> ``'required'``; ``('acknowledge', 0)`` -> ``'acknowledge[0]'``."""
    out = ""
    for step in loc:
        out = f"{out}[{step}]" if isinstance(step, int) else str(step)
    if not out:
        return "the document"
    return out if "[" in out else repr(out)


def _quote(value: Any) -> str:
    """A value as messages quote it: a string as a short ``repr``, anything else described."""
    return excerpt(value) if isinstance(value, str) else describe(value)


def _suggest(word: str, choices: Iterable[str]) -> str:
    if len(word) > 2 * max((len(c) for c in choices), default=0) + 10:
        return ""  # nothing is close, and difflib's time grows with the word
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def unknown_key_errors(path: Path, data: Any, loc: Loc, allowed: Sequence[str], what: str) -> list[FileError]:
    """Errors for keys of the mapping at ``loc`` that are not in ``allowed``, with a close match."""
    node = _get(data, loc)
    if not isinstance(node, Mapping):
        return []
    errors = []
    for k in node:
        if k in allowed:
            continue
        line, col = node_position(data, (*loc, k), key=True)
        if isinstance(k, str) and k in LIVE_ONLY_KEYS and allowed is not LABEL_KEYS:
            message = f"{k!r} is set by the account and cannot be written in a file"
        else:
            message = f"unknown key {excerpt(k)} in {what}{_suggest(str(k), allowed)}"
        errors.append(FileError(path, line, col, message))
    return errors


_TYPE_WORDS = {
    "bool_type": "true or false",
    "string_type": "a string",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def validation_errors(path: Path, data: Any, exc: ValidationError, base: Loc = (),
                      allowed_keys: Callable[[Loc], Sequence[str]] | None = None,
                      rename: Callable[[Loc, dict[str, Any]], tuple[Loc, str] | None] | None = None,
                      ) -> list[FileError]:
    """Map each pydantic error onto the YAML node it is about.

    ``base`` prefixes every error location (the validated value's path in the document);
    ``rename`` may rewrite an error to ``(loc, message)`` first (or return None to keep it).
    """
    errors = []
    for e in exc.errors():
        loc: Loc = (*base, *e["loc"])
        custom = rename(loc, e) if rename else None
        if custom is not None:
            loc, message = custom
            line, col = node_position(data, loc)
        elif e["type"] == "missing":
            parent, missing = loc[:-1], loc[-1]
            line, col = node_position(data, parent)
            where = f" in {_name(parent)}" if parent else ""
            message = f"missing required key {missing!r}{where}"
        elif e["type"] == "extra_forbidden":
            line, col = node_position(data, loc, key=True)
            choices = allowed_keys(loc[:-1]) if allowed_keys else ()
            message = f"unknown key {excerpt(loc[-1])}{_suggest(str(loc[-1]), choices)}"
        else:
            line, col = node_position(data, loc)
            value = _get(data, loc)
            if e["type"] in _TYPE_WORDS:
                message = f"{_name(loc)} must be {_TYPE_WORDS[e['type']]}, not {describe(value)}"
            elif e["type"] == "string_too_short":
                message = f"{_name(loc)} must not be empty"
            else:
                message = f"{_name(loc)}: {e['msg']}"
        errors.append(FileError(path, line, col, message))
    return errors


class _Opaque:
    """A YAML value JSON cannot carry (a date, a set, …): strict validation refuses it."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) else str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else {"__yaml__": "non-finite number"}
    return {"__yaml__": type(value).__name__}


M = TypeVar("M", bound=BaseModel)


def validate_strict(model: type[M], value: Any) -> M:
    """Validate YAML data without coercion: ``"yes"`` is not a bool, ``1`` is not a string.

    Goes through JSON so that enums accept their values while strict mode stays on.
    """
    return model.model_validate_json(json.dumps(_jsonable(value)), strict=True)


# --------------------------------------------------------------------------------------------
# Loading schemas


@dataclass
class _Parsed:
    """One file's outcome. Its round-trip document is not kept (10,000 files would keep 10,000
    documents alive until the end): only the positions the rules across files point at."""

    path: Path
    schema: Schema | None = None
    slug: str | None = None  # as written, even when the file is otherwise invalid
    errors: list[FileError] = field(default_factory=list)
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def at(self, loc: Loc, message: str) -> None:
        """Add an error at one of the kept positions (the file's start if it was not kept)."""
        line, col = self.positions.get(loc, (1, 1))
        self.errors.append(FileError(self.path, line, col, message))


def _check_document(path: Path, data: Any) -> _Parsed:
    """Everything about one parsed document except the rules that need the other files."""
    out = _Parsed(path)
    if not isinstance(data, CommentedMap):
        line, col = node_position(data, ())
        out.errors.append(FileError(path, line if line > 0 else 1, col if col > 0 else 1,
                                    f"a schema file must hold a mapping (apiVersion, kind, slug, …), "
                                    f"not {describe(data)}"))
        return out
    errs = out.errors
    for key, want in (("apiVersion", API_VERSION), ("kind", KIND)):
        if key not in data:
            line, col = node_position(data, ())
            errs.append(FileError(path, line, col, f"missing required key {key!r} (use {key}: {want})"))
        elif data[key] != want:
            line, col = node_position(data, (key,))
            errs.append(FileError(path, line, col,
                                  f"unsupported {key} {_quote(data[key])}: the supported {key} is {want!r}"))
    if isinstance(data.get("slug"), str):
        out.slug = data["slug"]
        out.positions[("slug",)] = node_position(data, ("slug",))

    # Unknown keys, level by level (the model itself would accept live-only attributes).
    errs += unknown_key_errors(path, data, (), SCHEMA_KEYS, "the schema")
    errs += unknown_key_errors(path, data, ("labels",), LABEL_KEYS, "labels")
    for section, keys, what in (("fields", FIELD_KEYS, "a field"),
                                ("relationships", RELATIONSHIP_KEYS, "a relationship")):
        items = data.get(section)
        if isinstance(items, list):
            for i in range(len(items)):
                errs += unknown_key_errors(path, data, (section, i), keys, what)
                errs += unknown_key_errors(path, data, (section, i, "labels"), LABEL_KEYS, "labels")

    # The model's input: known keys only; options written as values become Option mappings.
    body = {k: v for k, v in data.items() if k in SCHEMA_KEYS and k not in ("apiVersion", "kind")}
    for section, keys in (("fields", FIELD_KEYS), ("relationships", RELATIONSHIP_KEYS)):
        items = body.get(section)
        if isinstance(items, list):
            body[section] = [_clean_item(path, data, section, i, item, keys, errs) for i, item in enumerate(items)]
    if isinstance(body.get("labels"), Mapping):
        body["labels"] = {k: v for k, v in body["labels"].items() if k in LABEL_KEYS}
    try:
        schema = validate_strict(Schema, body)
    except ValidationError as exc:
        errs += validation_errors(path, data, exc, rename=_schema_error)
        return out
    if errs:
        return out
    out.schema = schema  # well-formed: the rules across files apply to it, whatever its own problems
    for problem in local_problems(schema):
        line, col = node_position(data, problem.loc)
        errs.append(FileError(path, line, col, problem.message))
    out.positions[("renamed_from",)] = node_position(data, ("renamed_from",))
    for i in range(len(schema.relationships)):
        loc: Loc = ("relationships", i, "namespace")
        out.positions[loc] = node_position(data, loc)
    return out


def _clean_item(path: Path, data: Any, section: str, i: int, item: Any, keys: Sequence[str],
                errs: list[FileError]) -> Any:
    if not isinstance(item, Mapping):
        return item
    clean = {k: v for k, v in item.items() if k in keys}
    if isinstance(clean.get("labels"), Mapping):
        clean["labels"] = {k: v for k, v in clean["labels"].items() if k in LABEL_KEYS}
    options = clean.get("options")
    if isinstance(options, list):
        values = []
        for j, o in enumerate(options):
            if isinstance(o, str):
                values.append({"value": o})
            else:
                line, col = node_position(data, (section, i, "options", j))
                hint = f" (quote it: '{excerpt(o)}')" if isinstance(o, (int, float)) and not isinstance(o, bool) \
                    else ""
                errs.append(FileError(path, line, col, f"an option must be a string, not {describe(o)}{hint}"))
        clean["options"] = values
    return clean


def _schema_error(loc: Loc, e: dict[str, Any]) -> tuple[Loc, str] | None:
    """Schema-specific wording for some pydantic errors."""
    if len(loc) >= 4 and loc[0] == "fields" and loc[2] == "options" and isinstance(loc[3], int):
        loc = loc[:4]
        if e["type"] == "string_too_short":
            return loc, "an option must not be empty"
        return loc, f"option: {e['msg']}"
    if len(loc) == 3 and loc[0] == "fields" and loc[2] == "type" and e["type"] == "enum":
        value = e.get("input")
        valid = [t.value for t in FieldType]
        hint = _suggest(value, valid) if isinstance(value, str) else ""
        return loc, f"unknown field type {_quote(value)}{hint}; valid types: {', '.join(valid)}"
    return None


def _check_all(parsed: list[_Parsed]) -> None:
    """Rules across files: one slug, one file; namespaces with every slug known; renames."""
    first_by_slug: dict[str, _Parsed] = {}
    for p in parsed:
        if p.slug is None:
            continue
        if p.slug in first_by_slug:
            p.at(("slug",), f"slug {excerpt(p.slug)} is already declared in {first_by_slug[p.slug].path}")
            p.schema = None
        else:
            first_by_slug[p.slug] = p
    slugs = set(first_by_slug)
    renamed: dict[str, _Parsed] = {}
    for p in parsed:
        schema = p.schema
        if schema is None:
            continue
        for problem in namespace_problems(schema, known_slugs=slugs - {schema.slug}):
            p.at(problem.loc, problem.message)
        old = schema.renamed_from
        if old is not None and old != schema.slug:
            if old in first_by_slug:
                p.at(("renamed_from",), f"renamed_from {excerpt(old)} is the slug of {first_by_slug[old].path}: "
                                        "a slug cannot be renamed and kept")
            elif old in renamed:
                p.at(("renamed_from",), f"renamed_from {excerpt(old)} is already claimed by {renamed[old].path}")
            else:
                renamed[old] = p


class LoadedSchemas(Mapping[str, Schema]):
    """The desired schemas of a directory, by slug (file-name order), with where each came from.

    ``empty`` is true when the directory is missing or holds no schema file: callers must not
    read that as "delete everything".
    """

    def __init__(self, directory: Path, schemas: dict[str, Schema], sources: dict[str, Path],
                 *, missing: bool = False) -> None:
        self.directory = directory
        self.schemas = schemas
        self.sources = sources
        self.missing = missing

    @property
    def empty(self) -> bool:
        return not self.schemas

    def __getitem__(self, slug: str) -> Schema:
        return self.schemas[slug]

    def __iter__(self) -> Iterator[str]:
        return iter(self.schemas)

    def __len__(self) -> int:
        return len(self.schemas)

    def __repr__(self) -> str:
        return f"LoadedSchemas({self.directory!s}, {sorted(self.schemas)})"


def default_root(directory: str | os.PathLike[str]) -> Path:
    """The repository a schemas directory belongs to: the nearest ancestor (itself included) that
    holds ``.git``, else the directory's parent. Symbolic links under the directory may point
    anywhere inside it, and nowhere else."""
    d = Path(os.path.abspath(directory))
    for candidate in (d, *d.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return d.parent


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _hidden_below(real: str, root_real: str) -> bool:
    rel = os.path.relpath(real, root_real)
    return any(part.startswith(".") and part not in (".", "..") for part in Path(rel).parts)


def _link_problem(path: Path, st: os.stat_result, root_real: str) -> str | None:
    """Why a symbolic link that resolves may not be followed (None: follow it)."""
    real = os.path.realpath(path)
    what = "a file" if stat.S_ISREG(st.st_mode) else _kind(st.st_mode)
    if not _inside(real, root_real):
        return f"symbolic link to {what} outside the repository; not read"
    if _hidden_below(real, root_real):
        return f"symbolic link to {what} in a hidden path ({os.path.relpath(real, root_real)}); not read"
    return None


def _discover(directory: Path, root: Path | None, project_file: Path | None) -> tuple[list[Path], list[FileError]]:
    """The schema files under ``directory`` (recursively, sorted by relative path) and the problems
    found on the way. Nothing here opens a file: kinds come from ``lstat``/``stat``.

    Hidden names (``.x``) are skipped, files and directories alike. A symbolic link to a schema
    file or a directory is followed only when it resolves inside ``root`` and not into a hidden
    path (a link to any other regular file is ignored, like that file would be). A dangling link,
    a link loop, a FIFO, a socket or a device is an error whatever its name (it might have been a
    schema), as is a name holding a forbidden character. The project file is skipped, compared
    by real path. A directory reached twice (a link cycle) is an error, not read again.
    """
    root_real = os.path.realpath(root if root is not None else default_root(directory))
    project_real = os.path.realpath(project_file) if project_file is not None else None
    files: list[Path] = []
    errors: list[FileError] = []
    top = os.stat(directory)
    read_dirs: dict[tuple[int, int], Path] = {(top.st_dev, top.st_ino): directory}
    stack = [directory]
    while stack:
        current = stack.pop()
        try:
            names = sorted(e.name for e in os.scandir(current))
        except OSError as exc:
            errors.append(FileError(current, 0, 0, f"cannot read directory: {exc.strerror or exc}"))
            continue
        for name in reversed(names):  # a stack: pushed last, read first
            if name.startswith("."):
                continue
            path = current / name
            bad = _FORBIDDEN.search(name)
            if bad is not None:
                errors.append(FileError(current, 0, 0, f"file name {excerpt(name)} holds a "
                                                       f"{_char_name(bad.group()[0])}; not read"))
                continue
            try:
                is_link = stat.S_ISLNK(os.lstat(path).st_mode)
                st = os.stat(path)
            except FileNotFoundError:
                if is_link:
                    errors.append(FileError(path, 0, 0, "symbolic link to a missing file (a dangling link); not read"))
                continue  # removed while listing
            except OSError as exc:
                message = ("symbolic link loop; not read" if exc.errno == errno.ELOOP
                           else f"cannot read: {exc.strerror or exc}")
                errors.append(FileError(path, 0, 0, message))
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            is_schema = stat.S_ISREG(st.st_mode) and path.suffix in SCHEMA_SUFFIXES
            if is_link and (is_dir or is_schema or not stat.S_ISREG(st.st_mode)):
                problem = _link_problem(path, st, root_real)
                if problem is not None:
                    errors.append(FileError(path, 0, 0, problem))
                    continue
            if is_dir:
                key = (st.st_dev, st.st_ino)
                if key in read_dirs:
                    what = "symbolic link to" if is_link else "the same directory as"
                    errors.append(FileError(path, 0, 0, f"{what} {read_dirs[key]}/, which is already read;"
                                                        " not read twice"))
                    continue
                read_dirs[key] = path
                stack.append(path)
            elif stat.S_ISREG(st.st_mode):
                if is_schema and not (project_real is not None and os.path.realpath(path) == project_real):
                    files.append(path)
            else:
                errors.append(FileError(path, 0, 0, f"is {_kind(st.st_mode)}, not a file; not read"))
    return sorted(files), errors


def _check_directory(d: Path, root: Path | None) -> list[FileError]:
    """Problems with the schemas directory itself (it exists: see :func:`load_dir`)."""
    if os.path.islink(d) or not os.path.isdir(d):
        try:
            st = os.stat(d)
        except OSError as exc:
            return [FileError(d, 0, 0, "symbolic link loop; not read" if exc.errno == errno.ELOOP
                              else "symbolic link to a missing directory (a dangling link)")]
        if not stat.S_ISDIR(st.st_mode):
            return [FileError(d, 0, 0, "not a directory")]
    root_real = os.path.realpath(root if root is not None else default_root(d))
    if not _inside(os.path.realpath(d), root_real):
        return [FileError(d, 0, 0, "the schemas directory resolves to a directory outside the repository"
                                   f" ({root_real}); not read")]
    return []


def schema_files(directory: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
                 project_file: str | os.PathLike[str] | None = None) -> list[Path]:
    """The schema files under ``directory`` (``**/*.yaml``, ``**/*.yml``), sorted by relative path.

    Hidden files and directories are skipped, and so is ``project_file``; symbolic links are
    followed only inside ``root`` (default: :func:`default_root`). A missing directory has none.
    Raises :class:`FilesError` for what cannot be read (links out, dangling links, FIFOs, …).
    """
    d = Path(directory)
    if not os.path.lexists(d):
        return []
    paths, errors = _files_of(d, root, project_file)
    if errors:
        raise FilesError(errors)
    return paths


def _files_of(d: Path, root: str | os.PathLike[str] | None,
              project_file: str | os.PathLike[str] | None) -> tuple[list[Path], list[FileError]]:
    r = Path(root) if root is not None else None
    errors = _check_directory(d, r)
    if errors:
        return [], errors
    return _discover(d, r, Path(project_file) if project_file is not None else None)


def load_dir(directory: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
             project_file: str | os.PathLike[str] | None = None) -> LoadedSchemas:
    """Load and check every schema file under ``directory``; raise :class:`FilesError` with all problems.

    Which files: see :func:`schema_files`. Problems finding files and problems in files are
    reported together.
    """
    d = Path(directory)
    if not os.path.lexists(d):
        return LoadedSchemas(d, {}, {}, missing=True)
    paths, errors = _files_of(d, root, project_file)
    return _load_paths(d, paths, errors)


def _load_paths(d: Path, paths: list[Path], found: Sequence[FileError] = ()) -> LoadedSchemas:
    parsed: list[_Parsed] = []
    for path in paths:
        data, errors = read_yaml(path)
        parsed.append(_Parsed(path, errors=errors) if errors else _check_document(path, data))
        del data  # the document is dropped here, file by file (see _Parsed)
    _check_all(parsed)
    errors = [*found, *(e for p in parsed for e in p.errors)]
    if errors:
        raise FilesError(errors)
    schemas = {p.schema.slug: p.schema for p in parsed if p.schema is not None}
    sources = {p.schema.slug: p.path for p in parsed if p.schema is not None}
    return LoadedSchemas(d, schemas, sources)


def load_file(path: str | os.PathLike[str]) -> Schema:
    """Load and check one schema file (relationships to custom schemas are not checked)."""
    p = Path(path)
    return _load_paths(p.parent, [p]).schemas.popitem()[1]


def load_text(text: str, path: str | os.PathLike[str] = "<text>") -> Schema:
    """Load and check a schema from YAML text; errors are reported against ``path``."""
    p = Path(path)
    data, errors = read_yaml(p, text=text)
    parsed = _Parsed(p, errors=errors) if errors else _check_document(p, data)
    _check_all([parsed])
    if parsed.errors or parsed.schema is None:
        raise FilesError(parsed.errors)
    return parsed.schema


# --------------------------------------------------------------------------------------------
# Writing: canonical form


def _flow(value: Any) -> Any:
    value.fa.set_flow_style()
    return value


def _labels_map(labels: Any) -> CommentedMap:
    return _flow(CommentedMap([("singular", labels.singular), ("plural", labels.plural)]))


def _text(value: str) -> str:
    return LiteralScalarString(value if value.endswith("\n") else value + "\n") if "\n" in value else value


def schema_document(schema: Schema) -> CommentedMap:
    """The canonical YAML document of a schema: defaults omitted, live-only data and deleted fields dropped."""
    doc = CommentedMap()
    doc["apiVersion"] = API_VERSION
    doc["kind"] = KIND
    doc["slug"] = schema.slug
    if schema.renamed_from is not None:
        doc["renamed_from"] = schema.renamed_from
    doc["labels"] = _labels_map(schema.labels)
    if schema.description is not None:
        doc["description"] = _text(schema.description)
    if schema.protect:
        doc["protect"] = True
    if schema.acknowledge:
        doc["acknowledge"] = _flow(CommentedSeq(schema.acknowledge))
    fields = CommentedSeq()
    for f in schema.active_fields:
        item = CommentedMap()
        item["id"] = f.id
        item["type"] = f.type.value
        item["labels"] = _labels_map(f.labels)
        if f.description is not None:
            item["description"] = _text(f.description)
        if f.required:
            item["required"] = True
        if f.scale is not None:
            item["scale"] = f.scale
        if f.default_currency is not None:
            item["defaultCurrency"] = f.default_currency
        if f.options is not None:
            item["options"] = _flow(CommentedSeq(f.option_values))
        if f.protect:
            item["protect"] = True
        if f.acknowledge:
            item["acknowledge"] = _flow(CommentedSeq(f.acknowledge))
        fields.append(item)
    if fields:
        doc["fields"] = fields
    rels = CommentedSeq()
    for r in schema.relationships:
        item = CommentedMap()
        item["id"] = r.id
        item["namespace"] = r.namespace
        item["labels"] = _labels_map(r.labels)
        if r.description is not None:
            item["description"] = _text(r.description)
        if r.has_many:
            item["hasMany"] = True
        rels.append(item)
    if rels:
        doc["relationships"] = rels
    return doc


def _dump(doc: Any, *, preserve_quotes: bool = False) -> str:
    from io import StringIO

    buf = StringIO()
    _rt_yaml(preserve_quotes=preserve_quotes).dump(doc, buf)
    return buf.getvalue()


def dump_schema(schema: Schema, *, schema_ref: str | None = None) -> str:
    """The canonical YAML text of a schema (``schema_ref``: a ``yaml-language-server`` first line).

    A live schema's fields of types reconciler does not manage (``Schema.opaque_fields``) are not
    written (a file cannot declare them); a comment at the top names each one.
    """
    text = _opaque_comment(schema) + _dump(schema_document(schema))
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
    """Why ``<slug>.yaml`` would not be a file that :func:`load_dir` reads back (None: it would)."""
    if not slug or "/" in slug or "\\" in slug or "\0" in slug:
        return "not a usable file name"
    if slug.startswith("."):
        return "the file would be hidden, and hidden files are not read"
    bad = _FORBIDDEN.search(slug)
    if bad is not None:
        return f"the slug holds a {_char_name(bad.group()[0])}"
    if len(f"{slug}.yaml".encode()) > _NAME_MAX:
        return f"the file name would be longer than {_NAME_MAX} bytes"
    return None


def export_schemas(schemas: Iterable[Schema], directory: str | os.PathLike[str],
                   force: bool = False, *, schema_ref: str | None = None,
                   project_file: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write each schema as canonical ``<directory>/<slug>.yaml``; return the files written.

    Every file written is one :func:`load_dir` reads: a slug that would give a hidden, unusable or
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
            current, _ = _read_text(target)
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


# --------------------------------------------------------------------------------------------
# Formatting hand-written files, comments kept
#
# ruamel attaches a comment to whatever precedes it: "# about b" on the line before key ``b`` is
# stored with ``a``'s value (or with the last leaf inside ``a``). Reordering keys would leave such
# comments behind, so formatting first detaches every comment into {entry: (before-lines, eol)},
# walking in document order, then reorders, then attaches each comment to its entry again.


@dataclass
class _Comments:
    before: list[str] = field(default_factory=list)  # full lines ("" = blank line), no indentation
    eol: tuple[str, int] | None = None  # (text, column)


class _CommentBook:
    def __init__(self) -> None:
        self.entries: dict[tuple[int, Any], _Comments] = {}
        self.pending: list[str] = []
        self.seen: set[int] = set()
        self.head: list[str] = []
        self.tail: list[str] = []

    def entry(self, container: Any, key: Any) -> _Comments:
        return self.entries.setdefault((id(container), key), _Comments())

    def lines(self, tokens: Any) -> None:
        """Full-line comment tokens: they belong before whatever comes next."""
        for tok in _tokens(tokens):
            if id(tok) in self.seen:
                continue
            self.seen.add(id(tok))
            self.pending += _split_lines(tok.value)

    def post(self, container: Any, key: Any, tok: Any) -> None:
        """A token after a value: an end-of-line comment, then lines before the next entry."""
        if tok is None or id(tok) in self.seen:
            return
        self.seen.add(id(tok))
        text = tok.value
        if text.startswith("#"):
            first, _, rest = text.partition("\n")
            self.entry(container, key).eol = (first.rstrip(), tok.column)
        else:
            rest = text[1:] if text.startswith("\n") else text
        self.pending += _split_lines(rest)

    def arrive(self, container: Any, key: Any) -> None:
        if self.pending:
            self.entry(container, key).before += self.pending
            self.pending = []


def _tokens(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, CommentToken):
        return [value]
    out: list[Any] = []
    for v in value:
        out += _tokens(v)
    return out


def _split_lines(text: str) -> list[str]:
    if not text:
        return []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]


def _is_block(value: Any) -> bool:
    return isinstance(value, (CommentedMap, CommentedSeq)) and not value.fa.flow_style()


def _collect(book: _CommentBook, node: Any) -> None:
    """Detach every comment of ``node`` (a block collection) into ``book``, in document order."""
    if isinstance(node, CommentedMap):
        items: Iterable[tuple[Any, Any]] = node.items()
    else:
        items = enumerate(node)
    for key, value in list(items):
        slot = node.ca.items.get(key)
        if slot is not None:
            book.lines(slot[1])
        book.arrive(node, key)
        if _is_block(value):
            comment = value.ca.comment
            if isinstance(node, CommentedMap) and slot is not None and slot[2] is not None:
                book.post(node, key, slot[2])  # EOL comment on the "key:" line
            elif comment and comment[0] is not None:
                book.post(node, key, comment[0] if isinstance(comment[0], CommentToken) else None)
            # Comments between "key:" and the first item are kept both on the key and on the
            # collection (as copies): take one of them.
            if comment and len(comment) > 1 and comment[1]:
                book.lines(comment[1])
            elif slot is not None and isinstance(node, CommentedMap):
                book.lines(slot[3])
            value.ca.comment = None
            _collect(book, value)
        else:
            if isinstance(value, (CommentedMap, CommentedSeq)):  # flow collection: keep its inner comments
                for inner in value.ca.items.values():
                    book.lines([t for t in inner if t is not None])
                if value.ca.comment:
                    value.ca.comment = None
            if slot is not None:
                book.post(node, key, slot[2] if isinstance(node, CommentedMap) else slot[0])
        for tok in _tokens(value.ca.end if isinstance(value, CommentedBase) else None):
            book.lines([tok])
    node.ca.items.clear()
    if node.ca.end:
        book.lines(node.ca.end)
        node.ca.end = []


_ORDER = {
    (): SCHEMA_KEYS,
    ("fields", int): FIELD_KEYS,
    ("relationships", int): RELATIONSHIP_KEYS,
    ("labels",): LABEL_KEYS,
    ("fields", int, "labels"): LABEL_KEYS,
    ("relationships", int, "labels"): LABEL_KEYS,
}


def _pattern(loc: Loc) -> tuple[Any, ...]:
    return tuple(int if isinstance(s, int) else s for s in loc)


def _reorder(node: Any, loc: Loc, book: _CommentBook) -> None:
    """Canonical key order (unknown keys after, in their order) and flow style for labels/options."""
    if isinstance(node, CommentedMap):
        order = _ORDER.get(_pattern(loc))
        if order is not None:
            rank = {k: i for i, k in enumerate(order)}
            keys = sorted(node, key=lambda k: (rank.get(k, len(order)), list(node).index(k)))
            if keys != list(node):
                items = [(k, node[k]) for k in keys]
                for k in list(node):
                    del node[k]
                for k, v in items:
                    node[k] = v
        for k, v in node.items():
            _reorder(v, (*loc, k), book)
        if order is LABEL_KEYS and _flat_without_comments(node, book):
            node.fa.set_flow_style()
    elif isinstance(node, CommentedSeq):
        for i, v in enumerate(node):
            _reorder(v, (*loc, i), book)
        if _pattern(loc) in (("fields", int, "options"), ("fields", int, "acknowledge"), ("acknowledge",)) \
                and _flat_without_comments(node, book):
            node.fa.set_flow_style()


def _flat_without_comments(node: Any, book: _CommentBook) -> bool:
    keys = node.keys() if isinstance(node, CommentedMap) else range(len(node))
    values = node.values() if isinstance(node, CommentedMap) else node
    if any(isinstance(v, (CommentedMap, CommentedSeq, LiteralScalarString)) for v in values):
        return False
    for k in keys:
        c = book.entries.get((id(node), k))
        if c is not None and (c.before or c.eol):
            return False
    return True


def _before_tokens(lines: list[str], col: int) -> list[CommentToken]:
    return [CommentToken((line + "\n") if line else "\n", CommentMark(col)) for line in lines]


def _add_before(node: Any, key: Any, lines: list[str], col: int) -> None:
    slot = node.ca.items.setdefault(key, [None, [], None, None])
    if slot[1] is None:
        slot[1] = []
    slot[1] += _before_tokens(lines, col)


def _attach(node: Any, book: _CommentBook, col: int) -> None:
    """Give each entry of ``node`` (keys or dashes at column ``col``) its comments back."""
    keys = list(node.keys()) if isinstance(node, CommentedMap) else list(range(len(node)))
    for key in keys:
        c = book.entries.get((id(node), key))
        value = node[key]
        if c is not None and c.before:
            _add_before(node, key, c.before, col)
        if _is_block(value):
            if isinstance(node, CommentedSeq) and isinstance(value, CommentedMap) and value:
                # A comment before the first key of a list item goes above the "- ".
                first = book.entries.get((id(value), next(iter(value))))
                if first is not None and first.before:
                    _add_before(node, key, first.before, col)
                    first.before = []
            if c is not None and c.eol and isinstance(node, CommentedMap):
                node.yaml_add_eol_comment(c.eol[0], key, column=c.eol[1])
            _attach(value, book, col + 2)
        elif c is not None and c.eol:
            node.yaml_add_eol_comment(c.eol[0], key, column=c.eol[1])


def format_text(text: str, path: str | os.PathLike[str] = "<text>", *, schema_ref: str | None = None) -> str:
    """Canonical key order and style for a schema file's text, keeping its comments.

    Only layout changes: keys are reordered (unknown keys kept, after the known ones), labels and
    options go to flow style when no comment sits inside them, indentation becomes 2 spaces with
    lists indented under their key. Values, quoting and comments are kept. Idempotent.
    Raises :class:`FilesError` when the text is not a YAML mapping.
    """
    p = Path(path)
    data, errors = read_yaml(p, text=text)
    if errors:
        raise FilesError(errors)
    if not isinstance(data, CommentedMap):
        raise FilesError([FileError(p, 1, 1, f"a schema file must hold a mapping, not {describe(data)}")])
    data = _rt_yaml(preserve_quotes=True).load(text)  # keep the author's quotes
    book = _CommentBook()
    head = data.ca.comment[1] if data.ca.comment and len(data.ca.comment) > 1 else None
    book.head = [line for tok in _tokens(head) for line in _split_lines(tok.value)]
    for tok in _tokens(head):
        book.seen.add(id(tok))
    data.ca.comment = None
    _collect(book, data)
    book.tail = book.pending
    book.pending = []
    _reorder(data, (), book)
    _attach(data, book, 0)
    if book.head:
        data.ca.comment = [None, [CommentToken((line + "\n") if line else "\n", CommentMark(0))
                                  for line in book.head]]
    if book.tail:
        data.ca.end = [CommentToken((line + "\n") if line else "\n", CommentMark(0)) for line in book.tail]
    out = _dump(data, preserve_quotes=True)
    return out if schema_ref is None else with_modeline(out, schema_ref)


@dataclass(frozen=True)
class Reformat:
    """A schema file whose canonical form differs: its path, its text and the canonical text."""

    path: Path
    old: str
    new: str

    def __str__(self) -> str:
        return str(self.path)

    def diff(self) -> str:
        """A unified diff from ``old`` to ``new`` with ``a/<path>`` and ``b/<path>`` headers."""
        out: list[str] = []
        for line in difflib.unified_diff(self.old.splitlines(keepends=True), self.new.splitlines(keepends=True),
                                         fromfile=f"a/{self.path}", tofile=f"b/{self.path}"):
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
        return "".join(out)


def fmt_dir(directory: str | os.PathLike[str], check: bool = False, *, schema_ref: str | None = None,
            root: str | os.PathLike[str] | None = None,
            project_file: str | os.PathLike[str] | None = None) -> list[Reformat]:
    """Format every schema file of ``directory``; return the files that changed (or would, with ``check``).

    The files are first checked exactly as :func:`load_dir` checks them (same files, same errors,
    raised as :class:`FilesError`): an invalid file is never "formatted". Every target is checked
    writable before the first write, and each is written atomically; nothing is written with
    ``check`` or when any file is invalid.
    """
    loaded = load_dir(directory, root=root, project_file=project_file)
    changes: list[Reformat] = []
    errors: list[FileError] = []
    for path in sorted(loaded.sources.values()):
        text, errs = _read_text(path)
        if text is None:
            errors += errs
            continue
        try:
            new = format_text(text, path, schema_ref=schema_ref)
        except FilesError as exc:
            errors += exc.errors
            continue
        if new != text:
            changes.append(Reformat(path, text, new))
    if errors:
        raise FilesError(errors)
    if not check:
        for change in changes:
            check_writable(change.path)
        for change in changes:
            write_atomic(change.path, change.new)
    return changes

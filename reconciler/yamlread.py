"""One YAML document read into plain data that knows where each node is (:class:`Doc`).

:func:`read_yaml` parses a file once, with the C parser (ruamel's ``CParser`` from
``ruamel.yaml.clib``): its events are composed here, iteratively, straight into dicts, lists and
scalars, with the line and column of every key, value and item. That fast reader takes the plain
subset schema files are written in (block and flow collections, plain and quoted strings, booleans,
decimal integers, nulls). Anything else (an anchor or an alias, a tag, a float, a date, a directive,
more than one document, a duplicate key, a tab anywhere, a value over a limit, a YAML error, deep
nesting) hands the file to the round-trip reader (:mod:`reconciler.yamlrt`), which reads any YAML,
with the limits and the error lines. So both readers give the same data, the same positions and the
same errors for every file; ``tests/test_files_fast.py`` checks it on the corpora. Without the C
extension (a platform without a wheel), every file takes the round-trip reader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.fileerrors import FileError, Loc
from reconciler.source import FORBIDDEN, MAX_FILE_BYTES, read_text, size_error, text_errors
from reconciler.yamlrt import MAX_DEPTH, MAX_INT_DIGITS, MAX_TEXT_CHARS, read_round_trip

try:  # the C parser; ruamel.yaml reads without it, more slowly
    from _ruamel_yaml import CParser  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the platform
    CParser = None

from ruamel.yaml.events import (
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.resolver import VersionedResolver

__all__ = ["Doc", "plain_tag", "read_yaml"]


class Doc:
    """A parsed YAML document: ``data`` (dicts, lists, scalars) and where each node starts.

    ``marks`` maps ``id()`` of each dict to ``(line, col, {key: (key line, key col, value line,
    value col)})`` and of each list to ``(line, col, [(line, col) per item])``, 0-based. The
    containers are alive as long as ``data`` is, so their ids stay valid. ``plain``: ``data`` holds
    only JSON types with string keys (the fast reader's), so it can be encoded as it is.
    """

    __slots__ = ("data", "marks", "plain")

    def __init__(self, data: Any, marks: dict[int, tuple[int, int, Any]], *, plain: bool = False) -> None:
        self.data = data
        self.marks = marks
        self.plain = plain

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the node at ``loc``.

        ``key=True`` points at the key of the last step instead of its value; a null value is
        pointed at by its key. When the path leaves the document (a missing key, an index past the
        end, an integer looked up in a mapping), the deepest node reached is used.
        """
        node = self.data
        mark = self.marks.get(id(node)) if isinstance(node, (dict, list)) else None
        pos = (mark[0], mark[1]) if mark is not None else (0, 0)
        last = len(loc) - 1
        for i, step in enumerate(loc):
            if isinstance(node, dict) and not isinstance(step, int) and step in node:
                value = node[step]
                kv = self.marks[id(node)][2].get(step)
                if kv is None:  # a key the round-trip reader gave no position (a merged one)
                    break
                pos = (kv[0], kv[1]) if (key and i == last) or value is None else (kv[2], kv[3])
                node = value
            elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
                pos = self.marks[id(node)][2][step]
                node = node[step]
            else:
                break
        return pos[0] + 1, pos[1] + 1

    def get(self, loc: Loc) -> Any:
        """The value at ``loc``, or None when the path leaves the document."""
        node = self.data
        for step in loc:
            in_map = isinstance(node, Mapping) and step in node
            in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
            if not (in_map or in_list):
                return None
            node = node[step]
        return node


def read_yaml(path: Path, *, allow_empty: bool = False, text: str | None = None,
              what: str = "a schema", fast: bool = True) -> tuple[Doc | None, list[FileError]]:
    """Read one single-document YAML file into a :class:`Doc`.

    Returns ``(doc, errors)``; ``doc`` is None when there are errors or the file is empty (an error
    unless ``allow_empty``). ``text`` skips reading the file. Never raises for bad input. Every
    limit and the forbidden characters are checked before the data is built. ``fast=False`` takes
    the round-trip reader for every file (the tests compare the two).
    """
    if text is None:
        text, errors = read_text(path)
        if text is None:
            return None, errors
    elif len(text) > MAX_FILE_BYTES // 4 and len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return None, [size_error(path, len(text.encode("utf-8")))]
    errors = text_errors(path, text)
    if errors:
        return None, errors
    if fast and CParser is not None:
        doc = _read_fast(text)
        if doc is not None:
            return doc, []
    return read_round_trip(path, text, allow_empty=allow_empty, what=what)


# --------------------------------------------------------------------------------------------
# The fast reader


#: ruamel's YAML 1.2 implicit resolvers, by first character (the table its round-trip reader uses).
_RESOLVERS: dict[Any, list[tuple[str, re.Pattern[str]]]] = VersionedResolver().versioned_resolver
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
#: Integers whose round-trip value is a plain ``int`` (no base prefix, no ``_``, no leading zero).
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
#: Characters the two parsers may count or read differently: tabs (ruamel refuses some that
#: libyaml takes), the Unicode line and paragraph separators, a BOM inside the text.
_HAND_OVER = re.compile("[\t\u2028\u2029\ufeff]")
#: Nesting the fast reader takes; deeper documents go to the round-trip reader, whose scanner
#: enforces :data:`MAX_DEPTH` with its own error position. Kept below the limit with room to spare.
_FAST_DEPTH = MAX_DEPTH - 4


class _HandOver(Exception):
    """The fast reader met something it leaves to the round-trip reader."""


def plain_tag(value: str) -> str:
    """The tag a plain (unquoted) scalar resolves to, e.g. ``tag:yaml.org,2002:str``."""
    for candidate, regexp in _RESOLVERS.get(value[0] if value else "", ()):
        if regexp.match(value):
            return str(candidate)
    return _STR


#: Marks a plain scalar the fast reader hands over (a float, a date, a merge key …).
_OTHER = object()


def _resolve_plain(value: str) -> Any:
    """A plain scalar's value as the round-trip reader constructs it, or :data:`_OTHER`."""
    tag = plain_tag(value)
    if tag == _STR:
        return value
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return value.lower() == "true"
    if tag == _INT and _PLAIN_INT.fullmatch(value) and len(value.lstrip("+-")) <= MAX_INT_DIGITS:
        return int(value)
    return _OTHER


#: Plain scalars seen before (keys, types, booleans …) and their values: most of a schema file's
#: scalars repeat, and resolving one costs a few regular expressions. Short ones, a bounded number.
_PLAIN_SEEN: dict[str, Any] = {}
_PLAIN_SEEN_MAX = 4096
_PLAIN_SEEN_LEN = 64


def _read_fast(text: str) -> Doc | None:
    """The document, or None to hand the text over to the round-trip reader."""
    if _HAND_OVER.search(text) is not None:
        return None
    try:
        return _compose(CParser(text))
    except _HandOver:
        return None
    except Exception:  # any error of the C parser: the round-trip reader gives the exact message
        return None


def _compose(parser: Any) -> Doc:
    """The document of the parser's events (:class:`_HandOver` for anything the fast reader leaves
    to the round-trip one). One loop on locals: this is the hot path of reading a repository."""
    get = parser.get_event
    get()  # stream start
    ev = get()
    if type(ev) is not DocumentStartEvent or ev.version is not None or ev.tags:
        raise _HandOver
    marks: dict[int, tuple[int, int, Any]] = {}
    seen = _PLAIN_SEEN
    # The open collection (its positions, and for a mapping the pending key and its mark); the
    # collections around it on the stack, innermost last.
    stack: list[tuple[Any, Any, Any, Any]] = []
    container: Any = None
    table: Any = None
    key: Any = None
    kmark: Any = None
    is_map = False
    while True:
        ev = get()
        kind = type(ev)
        if kind is ScalarEvent:
            value = ev.value
            if ev.anchor is not None or ev.ctag is not None or len(value) > MAX_TEXT_CHARS:
                raise _HandOver
            if ev.implicit[0]:  # plain
                found = seen.get(value, _OTHER)
                if found is _OTHER:
                    found = _resolve_plain(value)
                    if found is _OTHER:
                        raise _HandOver
                    if len(value) <= _PLAIN_SEEN_LEN and len(seen) < _PLAIN_SEEN_MAX:
                        seen[value] = found
                value = found
            elif ev.style == '"' and (FORBIDDEN.search(value) is not None or "\r" in value):
                raise _HandOver  # a forbidden character written as an escape: the round-trip reader reports it
            if container is None:
                raise _HandOver  # a document that is one scalar: not a schema; the round-trip reader says so
            mark = ev.start_mark
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if ev.anchor is not None or ev.ctag is not None or len(stack) + (container is not None) >= _FAST_DEPTH:
                raise _HandOver
            mark = ev.start_mark
            inner: Any
            if kind is MappingStartEvent:
                value, inner = {}, {}
            else:
                value, inner = [], []
            marks[id(value)] = (mark.line, mark.column, inner)
            if container is not None:
                if not is_map:
                    container.append(value)
                    table.append((mark.line, mark.column))
                elif key is None:
                    raise _HandOver  # a collection as a key
                else:
                    container[key] = value
                    table[key] = (kmark.line, kmark.column, mark.line, mark.column)
                stack.append((container, table, None, None))
            container, table, key, kmark, is_map = value, inner, None, None, kind is MappingStartEvent
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            if not stack:
                break
            container, table, key, kmark = stack.pop()
            is_map = type(container) is dict
            continue
        else:  # an alias, or anything unexpected
            raise _HandOver
        if not is_map:
            container.append(value)
            table.append((mark.line, mark.column))
        elif key is None:
            if type(value) is not str or value in container:
                raise _HandOver  # a key that is not a string, or a duplicate one
            key, kmark = value, mark
        else:
            container[key] = value
            table[key] = (kmark.line, kmark.column, mark.line, mark.column)
            key = None
    get()  # document end
    if type(get()) is not StreamEndEvent:
        raise _HandOver  # more than one document
    return Doc(container, marks, plain=True)

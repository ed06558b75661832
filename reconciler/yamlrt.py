"""The round-trip YAML reader: ruamel's pure-Python parser, with the limits that make it safe.

It reads what the fast reader (:mod:`reconciler.yamlread`) hands over: anchors and aliases, tags,
floats and dates, several documents, duplicate keys, YAML errors, deep nesting. Every limit is
checked before the document is built, each one error line found before the step it protects:

* :data:`MAX_DEPTH` while scanning (50,000 nested brackets stop at the 33rd);
* :data:`MAX_ALIAS_NODES`, :data:`MAX_TEXT_CHARS`, :data:`MAX_INT_DIGITS` and control characters
  written as escapes on the composed node graph, before anything walks it as a tree;
* duplicate keys, then multiple documents.

The document is then turned into a :class:`~reconciler.yamlread.Doc` (plain dicts and lists with
the positions ruamel recorded), so the rest of reconciler sees one kind of data. :func:`rt_yaml`
is also the YAML instance of the writers and of ``fmt``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarfloat import ScalarFloat
from ruamel.yaml.scalarint import ScalarInt
from ruamel.yaml.scanner import RoundTripScanner

from reconciler.fileerrors import FileError, capped
from reconciler.model import EXCERPT_CHARS, excerpt
from reconciler.source import FORBIDDEN, char_problem

if TYPE_CHECKING:
    from reconciler.yamlread import Doc

__all__ = ["MAX_ALIAS_NODES", "MAX_DEPTH", "MAX_INT_DIGITS", "MAX_TEXT_CHARS", "read_round_trip", "rt_yaml"]

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


def rt_yaml(*, preserve_quotes: bool = False) -> YAML:
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
    if node.style == ">":  # a folded scalar: ruamel's scanner marks each fold with "\a" (no escapes there)
        value = value.replace("\a", "")
    if len(value) > MAX_TEXT_CHARS:
        return [_err(path, node.start_mark, f"text of {len(value):,} characters, over the limit of "
                                            f"{MAX_TEXT_CHARS:,} characters")]
    if str(node.tag).endswith(":int") and _int_digits(value) > MAX_INT_DIGITS:
        return [_err(path, node.start_mark, f"number of {_int_digits(value):,} digits, over the limit of "
                                            f"{MAX_INT_DIGITS} digits")]
    bad = FORBIDDEN.search(value)
    char = bad.group()[0] if bad is not None else ("\r" if "\r" in value else None)  # CRLF too: from an escape
    if char is not None:
        return [_err(path, node.start_mark, char_problem(char))]
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
    return capped(path, sorted(errors, key=FileError.sort_key), "values are over a limit")


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


def read_round_trip(path: Path, text: str, *, allow_empty: bool = False,
                    what: str = "a schema") -> tuple[Doc | None, list[FileError]]:
    """:func:`reconciler.yamlread.read_yaml` for text whose size and characters are checked."""
    yaml = rt_yaml()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            docs = list(yaml.compose_all(text))
        except _TooDeep as exc:
            return None, [_depth_error(path, exc.mark)]
        except RecursionError:  # a bound the scanner guard missed: still the depth limit
            return None, [FileError(path, 0, 0, f"nesting deeper than the limit of {MAX_DEPTH} levels")]
        except ReaderError as exc:  # a character YAML does not allow (not one of FORBIDDEN: unexpected)
            before = text[: exc.position]
            message = char_problem(chr(exc.character)) if isinstance(exc.character, int) \
                else f"invalid YAML: {exc.reason}"
            return None, [FileError(path, before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1,
                                    message)]
        except YAMLError as exc:
            mark, problem = _yaml_problem(exc)
            return None, [_err(path, mark, f"invalid YAML: {problem}")]
        docs = [d for d in docs if not (isinstance(d, ScalarNode) and str(d.tag).endswith(":null") and not d.value)]
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
        try:  # from the composed document (an empty one after it is no second document)
            data = yaml.constructor.construct_document(docs[0])
        except (YAMLError, ValueError) as exc:  # pragma: no cover - composing succeeded, so unexpected
            return None, [_err(path, getattr(exc, "problem_mark", None), f"invalid YAML: {type(exc).__name__}")]
    return _plain(data), []


def _plain(data: Any) -> Doc:
    """A round-trip document as a :class:`Doc`: ``CommentedMap``/``CommentedSeq`` become dicts and
    lists with ruamel's positions, strings, integers and floats their plain types (the values and
    the messages about them are the same). An aliased collection stays one shared object."""
    from reconciler.yamlread import Doc

    marks: dict[int, tuple[int, int, Any]] = {}
    memo: dict[int, Any] = {}

    def convert(value: Any) -> Any:
        if isinstance(value, (CommentedMap, CommentedSeq)):
            done = memo.get(id(value))
            if done is not None:
                return done
            lc = value.lc
            recorded = lc.data or {}
            if isinstance(value, CommentedMap):
                out_map: dict[Any, Any] = {}
                memo[id(value)] = out_map
                table: dict[Any, tuple[int, int, int, int]] = {}
                for k, v in value.items():
                    out_map[k] = convert(v)
                    if k in recorded:
                        kl, kc, vl, vc = recorded[k]
                        table[k] = (kl, kc, vl, vc)
                marks[id(out_map)] = (_zero(lc.line), _zero(lc.col), table)
                return out_map
            out_list: list[Any] = []
            memo[id(value)] = out_list
            items = []
            for i, v in enumerate(value):
                out_list.append(convert(v))
                line, col = recorded.get(i, (0, 0))[:2]
                items.append((line, col))
            marks[id(out_list)] = (_zero(lc.line), _zero(lc.col), items)
            return out_list
        if isinstance(value, str):
            return str(value)
        if isinstance(value, ScalarInt):
            return int(value)
        if isinstance(value, ScalarFloat):
            return float(value)
        return value  # None, bool, int, float, and what JSON has no type for (dates, sets, tags …)

    return Doc(convert(data), marks)


def _zero(value: int | None) -> int:
    return value if value is not None else 0

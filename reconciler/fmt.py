"""``fmt``: hand-written schema files brought to the canonical form, comments kept.

:func:`format_text` and :func:`fmt_dir` reorder keys to the file format's order and put labels,
options and acknowledge in flow style; values, quoting and comments stay as written.

Each file is parsed once by the fast reader (which checks it, as ``validate`` does). A file whose
body holds no comment and only values the canonical form writes plainly is rendered from its data
(:func:`_render`) and compared: a canonical file costs that. Only the others (comments to keep,
quotes, a layout to change) are parsed again, with ruamel's round-trip parser, and reformatted.

ruamel attaches a comment to whatever precedes it: "# about b" on the line before key ``b`` is
stored with ``a``'s value (or with the last leaf inside ``a``). Reordering keys would leave such
comments behind, so reformatting first detaches every comment into {entry: (before-lines, eol)},
walking in document order, then reorders, then attaches each comment to its entry again.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedBase, CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString
from ruamel.yaml.tokens import CommentToken

from reconciler.fileerrors import FileError, FilesError, Loc, describe
from reconciler.fileformat import flow_at, key_order
from reconciler.loading import load_dir
from reconciler.writes import check_writable, write_atomic
from reconciler.writing import dump, with_modeline
from reconciler.yamlread import Doc, plain_tag, read_yaml
from reconciler.yamlrt import read_round_trip, rt_yaml

__all__ = ["Reformat", "fmt_dir", "format_text"]


# --------------------------------------------------------------------------------------------
# The fast path: a comment-free file rendered from its data


#: Text the canonical form writes as a plain scalar, as ruamel's emitter does, in block and flow
#: context alike: a letter or digit first, then letters, digits and ``_ . / ( ) ' + -``, single
#: spaces between them; at most 1,000 characters (far below the line width, so never folded).
#: Anything else (quoted text, ``: ``, ``#``, a comma …) takes the round-trip path.
_PLAIN = re.compile(r"[^\W_](?:[\w./()'+-]| (?=[\w./()'+-])){0,999}")
_STR = "tag:yaml.org,2002:str"
#: Strings found plain before, and not (a file's labels and types repeat across its fields).
_PLAIN_SEEN: dict[str, bool] = {}


def _scalar(value: Any) -> str | None:
    if type(value) is str:
        plain = _PLAIN_SEEN.get(value)
        if plain is None:
            plain = _PLAIN.fullmatch(value) is not None and plain_tag(value) == _STR
            if len(value) <= 64 and len(_PLAIN_SEEN) < 4096:
                _PLAIN_SEEN[value] = plain
        return value if plain else None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    return None


Pattern = tuple[Any, ...]  # a path with ``int`` for every list index


@lru_cache(maxsize=256)
def _shape(pattern: Pattern) -> tuple[tuple[str, ...] | None, bool]:
    """The canonical key order (None: the format has no mapping there) and flow style at a path."""
    return key_order(pattern), flow_at(pattern)


def _in_order(mapping: dict[str, Any], order: tuple[str, ...] | None) -> bool:
    """The mapping's keys are known and in the canonical order."""
    if order is None or not mapping:
        return False
    at = 0
    for key in mapping:
        try:
            at = order.index(key, at) + 1
        except ValueError:
            return False
    return True


def _flow(value: Any, order: tuple[str, ...] | None) -> str | None:
    """A collection of scalars in flow style: ``{singular: A, plural: B}``, ``[A, B]``."""
    if type(value) is dict:
        if not _in_order(value, order):
            return None
        parts = []
        for k, v in value.items():
            text = _scalar(v)
            if text is None:
                return None
            parts.append(f"{k}: {text}")
        return "{" + ", ".join(parts) + "}"
    if not value:
        return None
    items = []
    for v in value:
        text = _scalar(v)
        if text is None:
            return None
        items.append(text)
    return "[" + ", ".join(items) + "]"


def _block(mapping: dict[str, Any], pattern: Pattern, indent: str, first: str, out: list[str]) -> bool:
    """Render a block mapping; ``first`` replaces the indentation of its first line (``  - ``)."""
    if not _in_order(mapping, _shape(pattern)[0]):
        return False
    lead = first
    for key, value in mapping.items():
        here = (*pattern, key)
        if type(value) is dict or type(value) is list:
            order, flow = _shape(here)
            if flow:
                text = _flow(value, order)
                if text is None:
                    return False
                out.append(f"{lead}{key}: {text}\n")
            elif type(value) is list and value and all(type(item) is dict for item in value):
                out.append(f"{lead}{key}:\n")  # a list of mappings (fields, relationships)
                item_pattern = (*here, int)
                for item in value:
                    if not _block(item, item_pattern, indent + "    ", indent + "  - ", out):
                        return False
            else:
                return False
        else:
            text = _scalar(value)
            if text is None:
                return False
            out.append(f"{lead}{key}: {text}\n")
        lead = indent
    return True


def _render(data: Any) -> str | None:
    """The canonical text of a comment-free document, or None when it holds anything the canonical
    form may write otherwise (quoting, null, an empty collection, block text, unknown keys …)."""
    out: list[str] = []
    if type(data) is not dict or not _block(data, (), "", "", out):
        return None
    return "".join(out)


def _fast_format(text: str, data: Any, schema_ref: str | None) -> str | None:
    """The canonical form of ``text`` when its body has no comment and renders plainly (then the
    round-trip formatter would give the same), else None.

    The head (the comment lines before the first key, as ``fmt`` keeps them: flush left, no
    trailing white space, blank lines between them) may hold comments; the body may not.
    """
    body_at = 0
    while body_at < len(text) and (text.startswith("#", body_at) or text.startswith("\n", body_at)):
        end = text.find("\n", body_at)
        if end < 0:
            return None
        line = text[body_at:end]
        if line != line.rstrip() or (body_at == 0 and not line):
            return None
        body_at = end + 1
    head, body = text[:body_at], text[body_at:]
    if head.endswith("\n\n") or "#" in body:
        return None
    rendered = _render(data)
    if rendered != body:
        return None
    return with_modeline(text, schema_ref) if schema_ref is not None else text


# --------------------------------------------------------------------------------------------
# The round-trip path: comments detached, keys reordered, comments attached again


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


def _reorder(node: Any, loc: Loc, book: _CommentBook) -> None:
    """Canonical key order (unknown keys after, in their order) and flow style where the
    canonical form has it (labels, options, acknowledge), unless comments sit inside."""
    if isinstance(node, CommentedMap):
        order = key_order(loc)
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
    elif isinstance(node, CommentedSeq):
        for i, v in enumerate(node):
            _reorder(v, (*loc, i), book)
    else:
        return
    if flow_at(loc) and _flat_without_comments(node, book):
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


def _reformat(text: str, schema_ref: str | None) -> str:
    """The round-trip formatter, for text the reader has checked (a mapping)."""
    data = rt_yaml(preserve_quotes=True).load(text)  # keep the author's quotes
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
        data.ca.comment = [None, _before_tokens(book.head, 0)]
    if book.tail:
        data.ca.end = _before_tokens(book.tail, 0)
    out = dump(data, preserve_quotes=True)
    return out if schema_ref is None else with_modeline(out, schema_ref)


def _format_checked(path: Path, text: str, doc: Doc | None, schema_ref: str | None) -> str:
    """The canonical form of text the reader has read as a mapping (``doc``: its document, for
    the fast path; None to go round trip)."""
    if doc is not None:
        quick = _fast_format(text, doc.data, schema_ref)
        if quick is not None:
            return quick
    try:
        return _reformat(text, schema_ref)
    except YAMLError:  # read by the fast reader, refused by ruamel's: say what ruamel says
        _, errors = read_round_trip(path, text)
        raise FilesError(errors or [FileError(path, 1, 1, "invalid YAML")]) from None


# --------------------------------------------------------------------------------------------
# The API


def format_text(text: str, path: str | os.PathLike[str] = "<text>", *, schema_ref: str | None = None) -> str:
    """Canonical key order and style for a schema file's text, keeping its comments.

    Only layout changes: keys are reordered (unknown keys kept, after the known ones), labels and
    options go to flow style when no comment sits inside them, indentation becomes 2 spaces with
    lists indented under their key. Values, quoting and comments are kept. Idempotent.
    Raises :class:`FilesError` when the text is not a YAML mapping.
    """
    p = Path(path)
    doc, errors = read_yaml(p, text=text)
    if errors or doc is None:
        raise FilesError(errors)
    if not isinstance(doc.data, dict):
        raise FilesError([FileError(p, 1, 1, f"a schema file must hold a mapping, not {describe(doc.data)}")])
    return _format_checked(p, text, doc, schema_ref)


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

    The files are checked exactly as :func:`~reconciler.loading.load_dir` checks them (same files,
    same errors, raised as :class:`FilesError`), in the same read: an invalid file is never
    "formatted". Every target is checked writable before the first write, and each is written
    atomically; nothing is written with ``check`` or when any file is invalid.
    """
    changes: list[Reformat] = []
    slow: list[tuple[Path, str]] = []

    def visit(path: Path, text: str, doc: Doc) -> None:
        new = _fast_format(text, doc.data, schema_ref)
        if new is None:
            slow.append((path, text))
        elif new != text:
            changes.append(Reformat(path, text, new))

    load_dir(directory, root=root, project_file=project_file, each=visit)
    errors: list[FileError] = []
    for path, text in slow:
        try:
            new = _format_checked(path, text, None, schema_ref)
        except FilesError as exc:
            errors += exc.errors
            continue
        if new != text:
            changes.append(Reformat(path, text, new))
    if errors:
        raise FilesError(errors)
    changes.sort(key=lambda c: c.path)
    if not check:
        for change in changes:
            check_writable(change.path)
        for change in changes:
            write_atomic(change.path, change.new)
    return changes

"""Problems in files, as ``path:line:col: message``, and pydantic's errors turned into such lines.

:class:`FileError` is one problem, :class:`FilesError` all of them (sorted). :func:`validation_errors`
points each pydantic error at the YAML node it is about, through a :class:`~reconciler.yamlread.Doc`
(anything with ``position(loc, key=)`` and ``get(loc)``), in the house wording: ``'required' must be
true or false, not the string 'yes'``, ``missing required key 'plural' in 'labels'`` …
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from reconciler.errors import ReconcilerError
from reconciler.model import excerpt

__all__ = [
    "MAX_LISTED",
    "FileError",
    "FilesError",
    "Loc",
    "Located",
    "capped",
    "describe",
    "loc_name",
    "quote",
    "suggest",
    "validate_strict",
    "validation_errors",
]

Loc = tuple[str | int, ...]


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


class FilesError(ReconcilerError):
    """Every problem found, sorted by path, line and column. ``str()`` is one problem a line (the only
    library error of several lines: each problem is its own ``file:line:col`` line)."""

    def __init__(self, errors: Iterable[FileError]) -> None:
        self.errors: list[FileError] = sorted(errors, key=FileError.sort_key)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


#: At most this many errors of one kind are listed for one file (a file of 100,000 bad lines gives
#: 20 lines and a count, not 100,000 lines).
MAX_LISTED = 20


def capped(path: Path, errors: list[FileError], what: str) -> list[FileError]:
    """``errors`` cut to :data:`MAX_LISTED`, then one line counting them all."""
    if len(errors) <= MAX_LISTED:
        return errors
    return [*errors[:MAX_LISTED], FileError(path, 0, 0, f"{len(errors):,} {what}; the first {MAX_LISTED} are listed")]


class Located(Protocol):
    """A parsed document that knows where each of its nodes is (:class:`reconciler.yamlread.Doc`)."""

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]: ...

    def get(self, loc: Loc) -> Any: ...


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


def loc_name(loc: Loc) -> str:
    """``('fields', 2, 'required')`` -> ``'required'``; ``('acknowledge', 0)`` -> ``'acknowledge[0]'``."""
    out = ""
    for step in loc:
        out = f"{out}[{step}]" if isinstance(step, int) else str(step)
    if not out:
        return "the document"
    return out if "[" in out else repr(out)


def quote(value: Any) -> str:
    """A value as messages quote it: a string as a short ``repr``, anything else described."""
    return excerpt(value) if isinstance(value, str) else describe(value)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'labels'?)`` for the closest of ``choices``, or ``''``."""
    choices = list(choices)
    if len(word) > 2 * max((len(c) for c in choices), default=0) + 10:
        return ""  # nothing is close, and difflib's time grows with the word
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


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


def validation_errors(path: Path, doc: Located, exc: ValidationError | Iterable[Mapping[str, Any]],
                      base: Loc = (), allowed_keys: Callable[[Loc], Sequence[str]] | None = None,
                      rename: Callable[[Loc, dict[str, Any]], tuple[Loc, str] | None] | None = None,
                      ) -> list[FileError]:
    """Map each pydantic error (of ``exc``, or given as its ``errors()`` dicts) onto the YAML node
    it is about.

    ``base`` prefixes every error location (the validated value's path in the document);
    ``rename`` may rewrite an error to ``(loc, message)`` first (or return None to keep it).
    """
    errors = []
    for e in (exc.errors() if isinstance(exc, ValidationError) else exc):
        loc: Loc = (*base, *e["loc"])
        custom = rename(loc, dict(e)) if rename else None
        if custom is not None:
            loc, message = custom
            line, col = doc.position(loc, key=e["type"] == "extra_forbidden")
        elif e["type"] == "missing":
            parent, missing = loc[:-1], loc[-1]
            line, col = doc.position(parent)
            where = f" in {loc_name(parent)}" if parent else ""
            message = f"missing required key {missing!r}{where}"
        elif e["type"] == "extra_forbidden":
            line, col = doc.position(loc, key=True)
            choices = allowed_keys(loc[:-1]) if allowed_keys else ()
            message = f"unknown key {excerpt(loc[-1])}{suggest(str(loc[-1]), choices)}"
        else:
            line, col = doc.position(loc)
            value = doc.get(loc)
            if e["type"] in _TYPE_WORDS:
                message = f"{loc_name(loc)} must be {_TYPE_WORDS[e['type']]}, not {describe(value)}"
            elif e["type"] == "string_too_short":
                message = f"{loc_name(loc)} must not be empty"
            else:
                message = f"{loc_name(loc)}: {e['msg']}"
        errors.append(FileError(path, line, col, message))
    return errors


def _jsonable(value: Any) -> Any:
    """YAML data as JSON can carry it; a value it cannot (a date, a set …) becomes a mapping that
    no model accepts where a scalar is expected."""
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


def validate_strict(model: type[M], value: Any, *, plain: bool = False) -> M:
    """Validate YAML data without coercion: ``"yes"`` is not a bool, ``1`` is not a string.

    Goes through JSON so that enums accept their values while strict mode stays on, and so that
    YAML values JSON has no type for (dates, sets …) are refused the same way wherever they are.
    ``plain``: ``value`` holds only JSON types with string keys (the fast reader's data), so it is
    encoded as it is.
    """
    return model.model_validate_json(json.dumps(value if plain else _jsonable(value)), strict=True)

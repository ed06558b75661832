"""GitHub Actions expressions (``${{ ... }}``), the subset the example workflows use, evaluated as
GitHub documents them: literals (``'str'`` with ``''`` for a quote, numbers, true/false/null),
context lookups (``a.b``, ``a['b']``, ``secrets[matrix.env.token_env]``; property names are
case-insensitive, a missing one is null), ``! == != < <= > >= && ||`` and parentheses, and the
functions fromJSON, toJSON, contains, startsWith, endsWith, format, join and the status checks
success(), failure(), always(), cancelled().

Loose equality as documented: operands of different types are compared as numbers (null 0, bools
1/0, a string parsed, '' is 0, otherwise NaN), strings compare ignoring case, ``&&``/``||`` return
one of their operands. Falsy: false, 0, '', null, NaN.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Evaluator", "ExpressionError", "to_string", "truthy"]

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<num>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))
  | (?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,*])
  | (?P<id>[A-Za-z_][A-Za-z0-9_-]*)
)""", re.X)
_STATUS = {"success", "failure", "always", "cancelled"}
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)


class ExpressionError(ValueError):
    pass


def truthy(value: Any) -> bool:
    if value is None or value is False or value == "":
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return not (value == 0 or math.isnan(value))
    return True


def to_string(value: Any) -> str:
    """How a value is pasted into a string (``env:``, ``with:``, a template)."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2)
    return str(value)


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def _equal(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka == kb == "string":
        return bool(a.casefold() == b.casefold())
    if ka == kb == "object":
        return a is b
    if ka == kb and ka != "number":
        return bool(a == b)
    return _number(a) == _number(b)


def _compare(a: Any, b: Any) -> float:
    """<0, 0, >0, or NaN when not comparable."""
    if _kind(a) == _kind(b) == "string":
        x, y = a.casefold(), b.casefold()
        return float((x > y) - (x < y))
    x_, y_ = _number(a), _number(b)
    if math.isnan(x_) or math.isnan(y_):
        return math.nan
    return float((x_ > y_) - (x_ < y_))


def _lookup(obj: Any, key: Any) -> Any:
    if isinstance(obj, Mapping):
        if not isinstance(key, str):
            return None
        if key in obj:
            return obj[key]
        folded = key.casefold()
        for k, v in obj.items():
            if isinstance(k, str) and k.casefold() == folded:
                return v
        return None
    if isinstance(obj, list):
        n = _number(key)
        if math.isnan(n) or not n.is_integer() or not 0 <= n < len(obj):
            return None
        return obj[int(n)]
    return None


def _format(fmt: str, *args: Any) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        return to_string(args[int(m.group(1))])
    return re.sub(r"\{\{|\}\}|\{(\d+)\}", one, fmt)


class Evaluator:
    """Evaluates expressions against ``contexts`` (github, env, matrix, steps, needs, inputs,
    secrets, ...); ``status(name)`` answers success()/failure()/always()/cancelled()."""

    def __init__(self, contexts: Mapping[str, Any], status: Callable[[str], bool] | None = None) -> None:
        self.contexts = contexts
        self.status = status or (lambda name: name in ("success", "always"))

    # -- public -----------------------------------------------------------------------------

    def eval(self, text: str) -> Any:
        self._tokens = self._tokenize(text)
        self._i = 0
        value = self._or()
        if self._i != len(self._tokens):
            raise ExpressionError(f"unexpected {self._tokens[self._i][1]!r} in {text!r}")
        return value

    def render(self, value: Any) -> Any:
        """A ``with:``/``env:`` value: a string that is exactly one ``${{ }}`` gives its value, a
        string with templates gives the text with each replaced; dicts and lists recursively."""
        if isinstance(value, str):
            m = _TEMPLATE.fullmatch(value.strip())
            if m and value.strip().count("${{") == 1:
                return self.eval(m.group(1))
            return _TEMPLATE.sub(lambda m: to_string(self.eval(m.group(1))), value)
        if isinstance(value, dict):
            return {k: self.render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v) for v in value]
        return value

    def render_str(self, value: Any) -> str:
        return to_string(self.render(value))

    def condition(self, cond: Any) -> bool:
        """An ``if:``: its ``${{ }}`` optional; without a status function it means ``success() && (...)``."""
        if cond is None:
            return self.status("success")
        if isinstance(cond, bool):
            return cond
        text = str(cond).strip()
        m = _TEMPLATE.fullmatch(text)
        if m:
            text = m.group(1)
        if not any(re.search(rf"\b{s}\s*\(", text) for s in _STATUS):
            text = f"success() && ({text})"
        return truthy(self.eval(text))

    # -- parser -----------------------------------------------------------------------------

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ExpressionError(f"cannot read {text[pos:]!r}")
            kind = m.lastgroup or ""
            out.append((kind, m.group(kind)))
            pos = m.end()
        return out

    def _peek(self) -> str | None:
        return self._tokens[self._i][1] if self._i < len(self._tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self._i >= len(self._tokens):
            raise ExpressionError("unexpected end of expression")
        tok = self._tokens[self._i]
        if expected is not None and tok[1] != expected:
            raise ExpressionError(f"expected {expected!r}, got {tok[1]!r}")
        self._i += 1
        return tok

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            left = left if truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._cmp()
        while self._peek() == "&&":
            self._take()
            right = self._cmp()
            left = right if truthy(left) else left
        return left

    def _cmp(self) -> Any:
        left = self._unary()
        while self._peek() in ("==", "!=", "<", "<=", ">", ">="):
            op = self._take()[1]
            right = self._unary()
            if op == "==":
                left = _equal(left, right)
            elif op == "!=":
                left = not _equal(left, right)
            else:
                c = _compare(left, right)
                left = False if math.isnan(c) else {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._postfix(self._primary())

    def _postfix(self, value: Any) -> Any:
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                kind, name = self._take()
                if name == "*":
                    raise ExpressionError("object filters (.*) are not supported")
                if kind != "id":
                    raise ExpressionError(f"bad property {name!r}")
                value = _lookup(value, name)
            else:
                key = self._or()
                self._take("]")
                value = _lookup(value, key)
        return value

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(int(text, 16)) if "x" in text.lower() else float(text)
        if text == "(":
            value = self._or()
            self._take(")")
            return value
        if kind != "id":
            raise ExpressionError(f"unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self._peek() == "(":
            self._take()
            args: list[Any] = []
            while self._peek() != ")":
                args.append(self._or())
                if self._peek() == ",":
                    self._take()
            self._take(")")
            return self._call(text, args)
        if text not in self.contexts:
            raise ExpressionError(f"unknown context {text!r}")
        return self.contexts[text]

    def _call(self, name: str, args: list[Any]) -> Any:
        low = name.lower()
        if low in _STATUS:
            return self.status(low)
        if low == "fromjson":
            return json.loads(to_string(args[0]))
        if low == "tojson":
            return json.dumps(args[0], indent=2)
        if low == "contains":
            hay, needle = args
            if isinstance(hay, list):
                return any(_equal(x, needle) for x in hay)
            return to_string(needle).casefold() in to_string(hay).casefold()
        if low == "startswith":
            return to_string(args[0]).casefold().startswith(to_string(args[1]).casefold())
        if low == "endswith":
            return to_string(args[0]).casefold().endswith(to_string(args[1]).casefold())
        if low == "format":
            return _format(to_string(args[0]), *args[1:])
        if low == "join":
            sep = to_string(args[1]) if len(args) > 1 else ","
            return sep.join(to_string(x) for x in args[0]) if isinstance(args[0], list) else to_string(args[0])
        raise ExpressionError(f"unknown function {name}()")

"""List query strings: ``filters[prop][op]=v``, ``orders[prop]=ASC|DESC``, ``limit``/``offset`` (§7.4).

Parsing only; anything malformed raises :class:`BadRequest` (answered 400
``{"errors":[{"status":400,"title":"Bad Request"}]}``). Compiling record filters against a schema
(types, root columns) is in :func:`record_conds`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox import clock
from reconciler.sandbox.settings import SandboxSettings
from reconciler.sandbox.store import ROOT_COLUMNS, Cond, Order
from reconciler.sandbox.values import MAX_INT, NUMERIC_TYPES, to_number
from reconciler.sandbox.wire import BadRequest

OPERATORS = ("eq", "lt", "lte", "gt", "gte", "contains", "in", "blank", "not_blank")
_FILTER = re.compile(r"^filters\[([^\[\]]+)\](?:\[([^\[\]]*)\])?$")
_ORDER = re.compile(r"^orders\[([^\[\]]+)\]$")
_FALSE = ("false", "0")


@dataclass(frozen=True)
class Filter:
    prop: str
    op: str
    value: str


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int


def parse(items: Iterable[tuple[str, str]]) -> tuple[list[Filter], list[tuple[str, str]]]:
    """Filters and orders, in the order given. No ``[op]`` means ``eq``; ``blank=false`` means
    ``not_blank`` and the reverse (a guess: the docs give no value for these operators)."""
    filters: list[Filter] = []
    orders: list[tuple[str, str]] = []
    for key, value in items:
        if key.startswith("filters"):
            m = _FILTER.match(key)
            if not m:
                raise BadRequest(key)
            op = (m.group(2) or "eq").lower()
            if op not in OPERATORS:
                raise BadRequest(op)
            if op in ("blank", "not_blank") and value.strip().lower() in _FALSE:
                op = "not_blank" if op == "blank" else "blank"
            filters.append(Filter(m.group(1), op, value))
        elif key.startswith("orders"):
            m = _ORDER.match(key)
            if not m or value.upper() not in ("ASC", "DESC"):
                raise BadRequest(key)
            orders.append((m.group(1), value.upper()))
    return filters, orders


def paging(params: Mapping[str, str], settings: SandboxSettings) -> Paging:
    """U22 (guess): limit clamped into [1, limit_max] (or 400 when clamping is off); offset >= 0."""
    try:
        limit = int(params.get("limit", settings.limit_default))
        offset = int(params.get("offset", 0))
    except ValueError as exc:
        raise BadRequest("limit/offset") from exc
    if not settings.limit_clamp and (limit < 1 or limit > settings.limit_max or offset < 0):
        raise BadRequest("limit/offset")
    if offset > MAX_INT:  # beyond what the database pages by (a guess: the API answers 400 too)
        raise BadRequest("offset")
    return Paging(min(max(limit, 1), settings.limit_max), max(offset, 0))


def _convert(value: str, kind: str) -> Any:
    if kind == "num":
        num = to_number(value)
        if num is None:
            raise BadRequest(value)
        return float(num)
    if kind == "time":
        text = clock.normalise_filter_time(value)
        if text is None:
            raise BadRequest(value)
        return text
    if kind == "epoch":
        secs = clock.epoch(value)
        if secs is None:
            raise BadRequest(value)
        return secs
    return value


def _cond(f: Filter, kind: str, **where: Any) -> Cond:
    if f.op in ("blank", "not_blank"):
        return Cond(op=f.op, **where)
    if f.op == "contains":
        return Cond(op="contains", values=(f.value,), **{**where, "value_col": "text_value"})
    raw = [v.strip() for v in f.value.split(",")] if f.op == "in" else [f.value]
    return Cond(op=f.op, values=tuple(_convert(v, kind) for v in raw), **where)


def _resolve(prop: str, schema: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Where a record property lives: ({target|key, value_col, hidden}, value kind)."""
    if prop in ROOT_COLUMNS:
        kind = "time" if prop.endswith("Timestamp") else "text"
        return {"target": ROOT_COLUMNS[prop]}, kind
    if prop.startswith("fields."):
        fid = prop[len("fields."):]
        field = next((f for f in schema["fields"] if f["id"] == fid), None)
        if field is None:
            raise BadRequest(prop)
        base = {"key": prop, "hidden": field.get("status") == "marked_for_deletion",
                "multi": field["type"] == "multiselect"}
        if field["type"] in NUMERIC_TYPES:
            return {**base, "value_col": "num_value"}, "num"
        if field["type"] == "datetime":
            return {**base, "value_col": "num_value"}, "epoch"
        return base, "text"
    if prop.startswith("relationships."):
        rid = prop[len("relationships."):]
        if not any(r["id"] == rid for r in schema["relationships"]):
            raise BadRequest(prop)
        return {"key": prop}, "text"
    raise BadRequest(prop)


def record_conds(filters: Iterable[Filter], schema: Mapping[str, Any]) -> list[Cond]:
    """Compile filters for the records of ``schema``; unknown properties are a 400 (a guess)."""
    conds = []
    for f in filters:
        where, kind = _resolve(f.prop, schema)
        conds.append(_cond(f, kind, **where))
    return conds


def record_orders(orders: Iterable[tuple[str, str]], schema: Mapping[str, Any]) -> list[Order]:
    result = []
    for prop, direction in orders:
        where, _kind = _resolve(prop, schema)
        where.pop("hidden", None)
        where.pop("multi", None)
        result.append(Order(direction=direction, **where))
    return result


# -- schema lists (few items: filtered in Python) -------------------------------------------------
def _values_at(obj: Any, path: list[str]) -> list[Any]:
    if not path:
        return obj if isinstance(obj, list) else [obj]
    if isinstance(obj, list):
        return [v for item in obj for v in _values_at(item, path)]
    if isinstance(obj, Mapping) and path[0] in obj:
        return _values_at(obj[path[0]], path[1:])
    return []


def _match(values: list[Any], f: Filter) -> bool:
    texts = [str(v).lower() if isinstance(v, bool) else str(v) for v in values if v not in (None, "")]
    if f.op == "blank":
        return not texts
    if f.op == "not_blank":
        return bool(texts)
    if f.op == "in":
        wanted = {v.strip() for v in f.value.split(",")}
        return any(t in wanted for t in texts)
    if f.op == "contains":
        pattern = re.compile(".*".join(re.escape(p) for p in f.value.split("*")), re.IGNORECASE)
        return any(pattern.search(t) for t in texts)
    if f.op == "eq":
        return f.value in texts
    cmp = {"lt": lambda a, b: a < b, "lte": lambda a, b: a <= b, "gt": lambda a, b: a > b,
           "gte": lambda a, b: a >= b}[f.op]
    return any(cmp(t, f.value) for t in texts)


def schema_matches(schema: Mapping[str, Any], filters: list[Filter]) -> bool:
    """Filters on a schema document. Filters on ``relationships.*`` (and ``fields.*``) must all hold
    for the SAME relationship (field), as GearPlug's id+namespace pair intends."""
    groups: dict[str, list[Filter]] = {}
    for f in filters:
        head, _, rest = f.prop.partition(".")
        if head in ("relationships", "fields") and rest:
            groups.setdefault(head, []).append(f)
        elif not _match(_values_at(schema, f.prop.split(".")), f):
            return False
    for head, group in groups.items():
        items = schema.get(head) or []
        if not any(all(_match(_values_at(item, f.prop.split(".")[1:]), f) for f in group) for item in items):
            return False
    return True


def sort_schemas(schemas: list[dict[str, Any]], orders: list[tuple[str, str]]) -> list[dict[str, Any]]:
    result = list(schemas)
    for prop, direction in reversed(orders):
        def key(s: Mapping[str, Any], path: list[str] = prop.split(".")) -> tuple[int, str]:
            vals = _values_at(s, path)
            return (0, str(vals[0]).casefold()) if vals else (1, "")
        result.sort(key=key, reverse=direction == "DESC")
    return result

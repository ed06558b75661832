"""Record field values: the vendor's coercion per field type (§7.3 / U12) and the index rows.

``coerce`` turns a request value into the stored value or raises ``ValueError`` with the vendor's
detail text. ``index_rows`` gives the ``(key, text_value, num_value)`` rows that make filters fast;
blank values have no rows at all, so ``not_blank`` is "has a row".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.sandbox import clock

NUMERIC_TYPES = frozenset({"number", "decimal", "currency"})
OPTION_TYPES = frozenset({"dropdown", "multiselect"})
_NUMBER = re.compile(r"^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
_INT = re.compile(r"^\s*-?\d+\s*$")
#: Integers beyond this are not numbers here (a guess: SQLite and a double hold no more).
MAX_INT = 2**63 - 1


def undefined_value(field_id: str) -> str:
    return f"{field_id} cannot accept a value that is not defined in the schema"


def to_number(value: Any) -> int | float | None:
    """A JSON number or numeric string as int/float; None when it is not a finite number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _NUMBER.match(value):
        try:
            value = int(value) if _INT.match(value) else float(value)
        except ValueError:  # more digits than Python converts
            return None
    if isinstance(value, int):
        return value if abs(value) <= MAX_INT else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def is_blank(value: Any) -> bool:
    """§7.4 ``blank``: no value, an empty string, or no option chosen."""
    return value is None or value == "" or value == []


def coerce(field: Mapping[str, Any], value: Any) -> Any:
    """The stored form of ``value`` for ``field`` (a schema field dict); ValueError when invalid."""
    fid, ftype = field["id"], field["type"]
    if value is None:
        return None
    if ftype in ("text", "textarea"):
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # live: numbers sent to text fields come back as strings
        raise ValueError(f"{fid} must be a string")
    if ftype in NUMERIC_TYPES:
        num = to_number(value)
        if num is None:
            raise ValueError(f"{fid} must be a number")
        return num
    if ftype == "date":
        if not clock.parse_date(value):
            raise ValueError(f"{fid} must be a date in the format YYYY-MM-DD")
        return value
    if ftype == "datetime":
        if clock.parse_datetime(value) is None:
            raise ValueError(f"{fid} must be an RFC 3339 datetime")
        return value
    allowed = [o["value"] for o in field.get("options") or []]
    if ftype == "dropdown":
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(undefined_value(fid))
        return value
    if ftype == "multiselect":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or any(not isinstance(v, str) or v not in allowed for v in items):
            raise ValueError(undefined_value(fid))
        return list(dict.fromkeys(items))
    # a type beyond the documented ones (SandboxSettings.extra_field_types): a guess at its values
    if ftype == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{fid} must be true or false")
        return value
    if isinstance(value, (str, bool)) or to_number(value) is not None:
        return value
    raise ValueError(f"{fid} must be a single value")


def _field_rows(ftype: str, value: Any) -> Iterator[tuple[str | None, float | None]]:
    if is_blank(value):
        return
    if ftype in NUMERIC_TYPES:
        num = to_number(value)
        yield (str(value), None if num is None else float(num))
    elif ftype == "datetime":
        yield (value, clock.epoch(value))
    elif isinstance(value, bool):
        yield ("true" if value else "false", None)
    elif isinstance(value, list):
        for item in value:
            yield (str(item), None)
    else:
        yield (str(value), to_number(value) if isinstance(value, (int, float)) else None)


def index_rows(
    types: Mapping[str, str], fields: Mapping[str, Any], relationships: Mapping[str, list[str]]
) -> list[tuple[str, str | None, float | None]]:
    """Index rows of one record. ``types`` maps field id to field type."""
    rows: list[tuple[str, str | None, float | None]] = []
    for fid, value in fields.items():
        for text, num in _field_rows(types.get(fid, "text"), value):
            rows.append((f"fields.{fid}", text, num))
    for rid, targets in relationships.items():
        for target in targets:
            rows.append((f"relationships.{rid}", str(target), to_number(target)))
    return rows

"""The conversions a field migration (``migrate_from``, ``convert``) may use: explicit pairs of types.

A conversion turns one record value of the old field into the value the new field gets, or says why
it cannot (:class:`Unconvertible`): such a value is not copied (a DL103 finding, counted by the plan).
Pure: no I/O. The same type without ``convert`` is a plain copy (the value as read).

The pairs, by name:

* ``text-to-number``: the text, white space around it ignored, must be a decimal number written with
  a ``.`` as the decimal point: an optional ``-`` or ``+``, digits, an optional ``.`` and digits. No
  thousands separators, no ``,`` as decimal point, no exponent, no ``NaN``/``Infinity``: anything
  else is unconvertible (``12,5`` is not read as 12.5 nor as 125). With a ``scale`` on the new
  field, a value with more decimals than the scale is unconvertible (rounding would change it).
  Integers are sent as JSON integers, others as JSON numbers (a float: beyond 15-17 significant
  digits a double cannot hold the text exactly, and such a value is unconvertible);
* ``number-to-text``: the number as text (``12``, ``12.5``; an integral float without ``.0``);
* ``number-to-currency``: the number as it is (the currency value format is UNKNOWN, U12: the
  documented number format is assumed);
* ``date-to-datetime``: ``YYYY-MM-DD`` becomes midnight UTC, ``YYYY-MM-DDT00:00:00Z``;
* ``datetime-to-date``: the date of the instant in UTC; the time of day is lost (DL104);
* ``dropdown-to-text``: the option's value;
* ``text-to-dropdown``: the text must be one of the new field's option values, exactly;
* ``dropdown-to-multiselect``: the one option as a one-item list (its value must be an option of the
  new field);
* ``textarea-to-text``: the text must fit a text field (:data:`TEXT_MAX` characters) and hold no
  line break; ``text-to-textarea``: the text as it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.model import Field, FieldType

__all__ = ["CONVERSIONS", "COPY", "TEXT_MAX", "Conversion", "Unconvertible", "by_name", "conversion_for", "pair_problem",
           "pairs_text", "same_value"]

#: The longest text a ``text`` field holds. UNKNOWN: the API publishes no limit (U5); 255 is the
#: common limit of single-line text fields, a guess.
TEXT_MAX = 255
#: The name of a plain copy (old and new field of the same type, no ``convert``).
COPY = "copy"


@dataclass(frozen=True)
class Unconvertible:
    """Why a value cannot be carried: ``reason`` in a few words (``not a number``)."""

    reason: str


Converter = Callable[[Any, Field], Any]


@dataclass(frozen=True)
class Conversion:
    """A named conversion from a field type to another. ``lossy``: what every converted value loses
    (a DL104 finding), ``None`` when nothing; ``can_fail``: some values may be unconvertible."""

    name: str
    source: FieldType | None  # None: any type (the plain copy)
    target: FieldType | None
    fn: Converter
    can_fail: bool = True
    lossy: str | None = None

    def convert(self, value: Any, new: Field) -> Any:
        """The new field's value for ``value``, or an :class:`Unconvertible`."""
        try:
            return self.fn(value, new)
        except _Cannot as exc:
            return Unconvertible(str(exc))


class _Cannot(Exception):
    pass


#: The largest integer every JSON reader holds exactly (a double's 53 bits).
_SAFE_INT = 2**53 - 1
_DECIMAL = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|z|[+-]\d{2}:\d{2})$")


def _text_to_number(value: Any, new: Field) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Cannot("not a number")
    if isinstance(value, int | float):  # a text field that returned a number (not seen; accepted as one)
        return _number_to_currency(value, new)
    text = value.strip()
    if not _DECIMAL.match(text):
        raise _Cannot("not a number")
    try:
        exact = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise _Cannot("not a number") from None
    exponent = exact.normalize().as_tuple().exponent
    decimals = max(0, -exponent) if isinstance(exponent, int) else 0
    if new.scale is not None and decimals > new.scale:
        raise _Cannot(f"more than {new.scale} decimal{'s' if new.scale != 1 else ''}")
    if exact == exact.to_integral_value():
        if abs(exact) > _SAFE_INT:
            raise _Cannot("more digits than a number holds")
        return int(exact)
    number = float(exact)
    if not math.isfinite(number) or Decimal(repr(number)) != exact:
        raise _Cannot("more digits than a number holds")
    return number


def _number_to_text(value: Any, new: Field) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Cannot("not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Cannot("not a finite number")
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _number_to_currency(value: Any, new: Field) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Cannot("not a number")
    return value


def _date_to_datetime(value: Any, new: Field) -> Any:
    if not isinstance(value, str) or not _DATE.match(value):
        raise _Cannot("not a date (YYYY-MM-DD)")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise _Cannot("not a date (YYYY-MM-DD)") from None
    return f"{value}T00:00:00Z"


def _datetime_to_date(value: Any, new: Field) -> Any:
    if not isinstance(value, str) or not _DATETIME.match(value):
        raise _Cannot("not a datetime")
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # fromisoformat takes at most 6 fractional digits
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _Cannot("not a datetime") from None
    return when.astimezone(UTC).date().isoformat()


def _text(value: Any, new: Field) -> Any:
    if not isinstance(value, str):
        raise _Cannot("not a text")
    return value


def _to_text_field(value: Any, new: Field) -> Any:
    text = _text(value, new)
    if len(text) > TEXT_MAX:
        raise _Cannot(f"longer than {TEXT_MAX} characters")
    if "\n" in text or "\r" in text:
        raise _Cannot("holds a line break")
    return text


def _text_to_dropdown(value: Any, new: Field) -> Any:
    if not isinstance(value, str) or value not in new.option_values:
        raise _Cannot("not one of the options")
    return value


def _dropdown_to_multiselect(value: Any, new: Field) -> Any:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str) or value not in new.option_values:
        raise _Cannot("not one of the options")
    return [value]


def _as_is(value: Any, new: Field) -> Any:
    return value


T = FieldType
#: Every conversion by name.
CONVERSIONS: dict[str, Conversion] = {c.name: c for c in (
    Conversion("text-to-number", T.TEXT, T.NUMBER, _text_to_number),
    Conversion("number-to-text", T.NUMBER, T.TEXT, _number_to_text),
    Conversion("number-to-currency", T.NUMBER, T.CURRENCY, _number_to_currency),
    Conversion("date-to-datetime", T.DATE, T.DATETIME, _date_to_datetime),
    Conversion("datetime-to-date", T.DATETIME, T.DATE, _datetime_to_date, lossy="the time of day"),
    Conversion("dropdown-to-text", T.DROPDOWN, T.TEXT, _text),
    Conversion("text-to-dropdown", T.TEXT, T.DROPDOWN, _text_to_dropdown),
    Conversion("dropdown-to-multiselect", T.DROPDOWN, T.MULTISELECT, _dropdown_to_multiselect),
    Conversion("textarea-to-text", T.TEXTAREA, T.TEXT, _to_text_field),
    Conversion("text-to-textarea", T.TEXT, T.TEXTAREA, _text, can_fail=False),
)}
_PLAIN = Conversion(COPY, None, None, _as_is, can_fail=False)


def by_name(name: str) -> Conversion | None:
    """The conversion a plan names (``copy``: the plain copy)."""
    return _PLAIN if name == COPY else CONVERSIONS.get(name)


def pairs_text() -> str:
    """``text-to-number (text -> number), …``: the conversions that exist."""
    return ", ".join(f"{c.name} ({c.source} -> {c.target})" for c in CONVERSIONS.values())


def conversion_for(old: str, new: str, name: str | None) -> Conversion | str:
    """The conversion from a field of type ``old`` to one of type ``new`` (``name``: the file's
    ``convert``), or the message saying why there is none."""
    if name is None:
        if old == new:
            return _PLAIN
        fits = [c.name for c in CONVERSIONS.values() if c.source == old and c.target == new]
        if fits:
            return f"{old} -> {new} needs convert: {fits[0]}"
        return f"no conversion from {old} to {new}; the conversions are: {pairs_text()}"
    conv = CONVERSIONS.get(name)
    if conv is None:
        return f"unknown conversion {name!r}; the conversions are: {pairs_text()}"
    if conv.source != old or conv.target != new:
        return (f"convert: {name} is {conv.source} -> {conv.target}, but the fields are {old} -> {new}; "
                f"the conversions are: {pairs_text()}")
    return conv


def pair_problem(old: str | None, new: str, name: str | None) -> str | None:
    """The file's check: a ``convert`` name must exist; with the old field's type known, the pair must fit."""
    if old is None:
        if name is not None and name not in CONVERSIONS:
            return f"unknown conversion {name!r}; the conversions are: {pairs_text()}"
        return None
    found = conversion_for(old, new, name)
    return found if isinstance(found, str) else None


def same_value(a: Any, b: Any) -> bool:
    """Whether a record already holds the value a copy would write: numbers by value (``12`` and
    ``12.0`` are one), lists item by item, anything else equal."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)

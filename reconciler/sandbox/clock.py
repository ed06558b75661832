"""Timestamps in the vendor's format: RFC 3339, UTC, ``Z``, nanosecond precision (§3, §7.1)."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime

_lock = threading.Lock()
_last = 0

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def now_ns() -> int:
    """Wall clock in nanoseconds, strictly increasing within the process (stable orderings)."""
    global _last
    with _lock:
        t = max(time.time_ns(), _last + 1000)
        _last = t
        return t


def advance_past(ns: int) -> None:
    """Make the next :func:`now_ns` later than ``ns`` (after a bulk seed that used future stamps)."""
    global _last
    with _lock:
        _last = max(_last, ns)


def format_ns(ns: int) -> str:
    """Fixed-width ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``: sorts lexicographically like time."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def now() -> str:
    return format_ns(now_ns())


def parse_datetime(value: str) -> datetime | None:
    """An RFC 3339 datetime (Z or offset) as an aware datetime; None when malformed."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    m = re.match(r"^(.*?T\d{2}:\d{2}:\d{2})(\.\d+)?(.*)$", text)
    if m and m.group(2):  # fromisoformat wants at most 6 fractional digits
        text = m.group(1) + m.group(2)[:7] + m.group(3)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_date(value: str) -> bool:
    """True when ``value`` is a valid ``YYYY-MM-DD`` date."""
    if not isinstance(value, str) or not _DATE.match(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def normalise_filter_time(value: str) -> str | None:
    """A filter value (datetime or date) in the stored fixed-width format, or None."""
    if parse_date(value):
        value = value + "T00:00:00Z"
    dt = parse_datetime(value)
    if dt is None:
        return None
    ns = int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    return format_ns(ns)


def epoch(value: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 datetime or a date, or None."""
    if parse_date(value):
        value = value + "T00:00:00Z"
    dt = parse_datetime(value)
    return None if dt is None else dt.timestamp()

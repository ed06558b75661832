"""The quirk registry: every behaviour of the emulated API that a setting switches, and why.

Each :class:`Quirk` names one :class:`SandboxSettings` field (the storage), its value under the two
profiles, the source tag or UNKNOWN / conflict id of ``docs/api-notes.md`` it stands for, and
one line of what it does. ``documented`` is the default profile (the §14 recommendations, the
behaviour the sandbox always had); ``pessimistic`` resolves every UNKNOWN against the client: where
the API's behaviour is not known, it picks the reading that a client must survive to be safe on the
real API. :data:`NOTES` says, for each UNKNOWN or conflict with no switch, why none is needed.

``parse_quirk("name=value")`` and :func:`apply_quirks` are the parsing of ``sandbox serve --quirk``;
a bad name or value is a ``ValueError`` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.sandbox.settings import SandboxSettings

PROFILES = ("documented", "pessimistic")
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")
DOCUMENTED_TYPES = ("text", "textarea", "number", "date", "datetime", "currency", "dropdown", "multiselect",
                    "decimal")


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _seconds(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("s"))
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected a number of seconds, 0 or more")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected requests per second (0: off)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("expected requests per second, 0 or more (0: off)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None
    if value < 1:
        raise ValueError("expected a whole number, 1 or more")
    return value


def _cap(text: str) -> int | None:
    return None if text.strip().lower() in ("none", "") else _positive(text)


def _choice(*choices: Any) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        for choice in choices:
            if text.strip().lower() == str(choice).lower():
                return choice
        raise ValueError("expected one of " + ", ".join(str(c) for c in choices))

    return parse


def _tokens(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if any(not _TOKEN.match(t) for t in items):
        raise ValueError("expected comma-separated tokens of printable characters")
    return items


def _types(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    for item in items:
        if not _TYPE_NAME.match(item):
            raise ValueError(f"{item!r} is not a type name (lower-case letters, digits, - and _)")
        if item in DOCUMENTED_TYPES:
            raise ValueError(f"{item!r} is already a documented type")
    return items


@dataclass(frozen=True)
class Quirk:
    name: str  # the SandboxSettings field
    documented: Any
    pessimistic: Any
    source: str  # docs/api-notes.md source tags / UNKNOWN ids / conflict ids
    does: str
    parse: Callable[[str], Any]

    def value(self, profile: str) -> Any:
        return self.documented if profile == "documented" else self.pessimistic


def show(value: Any) -> str:
    """A value as ``--quirk`` takes it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value) if value else '""'
    if value is None:
        return "none"
    return str(value)


QUIRKS: tuple[Quirk, ...] = (
    Quirk("field_put_merge", True, False, "U1",
          "a field in a schema PUT merges into the stored field; false: it replaces it (left-out properties "
          "fall back to defaults, type and labels must be sent)", _bool),
    Quirk("required_honoured", True, False, "U2 U4 C5",
          "required on create and PUT is stored; false: it is ignored and fields always come back "
          "required: false", _bool),
    Quirk("treat_is_required", False, False, "U4 C5",
          "isRequired counts as required when required is absent (the guide saw it ignored)", _bool),
    Quirk("validate_only_query", True, False, "U3",
          "?validateOnly=true works like the validateOnly header; false: header only, the query is ignored "
          "and the PUT is saved", _bool),
    Quirk("options_strict", True, False, "U8",
          "omitting or renaming a stored option is a 422; false: omitted options are kept, a rename through "
          "the server's option id is applied", _bool),
    Quirk("options_match", "value", "id", "U8",
          "a PUT option finds its stored option by value (or server id); id: only by the server's id, an "
          "option without one is new (a duplicate value)", _choice("value", "id")),
    Quirk("upsert_response", "documented", "guide", "U13 C1",
          "record upsert 201 body: with id and timestamps (official example); guide: without them (live)",
          _choice("documented", "guide")),
    Quirk("upsert_keeps_relationships", True, False, "U16",
          "an upsert without a relationships key keeps the record's relationships; false: clears them", _bool),
    Quirk("lenient_contacts", False, False, "U14",
          "a relationship to a contact id unknown to /contact/sync is accepted (false: 422)", _bool),
    Quirk("list_order", "insertion", "shuffled", "U20",
          "order of schema and record lists without orders[...]: insertion, or shuffled per request "
          "(orders[...] honoured; seeded by list_seed or fault_seed)", _choice("insertion", "shuffled")),
    Quirk("list_visibility_delay_s", 0.0, 0.5, "U20",
          "seconds a new record stays out of record lists and their meta.total (live: several seconds)",
          _seconds),
    Quirk("schema_list_lag_s", 0.0, 0.5, "U20",
          "seconds a created, changed or deleted schema shows its old state (or is absent) in schema lists; "
          "get-by-id is current", _seconds),
    Quirk("rate_limit", 5.0, 5.0, "S6 U19",
          "requests per second of the token bucket (burst = rate); 0 turns it off", _rate),
    Quirk("rate_limit_scope", "token", "account", "S6 U19",
          "who shares a bucket: each token its own, or every token of the account one (S6)",
          _choice("token", "account")),
    Quirk("rate_limit_status", 429, 429, "C7 U19",
          "status of a rate-limited request: 429 (documented) or 503 (observed once)", _choice(429, 503)),
    Quirk("retry_after_s", 1.0, 30.0, "S6 U19",
          "least Retry-After of a 429, in seconds (S6's example: 30); the bucket itself refills at the rate",
          _seconds),
    Quirk("member_tokens", (), ("member-token",), "S8 S11",
          "tokens of non-admin users: accepted, 403 Forbidden on field DELETE and on record lists without "
          "filters[...]", _tokens),
    Quirk("extra_field_types", (), ("boolean",), "S1 S10",
          "field types beyond the eight and decimal that the account accepts and holds", _types),
    Quirk("seed_unknown_type_schema", False, True, "S1 S10",
          "at startup the account holds the public schema app-42-event-ticket (a boolean field, 3 records)",
          _bool),
    Quirk("slug_max_len", 64, 64, "U5",
          "longest schema slug (a guess; the client refuses longer ones itself)", _positive),
    Quirk("field_id_max_len", 64, 64, "U5",
          "longest field and relationship id (a guess; the client refuses longer ones itself)", _positive),
    Quirk("max_fields", None, None, "U6", "cap on fields per schema, deleted ones included (none: no cap)", _cap),
    Quirk("max_schemas", None, None, "U6", "cap on schemas per account (none: no cap)", _cap),
    Quirk("max_options", None, None, "U6", "cap on options per field (none: no cap)", _cap),
    Quirk("limit_default", 20, 20, "S5", "page size of a list without limit (documented)", _positive),
    Quirk("limit_max", 100, 100, "S5", "largest page size (documented)", _positive),
    Quirk("limit_clamp", True, False, "U22",
          "a limit above limit_max (or below 1) and a negative offset are clamped; false: 400", _bool),
    Quirk("max_body_bytes", 1_048_576, 1_048_576, "guess",
          "largest request body; above it 413 {\"message\":\"Payload Too Large\"} (nothing is published)",
          _positive),
    Quirk("max_body_depth", 32, 32, "guess",
          "deepest JSON nesting of a request body; deeper is a 400 (nothing is published)", _positive),
)

BY_NAME = {q.name: q for q in QUIRKS}

#: UNKNOWNs and conflicts of docs/api-notes.md with no switch of their own, and why none is needed.
NOTES: dict[str, str] = {
    "U2": "type changes, twin or reused ids, and props on the wrong type are 422 in both profiles (the strict "
          "reading); required is required_honoured, options are options_strict/options_match",
    "U7": "duplicate field labels are 422 in both profiles (S1 documents the rule; only its scope is a guess)",
    "U9": "a deleted field is hidden and its id reserved until Store.purge_deleted_fields, in both profiles: "
          "the reading a client must already survive",
    "U10": "hasMany:true is 422 (reported live); custom namespaces are accepted, since S1 says relationships "
           "may point at custom schemas",
    "U11": "both get-by-externalId paths are served: the real one is not known, and a client that uses the "
           "records list filtered by externalId needs neither",
    "U12": "value formats follow the §14 reading in both profiles; a value outside them is 422, numbers sent to "
           "text come back as strings (seen live)",
    "U15": "missing required values and unknown field ids are 422 in both profiles (AC-Docs withdrew the "
           "'silently dropped' claim); under required_honoured=false nothing is required",
    "U17": "both documented error shapes are used (404 for unknown ids, 400 for malformed ones): a client "
           "must parse both either way",
    "U18": "a bad token is 403 in both profiles, the same status as a permission refusal (member_tokens): "
           "the harder case for a client",
    "U21": "filters follow S5 in full in both profiles; reconciler does not filter on timestamps, so C2's "
           "live total:0 cannot mislead it",
    "U23": "inherited fields are read-only and public/child field deletes are 422 in both profiles (documented "
           "as not permitted; only the status is a guess)",
    "U24": "public slugs are app-{appId}-{slug} (C4): the client reads slugs from the account, never builds one",
    "U25": "a unique slug in a PUT is accepted: reconciler keys schemas by slug and never sends a new one",
    "U26": "unknown top-level keys are ignored (the Go SDK's name-carrying create works live)",
    "C2": "see U21",
    "C3": "record lists take relationships.<relationship id> (S8, S11, S12); reconciler filters on fields only",
    "C4": "see U24",
    "C6": "see U11",
}


def sources() -> set[str]:
    """Every id the registry covers: the quirks' sources and the notes' keys."""
    return {s for q in QUIRKS for s in q.source.split()} | set(NOTES)


def profile_values(profile: str) -> dict[str, Any]:
    """The quirk values of ``profile``; ValueError for an unknown profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown sandbox profile {profile!r} (expected one of {', '.join(PROFILES)})")
    return {q.name: q.value(profile) for q in QUIRKS}


def parse_quirk(spec: str) -> tuple[str, Any]:
    """``NAME=VALUE`` as (name, typed value); ValueError with one line for a bad name or value."""
    name, sep, text = (s.strip() for s in spec.partition("="))
    if not sep or not name:
        raise ValueError(f"quirk: expected NAME=VALUE, got {spec!r}")
    quirk = BY_NAME.get(name)
    if quirk is None:
        raise ValueError(f"quirk: unknown name {name!r} (sandbox serve --list-quirks lists them)")
    try:
        return name, quirk.parse(text)
    except ValueError as exc:
        raise ValueError(f"quirk {name}: {exc}, got {text!r}") from None


def apply_quirks(settings: SandboxSettings, specs: Iterable[str]) -> SandboxSettings:
    """A copy of ``settings`` with each ``NAME=VALUE`` of ``specs`` applied, in order."""
    changes = dict(parse_quirk(spec) for spec in specs)
    return dataclasses.replace(settings, **changes)


def table() -> list[str]:
    """``--list-quirks``: one line per quirk (name, documented, pessimistic, source, what it does),
    then one per UNKNOWN or conflict that has no switch."""
    rows = [("NAME", "DOCUMENTED", "PESSIMISTIC", "SOURCE", "WHAT IT DOES")]
    rows += [(q.name, show(q.documented), show(q.pessimistic), q.source, q.does) for q in QUIRKS]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    lines.append("")
    lines.append("No switch needed:")
    width = max(len(k) for k in NOTES)
    lines += [f"{key.ljust(width)}  {text}" for key, text in NOTES.items()]
    return lines

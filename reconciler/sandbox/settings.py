"""Every switch of the sandbox in one place.

The fields are the storage; :mod:`reconciler.sandbox.quirks` is the registry that describes each
switch that stands for a behaviour of the API (its profile values, the source or UNKNOWN id of
``docs/api-notes.md`` it covers, what it does). The defaults are the ``documented`` profile:
the recommended emulator behaviour of docs/api-notes.md §14, which is a GUESS about the real API wherever
the docs leave it open, not a fact. ``SandboxSettings.from_profile("pessimistic")`` resolves every
UNKNOWN against the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass
class SandboxSettings:
    # The only accepted admin ``Api-Token``. A wrong or missing token gets 403 {"message":"Forbidden"}:
    # U18, a guess (AC does not document the status for custom objects).
    token: str = "sandbox-token"
    # Tokens of non-admin users: accepted, but 403 {"message":"Forbidden"} on field DELETE and on record
    # lists without a ``filters[...]`` parameter (admin-only, docs/api-notes.md §4 / §7.4; the 403 body is a guess).
    member_tokens: tuple[str, ...] = ()

    # Token bucket in requests per second; the burst equals the rate (at least 1). 0 turns the limiter
    # off. The 5 req/s figure is documented (S6); the bucket shape is U19, a guess.
    rate_limit: float = 5.0
    # Who shares a bucket: "token" (one per Api-Token) or "account" (every token shares one: S6 says
    # the limit is per account).
    rate_limit_scope: Literal["token", "account"] = "token"
    # Status answered by the limiter: 429 is documented, 503 was observed once (C7 / U19, a guess).
    rate_limit_status: int = 429
    # The least ``Retry-After`` (whole seconds, rounded up) that a 429 carries; S6's example says 30.
    retry_after_s: float = 1.0

    # U8 (guess): options are append-only; True -> omitting (or renaming) an existing option is a 422,
    # False -> omitted options are kept and a rename through the server's option id is applied.
    options_strict: bool = True
    # U8 (guess): how a PUT's option finds the stored option it means. "value": by value (or by the
    # server's id); "id": only by the server's id, an option without one is NEW (a duplicate value when
    # a stored option already has it).
    options_match: Literal["value", "id"] = "value"
    # U4 (guess): False -> ``isRequired`` in a field is ignored (the seed-guide observation);
    # True -> ``isRequired`` counts as ``required`` when ``required`` is absent.
    treat_is_required: bool = False
    # U2/U4/C5 (guess): False -> ``required`` on create and PUT is ignored, fields are always
    # ``required: false`` (no public source shows ``required: true`` honoured).
    required_honoured: bool = True
    # U1 (guess): True -> a field in a PUT merges into the stored field (properties left out are kept);
    # False -> it replaces the stored field (properties left out fall back to their defaults).
    field_put_merge: bool = True
    # U3 (guess): also honour ``?validateOnly=true`` (documented: the header only).
    validate_only_query: bool = True
    # U13 / C1: the record upsert 201 body. "documented": with ``id`` and timestamps (the official
    # example); "guide": without them (the live report).
    upsert_response: Literal["documented", "guide"] = "documented"
    # U16 (guess): an upsert without a ``relationships`` key keeps the record's relationships (True)
    # or clears them (False: the upsert replaces the whole record).
    upsert_keeps_relationships: bool = True

    # Field types the account can hold beyond the eight documented ones and ``decimal`` (S1: the type
    # list is "still being finalized"; S10 once claimed ``boolean``).
    extra_field_types: tuple[str, ...] = ()
    # At startup the account holds an app's public schema with a ``boolean`` field and a few records
    # (``seed.UNKNOWN_TYPE_SLUG``), as an account with an installed app or a vendor-added type would.
    seed_unknown_type_schema: bool = False

    # U5 (guess): length caps of schema slugs and field/relationship ids.
    slug_max_len: int = 64
    field_id_max_len: int = 64
    # U6 (guess): caps on fields per schema (marked_for_deletion ones included), schemas per account
    # and options per field; None means no cap (nothing is published).
    max_fields: int | None = None
    max_schemas: int | None = None
    max_options: int | None = None

    # U20 (guess): list order. "insertion", or "shuffled": every schema and record LIST comes in a
    # random order per request unless it has ``orders[...]`` (S5), which is then honoured.
    list_order: Literal["insertion", "shuffled"] = "insertion"
    # U20 (guess): new records stay out of record LISTS for this many seconds (eventual consistency
    # reported live). Get-by-id/externalId see them at once.
    list_visibility_delay_s: float = 0.0
    # U20 (guess): a schema created, changed or deleted less than this many seconds ago shows its OLD
    # state (or is absent) in ``GET /schemas`` lists; get-by-id is current.
    schema_list_lag_s: float = 0.0

    # U14 (guess): False -> a record relationship to a contact id unknown to /contact/sync is a 422;
    # True -> any positive integer id is accepted.
    lenient_contacts: bool = False

    # U22 (guess): list paging. ``limit`` above ``limit_max`` is clamped when ``limit_clamp`` is True,
    # otherwise it is a 400; a limit below 1 becomes 1 (clamped) or a 400; a negative offset is 0 / 400.
    limit_default: int = 20
    limit_max: int = 100
    limit_clamp: bool = True

    # Guesses (nothing is published): a request body above ``max_body_bytes`` is a 413, and JSON
    # nested deeper than ``max_body_depth`` (arrays and objects) is a 400.
    max_body_bytes: int = 1_048_576
    max_body_depth: int = 32

    # Print one line per request to stderr (method, path, status, duration, injected fault). The
    # request headers, and so the token, are never printed.
    log_requests: bool = False

    # DESIGN §4 fault SPEC (e.g. "429=0.2,drop=0.05,latency=100ms") and its seed; "" = no faults.
    faults: str = ""
    fault_seed: int | None = None
    # Seed of the shuffled list order (``list_order="shuffled"``); None: ``fault_seed``.
    list_seed: int | None = None

    @classmethod
    def from_profile(cls, profile: str = "documented", **overrides: Any) -> SandboxSettings:
        """The settings of a quirk profile ("documented" or "pessimistic"), with ``overrides`` (any
        field, e.g. ``token=…, rate_limit=0``) on top. ValueError for an unknown profile."""
        from reconciler.sandbox.quirks import profile_values

        return cls(**{**profile_values(profile), **overrides})

"""Every switch of the sandbox in one place.

Each switch that covers an UNKNOWN of ``/work/shared/ac-api.md`` §14 names it (U1..U26). The default
is the recommended emulator behaviour there, which is a GUESS about the real API, not a fact.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SandboxSettings:
    # The only accepted ``Api-Token``. A wrong or missing token gets 403 {"message":"Forbidden"}:
    # U18, a guess (AC does not document the status for custom objects).
    token: str = "sandbox-token"

    # Token bucket per token, in requests per second; the burst equals the rate (at least 1).
    # 0 turns the limiter off. The 5 req/s figure is documented (S6); the bucket shape is U19, a guess.
    rate_limit: float = 5.0
    # Status answered by the limiter: 429 is documented, 503 was observed once (C7 / U19, a guess).
    rate_limit_status: int = 429

    # U8 (guess): options are append-only; True -> omitting (or renaming) an existing option is a 422,
    # False -> omitted options are kept and a rename through the server's option id is applied.
    options_strict: bool = True
    # U4 (guess): False -> ``isRequired`` in a field is ignored (the seed-guide observation);
    # True -> ``isRequired`` counts as ``required`` when ``required`` is absent.
    treat_is_required: bool = False
    # U13 (guess): True reproduces the live report that the upsert 201 carries no record ``id``.
    omit_id_in_upsert_response: bool = False

    # U5 (guess): length caps of schema slugs and field/relationship ids.
    slug_max_len: int = 64
    field_id_max_len: int = 64
    # U6 (guess): caps on fields per schema (marked_for_deletion ones included), schemas per account
    # and options per field; None means no cap (nothing is published).
    max_fields: int | None = None
    max_schemas: int | None = None
    max_options: int | None = None

    # U20 (guess): new records stay out of record LISTS for this many seconds (eventual consistency
    # reported live). Get-by-id/externalId see them at once.
    list_visibility_delay_s: float = 0.0

    # U14 (guess): False -> a record relationship to a contact id unknown to /contact/sync is a 422;
    # True -> any positive integer id is accepted.
    lenient_contacts: bool = False

    # U22 (guess): list paging. ``limit`` above ``limit_max`` is clamped when ``limit_clamp`` is True,
    # otherwise it is a 400; a limit below 1 becomes 1 (clamped) or a 400; a negative offset is 0 / 400.
    limit_default: int = 20
    limit_max: int = 100
    limit_clamp: bool = True

    # Print one line per request to stderr (method, path, status, duration, injected fault). The
    # request headers, and so the token, are never printed.
    log_requests: bool = False

    # DESIGN §4 fault SPEC (e.g. "429=0.2,drop=0.05,latency=100ms") and its seed; "" = no faults.
    faults: str = ""
    fault_seed: int | None = None

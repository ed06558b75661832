"""Generated records for trying data-loss plans locally: ``seed_records`` (straight into a store) and
``seed_records_http`` (through the sandbox's public API, as a user's script would).

Each record gets a value for each live field with probability ``fill`` (required fields always get
one, so the records are valid ones), generated for the field's type: the eight documented types
(dropdown and multiselect from the field's options, numbers at the field's scale, currency amounts
in cents) and ``decimal``. Each record relates to one of a set of generated contacts through every
``contacts`` relationship of the schema. The same ``seed`` gives the same values, contacts and
relations.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.sandbox.store import Store
from reconciler.sandbox.values import coerce

__all__ = ["SeedError", "SeedResult", "generate_records", "seed_records", "seed_records_http"]

_WORDS = ("amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "iris", "juniper",
          "kestrel", "linen", "maple", "nectar", "onyx", "pepper", "quartz", "russet", "saffron", "tundra")
_FIRST = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jon", "Keiko", "Luis")
_LAST = ("Anders", "Brown", "Costa", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen")
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
#: Statuses answered without the request being performed (the sandbox's limiter and injected faults):
#: safe to send again. A lost response (connection closed after the write) is not retried.
_RETRY_STATUSES = (429, 502, 503)


class SeedError(ValueError):
    """Bad input to a seeder (unknown slug, count or fill out of range, an API refusal): one line."""


@dataclass
class SeedResult:
    """What a seeding run did. ``filled`` maps each live field id to the records given a value."""

    schema_id: str
    slug: str
    created: int
    contacts: int
    filled: dict[str, int] = field(default_factory=dict)


def _check(count: int, fill: float) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise SeedError(f"count must be a positive whole number, not {count!r}")
    if not 0.0 <= fill <= 1.0:
        raise SeedError(f"fill must be between 0 and 1, not {fill!r}")


def _value(rng: random.Random, fdef: Mapping[str, Any]) -> Any:
    """A valid request value for the field (the form a user sends; ``coerce`` gives the stored one)."""
    ftype = fdef["type"]
    if ftype == "text":
        return f"{rng.choice(_WORDS)}-{rng.randrange(10_000)}"
    if ftype == "textarea":
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12))).capitalize() + "."
    if ftype in ("number", "decimal"):
        scale = fdef.get("scale")
        if scale is None:
            scale = 0 if ftype == "number" else 2
        if scale == 0:
            return rng.randrange(1, 100_000)
        return round(rng.uniform(0, 10_000), int(scale))
    if ftype == "currency":
        # UNKNOWN: the scale of a currency value is not documented; whole cents are always accepted here
        return round(rng.randrange(100, 1_000_000) / 100, 2)
    if ftype == "date":
        return (_EPOCH.date() + timedelta(days=rng.randrange(730))).isoformat()
    if ftype == "datetime":
        moment = _EPOCH + timedelta(seconds=rng.randrange(730 * 86_400))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    options = [o["value"] for o in fdef.get("options") or []]
    if ftype == "dropdown":
        return rng.choice(options) if options else None
    if ftype == "multiselect":
        return rng.sample(options, rng.randint(1, len(options))) if options else None
    if ftype == "boolean":  # a type beyond the documented ones (SandboxSettings.extra_field_types)
        return rng.random() < 0.5
    return None


def _live_fields(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [f for f in schema["fields"] if f.get("status") != "marked_for_deletion"]


def _contact_relationships(schema: Mapping[str, Any]) -> list[str]:
    return [r["id"] for r in schema.get("relationships") or [] if r.get("namespace") == "contacts"]


def generate_records(schema: Mapping[str, Any], count: int, fill: float = 0.3, seed: int = 0,
                     contact_ids: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """``count`` records of ``schema`` (a sandbox schema document) as
    ``{"fields": {id: request value}, "relationships": {id: [contact id]}}``, deterministic for a
    seed. Without ``contact_ids`` the records relate to nothing."""
    _check(count, fill)
    rng = random.Random(seed)
    fields = _live_fields(schema)
    rel_ids = _contact_relationships(schema)
    for _ in range(count):
        values: dict[str, Any] = {}
        for fdef in fields:
            wanted = fdef.get("required") or rng.random() < fill
            value = _value(rng, fdef) if wanted else None
            if value is not None:
                values[fdef["id"]] = value
        rels = {rid: [rng.choice(contact_ids)] for rid in rel_ids} if contact_ids else {}
        yield {"fields": values, "relationships": rels}


def _contact_docs(count: int, seed: int) -> list[dict[str, str]]:
    """The generated contacts: at most 100, fewer for few records (several records share one)."""
    rng = random.Random(f"contacts-{seed}")
    docs = []
    for i in range(max(1, min(count, 100))):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        docs.append({"email": f"{first.lower()}.{last.lower()}.{seed}-{i}@example.test",
                     "firstName": first, "lastName": last})
    return docs


def _tally(schema: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {f["id"]: sum(1 for r in records if f["id"] in r["fields"]) for f in _live_fields(schema)}


def _schema_by_slug(store: Store, slug: str) -> dict[str, Any]:
    schema = next((s for s in store.list_schemas() if s["slug"] == slug), None)
    if schema is None:
        raise SeedError(f"no schema with slug {slug!r} in the sandbox")
    return schema


def _store_contacts(store: Store, count: int, seed: int) -> list[str]:
    """The generated contacts, created the way ``/contact/sync`` stores them (existing ones kept)."""
    ids = []
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    with store.transaction():
        for doc in _contact_docs(count, seed):
            found = store.get_contact_by_email(doc["email"])
            if found is None:
                found = store.save_contact({**doc, "phone": "", "cdate": now, "udate": now, "fieldValues": []})
            ids.append(str(found["id"]))
    return ids


def seed_records(store: Store, slug: str, count: int, fill: float = 0.3, seed: int = 0) -> SeedResult:
    """Put ``count`` generated records into the schema ``slug`` of ``store`` (one transaction).
    SeedError for an unknown slug, ``count < 1`` or ``fill`` outside [0, 1]."""
    _check(count, fill)
    schema = _schema_by_slug(store, slug)
    defs = {f["id"]: f for f in _live_fields(schema)}
    contact_ids = _store_contacts(store, count, seed) if _contact_relationships(schema) else []
    records = list(generate_records(schema, count, fill, seed, contact_ids))
    stored = [{"fields": {fid: coerce(defs[fid], v) for fid, v in r["fields"].items()},
               "relationships": r["relationships"]} for r in records]
    created = store.seed_records(schema["id"], stored)
    return SeedResult(schema["id"], slug, created, len(contact_ids), _tally(schema, records))


# -- over HTTP -------------------------------------------------------------------------------------
def _send(client: Any, method: str, path: str, retries: int = 20, **kwargs: Any) -> Any:
    """One request; answers the sandbox gives without performing it (429, 502, 503) are sent again
    after their ``Retry-After`` (1 s without one)."""
    for _ in range(retries):
        response = client.request(method, path, **kwargs)
        if response.status_code not in _RETRY_STATUSES:
            return response
        wait = response.headers.get("retry-after", "1")
        time.sleep(float(wait) if wait.replace(".", "", 1).isdigit() else 1.0)
    return response


def _refused(response: Any, what: str) -> SeedError:
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    detail = errors[0].get("detail") or errors[0].get("title") if errors and isinstance(errors[0], dict) else None
    return SeedError(f"{what}: the sandbox answered {response.status_code}" + (f" ({detail})" if detail else ""))


def _require_sandbox(client: Any, base_url: str) -> None:
    """Generated records go into a sandbox only: the server must serve the sandbox's OpenAPI
    document (a real account does not), or nothing is written."""
    from reconciler.sandbox.app import TITLE
    from reconciler.sandbox.openapi import OPENAPI_PATH

    r = _send(client, "GET", OPENAPI_PATH)
    try:
        title = r.json().get("info", {}).get("title") if r.status_code == 200 else None
    except ValueError:
        title = None
    if title != TITLE:
        raise SeedError(f"{base_url} is not a reconciler sandbox (seed-records writes generated records, "
                        "so it only targets one)")


def _http_schema(client: Any, slug: str) -> dict[str, Any]:
    offset = 0
    while True:
        r = _send(client, "GET", "/api/3/customObjects/schemas",
                  params={"limit": 100, "offset": offset, "showFields": "all"})
        if r.status_code != 200:
            raise _refused(r, "listing schemas")
        page = r.json().get("schemas") or []
        found = next((s for s in page if s.get("slug") == slug), None)
        if found is not None:
            return dict(found)
        if len(page) < 100:
            raise SeedError(f"no schema with slug {slug!r} in the sandbox")
        offset += len(page)


def seed_records_http(base_url: str, token: str, slug: str, count: int, fill: float = 0.3, seed: int = 0,
                      timeout: float = 30.0) -> SeedResult:
    """As :func:`seed_records`, through a served sandbox's public API with plain httpx: contacts by
    ``POST /api/3/contact/sync``, one ``POST`` record upsert each (at the sandbox's rate limit, so
    1,000 records take about 3.5 minutes at 5 req/s). SeedError for bad input or a refused request
    (the token never appears in it)."""
    import httpx

    _check(count, fill)
    base_url = base_url.rstrip("/").removesuffix("/api/3")
    with httpx.Client(base_url=base_url, headers={"Api-Token": token}, timeout=timeout) as client:
        try:
            _require_sandbox(client, base_url)
            schema = _http_schema(client, slug)
            contact_ids: list[str] = []
            if _contact_relationships(schema):
                for doc in _contact_docs(count, seed):
                    r = _send(client, "POST", "/api/3/contact/sync", json={"contact": doc})
                    if r.status_code not in (200, 201):
                        raise _refused(r, "creating a contact")
                    contact_ids.append(str(r.json()["contact"]["id"]))
            records = list(generate_records(schema, count, fill, seed, contact_ids))
            path = f"/api/3/customObjects/records/{schema['id']}"
            for rec in records:
                body = {"record": {"fields": [{"id": k, "value": v} for k, v in rec["fields"].items()],
                                   "relationships": {k: [int(i) for i in v] for k, v in rec["relationships"].items()}}}
                r = _send(client, "POST", path, json=body)
                if r.status_code != 201:
                    raise _refused(r, "creating a record")
        except httpx.HTTPError as exc:
            raise SeedError(f"cannot reach the sandbox at {base_url}: {type(exc).__name__}") from None
    return SeedResult(str(schema["id"]), slug, len(records), len(contact_ids), _tally(schema, records))

"""Schemas to build, clients of an in-process sandbox, and plan/apply shortcuts for the apply tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Any

import httpx

from reconciler.applier import ApplyResult, apply_plan
from reconciler.client import Client
from reconciler.model import Schema
from reconciler.plan import Plan
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan

SCHEMAS_PATH = "/api/3/customObjects/schemas"


class NoSleep:
    """The client's retry ``sleep``: records the delays and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.calls.append(delay)
        await asyncio.sleep(0)


def field(fid: str, ftype: str = "text", label: str | None = None, **extra: Any) -> dict[str, Any]:
    label = label or fid.replace("-", " ").title()
    return {"id": fid, "type": ftype, "labels": {"singular": label, "plural": f"{label}s"}, **extra}


def schema(slug: str, fields: list[dict[str, Any]], *, label: str | None = None,
           relationships: list[dict[str, Any]] | None = None, **extra: Any) -> Schema:
    label = label or slug.replace("-", " ").title()
    return Schema.model_validate({
        "slug": slug, "labels": {"singular": label, "plural": f"{label}s"}, "fields": fields,
        "relationships": relationships or [], **extra,
    })


def asgi_client(app: Any, **kw: Any) -> Client:
    """A client of the in-process sandbox: no limiter, retries that do not really sleep."""
    kw.setdefault("sleep", NoSleep())
    kw.setdefault("rate", None)
    return Client("http://sandbox.local", app.state.sandbox.settings.token, transport=httpx.ASGITransport(app=app),
                  **kw)


async def live_of(client: Client) -> dict[str, Schema]:
    return {s.slug: s for s in await client.list_schemas()}


async def plan_against(client: Client, desired: Mapping[str, Schema], options: PlanOptions) -> Plan:
    return make_plan(desired, await live_of(client), options)


async def apply_desired(client: Client, desired: Mapping[str, Schema], options: PlanOptions,
                        **kw: Any) -> tuple[Plan, ApplyResult]:
    """A fresh plan, applied with ``--allow-data-loss`` (what ``apply --auto-approve`` does)."""
    the_plan = await plan_against(client, desired, options)
    kw.setdefault("allow_data_loss", True)
    result = await apply_plan(the_plan, client, desired=desired, options=options, **kw)
    return the_plan, result


def slug_counts(app: Any) -> Counter[str]:
    return Counter(d["slug"] for d in app.state.sandbox.store.list_schemas())


def reached_handler(e: Any) -> bool:
    """The request got past the fault layer to the route (rate limiter off in these tests)."""
    return e.fault in (None, "lost")


class StoreSpy:
    """The sandbox store's writes that took effect: schemas created (by slug), fields marked for
    deletion, schemas deleted. The traffic log cannot tell this for a lost response (its status is
    ``None`` whatever the handler answered), the store can."""

    def __init__(self, store: Any) -> None:
        self.events: list[tuple[str, ...]] = []
        put, delete = store.put_schema, store.delete_schema

        def spy_put(doc: Mapping[str, Any]) -> None:
            old = store.get_schema(doc["id"])
            if old is None:
                self.events.append(("create", doc["slug"]))
            else:
                was = {f["id"] for f in old["fields"] if f.get("status") == "marked_for_deletion"}
                for f in doc["fields"]:
                    if f.get("status") == "marked_for_deletion" and f["id"] not in was:
                        self.events.append(("delete-field", doc["slug"], f["id"]))
            put(doc)

        def spy_delete(schema_id: str) -> bool:
            doc = store.get_schema(schema_id)
            gone = bool(delete(schema_id))
            if gone:
                self.events.append(("delete-schema", doc["slug"] if doc else schema_id))
            return gone

        store.put_schema, store.delete_schema = spy_put, spy_delete

    def clear(self) -> None:
        self.events.clear()

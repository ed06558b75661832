"""Issue 12 "partial-field PUTs" and "options with their ids": every field of an update body is sent
whole, its live options with the server's ids, whether the API merges a field in a PUT or replaces
it (``field_put_merge=False``); creates send option values only.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from reconciler.applier import apply_plan
from reconciler.client import Client
from reconciler.model import Field, Labels, Option, Schema
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.props import Prop
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import RunningSandbox, running_sandbox
from reconciler.wire import field_to_api, field_update_to_api, schema_to_api

TOKEN = "tok-fields-5d1e0a77"


def labels(name: str) -> Labels:
    return Labels(singular=name, plural=f"{name}s")


def live_field(**kw: Any) -> Field:
    base: dict[str, Any] = {"id": "size", "type": "dropdown", "labels": labels("Size"), "description": "Shirt size",
                            "required": True,
                            "options": (Option(value="M", id="u-m"), Option(value="S", id="u-s"))}
    return Field(**{**base, **kw})


def test_an_update_sends_the_field_whole_with_option_ids() -> None:
    live = live_field()
    want = live_field(labels=labels("Shirt Size"), options=(Option(value="S"), Option(value="XL"),
                                                            Option(value="M")), description="Shirt size")
    body = field_update_to_api(want, live, (Prop.LABELS_SINGULAR, Prop.LABELS_PLURAL, Prop.OPTIONS))
    assert body == {"id": "size", "labels": {"singular": "Shirt Size", "plural": "Shirt Sizes"}, "type": "dropdown",
                    "required": True, "description": "Shirt size",
                    "options": [{"id": "u-m", "value": "M"}, {"id": "u-s", "value": "S"}, {"value": "XL"}]}


def test_what_the_planner_leaves_unmanaged_is_sent_as_the_account_holds_it() -> None:
    live = Field(id="amount", type="number", labels=labels("Amount"), scale=2, required=True, description="old")
    want = Field(id="amount", type="number", labels=labels("Total"))  # no scale: not managed
    body = field_update_to_api(want, live, (Prop.LABELS_SINGULAR, Prop.LABELS_PLURAL, Prop.DESCRIPTION,
                                                  Prop.REQUIRED))
    assert body == {"id": "amount", "labels": {"singular": "Total", "plural": "Totals"}, "type": "number",
                    "required": False, "description": "", "scale": 2}
    # required not in the changed names (not managed, or equal): the live value
    assert field_update_to_api(want, live, (Prop.LABELS_SINGULAR,))["required"] is True


def test_a_create_sends_option_values_only() -> None:
    f = live_field()
    assert field_to_api(f)["options"] == [{"value": "M"}, {"value": "S"}]
    s = Schema(slug="shirts", labels=labels("Shirt"), fields=(f,))
    assert schema_to_api(s)["fields"][0]["options"] == [{"value": "M"}, {"value": "S"}]


def _raw(sb: RunningSandbox) -> dict[str, Any]:
    (doc,) = sb.store.list_schemas()
    return {f["id"]: f for f in doc["fields"]}


@pytest.mark.parametrize("merge", [True, False])
def test_a_label_change_keeps_every_other_property(merge: bool) -> None:
    """The account holds properties the files leave unmanaged (scale, defaultCurrency) and options; an
    update of labels and description keeps them all, however the API treats a field in a PUT."""
    st = SandboxSettings(token=TOKEN, rate_limit=0, field_put_merge=merge, options_match="id")
    with running_sandbox(st) as sb:
        create = {"schema": {"slug": "shirts", "labels": {"singular": "Shirt", "plural": "Shirts"}, "fields": [
            {"id": "size", "type": "dropdown", "labels": {"singular": "Size", "plural": "Sizes"}, "required": True,
             "options": [{"value": "M"}, {"value": "S"}]},
            {"id": "price", "type": "currency", "labels": {"singular": "Price", "plural": "Prices"},
             "defaultCurrency": "EUR", "description": "gross"},
            {"id": "weight", "type": "number", "labels": {"singular": "Weight", "plural": "Weights"}, "scale": 3},
        ]}}
        r = httpx.post(f"{sb.url}/api/3/customObjects/schemas", json=create, headers={"Api-Token": TOKEN}, timeout=10)
        assert r.status_code == 201, r.text
        before = _raw(sb)
        want = Schema(slug="shirts", labels=labels("Shirt"), fields=(
            Field(id="size", type="dropdown", labels=labels("Shirt Size"), required=True,
                  options=(Option(value="M"), Option(value="S"), Option(value="L"))),
            Field(id="price", type="currency", labels=labels("Gross Price"), description="gross"),
            Field(id="weight", type="number", labels=labels("Weight"), description="in kg"),
        ))

        async def go() -> tuple[Any, Any, Any]:
            async with Client(sb.url, TOKEN, rate=None) as c:
                live = {s.slug: s for s in await c.list_schemas()}
                p = make_plan({"shirts": want}, live, PlanOptions())
                result = await apply_plan(p, c, desired={"shirts": want}, options=PlanOptions())
                again = make_plan({"shirts": want}, {s.slug: s for s in await c.list_schemas()}, PlanOptions())
                return p, result, again

        p, result, again = asyncio.run(go())
        after = _raw(sb)
    assert sorted(c.subject for c in p.changes) == ["shirts.price", "shirts.size", "shirts.weight"]
    assert result.ok and not again.has_changes
    assert after["price"]["defaultCurrency"] == "EUR" and after["price"]["description"] == "gross"
    assert after["weight"]["scale"] == 3 and after["weight"]["description"] == "in kg"
    assert after["size"]["required"] is True
    assert [(o["id"], o["value"]) for o in after["size"]["options"][:2]] == [
        (o["id"], o["value"]) for o in before["size"]["options"]]
    assert [o["value"] for o in after["size"]["options"]] == ["M", "S", "L"]

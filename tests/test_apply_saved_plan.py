"""Issue 11 acceptance 2: a saved plan is an approval of a computation, not a script.

Each test edits a plan file the way an attacker with write access to it would, recomputes its
plain sha256 digest (so :class:`~reconciler.plan.PlanTampered` does not fire), and hands it to
``apply_plan(saved=True)``. The applier plans again from the files and the account and must refuse
every edit before anything reaches the account: the sandbox's traffic log, the independent witness,
holds no write (not even a ``validateOnly`` preflight). The unedited file applies and converges.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.applier import PlanMismatch, StalePlan, apply_plan
from reconciler.drift import compute_drift
from reconciler.impact import count_impacts
from reconciler.model import Schema
from reconciler.plan import NotAPlanFile, Plan, PlanFileError, canonical_json
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.render import render_drift
from reconciler.sandbox import SandboxSettings, create_app
from tests.conftest import TOKEN
from tests.support.apply import asgi_client, field, live_of, plan_against, schema

TARGET = "http://sandbox.local/api/3"
OPTIONS = PlanOptions(prune=True, target_url=TARGET, created_at="2026-06-01T12:00:00+00:00")


def live_docs() -> list[Schema]:
    return [
        schema("order", [field("number", "number", scale=0), field("note"),
                         field("status", "dropdown", options=[{"value": "new"}, {"value": "paid"}]),
                         field("legacy")]),
        schema("customer", [field("email"), field("nickname")]),
        schema("junk", [field("thing")]),
    ]


def desired_docs() -> dict[str, Schema]:
    """order: relabelled, a label changed, an option and a field added, legacy deleted (DL102);
    customer: a label changed; junk: pruned (DL101)."""
    return {s.slug: s for s in (
        schema("order", [field("number", "number", scale=0), field("note", label="Remark"),
                         field("status", "dropdown", options=[{"value": "new"}, {"value": "paid"},
                                                              {"value": "refunded"}]),
                         field("channel")], label="Purchase"),
        schema("customer", [field("email"), field("nickname", label="Alias")]),
    )}


def redigest(data: dict[str, Any]) -> str:
    """The edited file as the library writes it, with a digest that matches: what anyone who edits
    a plan file and runs this code can make (the derived keys, ``describe`` and ``summary``, follow
    the edit)."""
    rebuilt = Plan.model_validate(data)
    text = rebuilt.to_json()
    body = {k: v for k, v in json.loads(text).items() if k != "digest"}
    assert json.loads(text)["digest"] == hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
    return text


def change(data: dict[str, Any], key: str) -> dict[str, Any]:
    (c,) = [c for c in data["changes"] if c["key"] == key]
    return c


# the edits: each takes the plan file's JSON data and changes it in place

def edit_label(d: dict[str, Any]) -> None:
    change(d, "order:update-schema")["after"]["labels"]["singular"] = "Hacked"


def edit_field_type(d: dict[str, Any]) -> None:
    change(d, "order.channel:add-field")["after"]["type"] = "textarea"


def edit_update_into_delete(d: dict[str, Any]) -> None:
    c = change(d, "order.note:update-field")
    c.update(kind="delete-field", key="order.note:delete-field", action="-", after=None, changed=[])


def edit_add_change(d: dict[str, Any]) -> None:
    extra = copy.deepcopy(change(d, "order.legacy:delete-field"))
    extra.update(slug="customer", field_id="email", key="customer.email:delete-field",
                 schema_id=change(d, "customer.nickname:update-field")["schema_id"])
    extra["findings"] = []
    d["changes"].append(extra)


def edit_drop_finding(d: dict[str, Any]) -> None:
    change(d, "order.legacy:delete-field")["findings"] = []  # DL102 gone: no --allow-data-loss needed


def edit_acknowledged(d: dict[str, Any]) -> None:
    change(d, "junk:delete-schema")["findings"][0]["acknowledged"] = True


def edit_target(d: dict[str, Any]) -> None:
    d["target"] = "https://evil.api-us1.com/api/3"


def edit_live_fingerprint(d: dict[str, Any]) -> None:
    d["live_fingerprints"]["order"] = "0" * 64


def edit_drop_live_fingerprint(d: dict[str, Any]) -> None:
    del d["live_fingerprints"]["junk"]


def edit_desired_digest(d: dict[str, Any]) -> None:
    d["desired_digest"] = "f" * 64


def edit_narrowed_by(d: dict[str, Any]) -> None:
    d["narrowed_by"] = {"targets": ["order"], "excludes": []}  # claims a narrower plan than it holds


def edit_drop_change(d: dict[str, Any]) -> None:
    d["changes"] = [c for c in d["changes"] if c["key"] != "order.channel:add-field"]


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "label": edit_label,
    "field type": edit_field_type,
    "update turned into a delete": edit_update_into_delete,
    "change added": edit_add_change,
    "DL finding dropped": edit_drop_finding,
    "acknowledged flag": edit_acknowledged,
    "target": edit_target,
    "live fingerprint": edit_live_fingerprint,
    "live fingerprint dropped": edit_drop_live_fingerprint,
    "desired_digest": edit_desired_digest,
    "narrowed_by": edit_narrowed_by,
    "change dropped": edit_drop_change,
}


async def _saved_plan_text(app: Any) -> str:
    async with asgi_client(app) as c:
        for s in live_docs():
            await c.create_schema(s)
        counted = await count_impacts(await plan_against(c, desired_docs(), OPTIONS), c)
    return counted.to_json()


def test_every_edit_with_a_recomputed_digest_is_refused_and_nothing_is_written() -> None:
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    state = app.state.sandbox
    text = asyncio.run(_saved_plan_text(app))
    original = json.loads(text)
    assert {c["key"] for c in original["changes"]} >= {
        "order:update-schema", "order.note:update-field", "order.channel:add-field", "order.legacy:delete-field",
        "customer.nickname:update-field", "junk:delete-schema"}
    before = json.dumps(state.store.list_schemas(), sort_keys=True)

    async def attempt(edited: str) -> None:
        saved = Plan.from_json(edited, source="plan.json")  # the digest matches: from_json accepts it
        async with asgi_client(app) as c:
            await apply_plan(saved, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True, saved=True)

    refused: dict[str, str] = {}
    for name, edit in EDITS.items():
        data = copy.deepcopy(original)
        edit(data)
        assert data != original, name
        state.traffic.clear()
        with pytest.raises(StalePlan) as caught:
            asyncio.run(attempt(redigest(data)))
        refused[name] = str(caught.value)
        assert state.traffic.writes() == [], (name, [(e.method, e.path) for e in state.traffic.writes()])
        assert json.dumps(state.store.list_schemas(), sort_keys=True) == before, name
        assert "\n" not in refused[name], name
    # an edit of the changes is a mismatch of the re-plan; the freshness parts keep their own words
    for name in ("label", "field type", "update turned into a delete", "change added", "DL finding dropped",
                 "acknowledged flag", "narrowed_by", "change dropped", "live fingerprint dropped"):
        assert refused[name].startswith("Saved plan does not match what the files and the account give now: "), \
            (name, refused[name])
    assert 'change "order:update-schema"' in refused["label"]
    assert "it holds 8 changes, planning again gives 7" in refused["change added"], refused["change added"]
    assert "the live schemas it lists as read differ" in refused["narrowed_by"]  # order alone is read now
    assert refused["target"].startswith("the plan was made for https://evil.api-us1.com/api/3, not for "
                                        "http://sandbox.local"), refused["target"]
    assert refused["live fingerprint"] == ('Saved plan is stale: schema "order" changed in the account after '
                                           "the plan was made")
    assert refused["desired_digest"].startswith("Saved plan is stale: the schema files changed")

    # the unedited file applies exactly, and converges
    state.traffic.clear()

    async def apply_original() -> tuple[Any, Plan]:
        saved = Plan.from_json(text, source="plan.json")
        async with asgi_client(app) as c:
            result = await apply_plan(saved, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True,
                                      saved=True)
            return result, await plan_against(c, desired_docs(), OPTIONS)

    result, again = asyncio.run(apply_original())
    assert result.ok, [(r.step.label, r.status, r.error) for r in result.results]
    assert not again.has_changes
    assert state.traffic.writes()


def test_a_saved_edit_of_the_label_never_reaches_the_account() -> None:
    """The case from the issue: edit a label, recompute the digest, apply. Before, the edited label
    was written (and verification failed after the write)."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    state = app.state.sandbox
    data = json.loads(asyncio.run(_saved_plan_text(app)))
    edit_label(data)
    saved = Plan.from_json(redigest(data))
    state.traffic.clear()

    async def attempt() -> None:
        async with asgi_client(app) as c:
            await apply_plan(saved, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True, saved=True)

    with pytest.raises(PlanMismatch):
        asyncio.run(attempt())
    assert [e.method for e in state.traffic.log] == ["GET"]  # one read of the account, then the refusal
    assert "Hacked" not in json.dumps(state.store.list_schemas())


def test_saved_plan_with_other_options_is_refused() -> None:
    """The re-plan uses the caller's prune/protect (reconciler.yaml now): a plan made with prune
    but applied without it is not what the files and the account give now."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    saved = Plan.from_json(asyncio.run(_saved_plan_text(app)))
    app.state.sandbox.traffic.clear()

    async def attempt() -> None:
        async with asgi_client(app) as c:
            no_prune = PlanOptions(prune=False, target_url=TARGET)
            await apply_plan(saved, c, desired=desired_docs(), options=no_prune, allow_data_loss=True, saved=True)

    with pytest.raises(PlanMismatch, match=r'change "junk:delete-schema" differs|planning again gives'):
        asyncio.run(attempt())
    assert app.state.sandbox.traffic.writes() == []


def test_plan_without_a_target_is_refused_as_saved() -> None:
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))

    async def seed() -> Plan:
        async with asgi_client(app) as c:
            for s in live_docs():
                await c.create_schema(s)
            return make_plan(desired_docs(), await live_of(c), PlanOptions(prune=True))

    untargeted = asyncio.run(seed())
    app.state.sandbox.traffic.clear()

    async def attempt() -> None:
        async with asgi_client(app) as c:
            await apply_plan(untargeted, c, desired=desired_docs(), options=PlanOptions(prune=True),
                             allow_data_loss=True, saved=True)

    with pytest.raises(PlanMismatch, match="the plan was made for no named target"):
        asyncio.run(attempt())
    assert app.state.sandbox.traffic.log == []  # refused before any request


def test_a_drift_report_is_not_a_plan_file() -> None:
    """Issue 10 item 12: a drift report handed to apply says what it is."""
    live = {s.slug: s for s in live_docs()}
    report = compute_drift(desired_docs(), live, OPTIONS, checked_at="2026-06-01T12:00:00Z")
    with pytest.raises(NotAPlanFile) as caught:
        Plan.from_json(render_drift(report, "json"), source="drift.json")
    assert str(caught.value) == ("drift.json is a drift report, not a plan file (make a plan with reconciler "
                                 "plan --out)")
    with pytest.raises(PlanFileError, match=r"^other\.json is not a plan file: it has no format_version"):
        Plan.from_json('{"schemas": []}', source="other.json")

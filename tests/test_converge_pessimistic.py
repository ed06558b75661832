"""Issue 12 acceptance 2 (library level): the seed schema, then every change kind, then a re-plan that is
empty, against the sandbox over real HTTP under both profiles; under ``pessimistic``, 20 seeds of the
shuffled list order, with no duplicate option and no schema skipped.

Each step plans from the account, applies with ``allow_data_loss``, and plans again: nothing left.
The account holds 120 other schemas, so every schema list takes two pages (a shuffled order, or a
skipped page, would show). ``required`` is handled the way the CLI does: a detection by an apply is
recorded with :func:`reconciler.quirks.record_required_ignored`, and every plan's options come from
:func:`reconciler.quirks.required_options`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.applier import apply_plan
from reconciler.client import Client
from reconciler.files import load_file
from reconciler.model import Field, Labels, Option, Relationship, Schema
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.quirks import record_required_ignored, required_options
from reconciler.render import render
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import RunningSandbox, running_sandbox

TOKEN = "tok-converge-3b8e51d0"
SEED = load_file(Path(__file__).resolve().parent.parent / "schemas" / "orders.yaml")
FILLERS = 110
RETURNS = "order-returns"


def settings(profile: str, seed: int, **overrides: Any) -> SandboxSettings:
    base: dict[str, Any] = {"token": TOKEN, "rate_limit": 0, "list_seed": seed, "seed_unknown_type_schema": False}
    return SandboxSettings.from_profile(profile, **{**base, **overrides})


def add_fillers(sb: RunningSandbox, n: int = FILLERS) -> None:
    """Schemas nobody manages, written straight into the store (one per second of creation time)."""
    for i in range(n):
        ts = f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000000000Z"
        sb.store.put_schema({
            "id": str(uuid.uuid4()), "slug": f"filler-{i:03d}", "visibility": "private", "customized": False,
            "labels": {"singular": f"Filler {i}", "plural": f"Fillers {i}"}, "createdTimestamp": ts,
            "updatedTimestamp": ts, "fields": [], "relationships": [],
        })


def _with_fields(schema: Schema, fields: list[Field], **update: Any) -> Schema:
    return schema.model_copy(update={"fields": tuple(fields), **update})


def _replace_field(schema: Schema, field_id: str, **update: Any) -> Schema:
    return _with_fields(schema, [f.model_copy(update=update) if f.id == field_id else f for f in schema.fields])


def change_kinds(seed: Schema) -> list[tuple[str, dict[str, Schema], dict[str, Any]]]:
    """``(name, desired schemas, plan option overrides)`` for each step after the seed."""
    dropdown = next(f for f in seed.fields if f.type.has_options)
    plain = next(f for f in seed.fields if not f.type.has_options and not f.required)
    required = next(f for f in seed.fields if f.required)
    tracking = Field(id="order-tracking-link", type="text",
                     labels=Labels(singular="Tracking Link", plural="Tracking Links"))
    returns = Schema(slug=RETURNS, labels=Labels(singular="Order Return", plural="Order Returns"),
                     fields=(Field(id="reason", type="text", labels=Labels(singular="Reason", plural="Reasons")),),
                     relationships=(Relationship(id="primary-contact", namespace="contacts",
                                                 labels=Labels(singular="Contact", plural="Contacts")),))
    steps: list[tuple[str, dict[str, Schema], dict[str, Any]]] = []
    s = _with_fields(seed, [*seed.fields, tracking])
    steps.append(("add field", {s.slug: s}, {}))
    s = s.model_copy(update={"labels": Labels(singular="Web Order", plural="Web Orders")})
    s = _replace_field(s, plain.id, labels=Labels(singular=f"{plain.labels.singular} (new)",
                                                   plural=f"{plain.labels.plural} (new)"))
    steps.append(("labels", {s.slug: s}, {}))
    s = s.model_copy(update={"description": "Orders placed in the web shop, one record each"})
    s = _replace_field(s, tracking.id, description="The carrier's tracking page")
    steps.append(("description", {s.slug: s}, {}))
    s = _replace_field(s, dropdown.id, options=(*(dropdown.options or ()), Option(value="Delivered"),
                                                 Option(value="Returned")))
    steps.append(("options added", {s.slug: s}, {}))
    s = _replace_field(_replace_field(s, plain.id, required=True), required.id, required=False)
    steps.append(("required both ways", {s.slug: s}, {}))
    s = _with_fields(s, [f for f in s.fields if f.id != tracking.id])
    steps.append(("field delete", {s.slug: s}, {}))
    steps.append(("schema create", {s.slug: s, RETURNS: returns}, {}))
    steps.append(("schema delete with prune", {s.slug: s}, {"prune": True, "targets": (s.slug, RETURNS)}))
    s = s.model_copy(update={"relationships": (*s.relationships, Relationship(
        id="account", namespace="accounts", labels=Labels(singular="Account", plural="Accounts")))})
    steps.append(("relationship add", {s.slug: s}, {}))
    return steps


def raw_schemas(sb: RunningSandbox) -> list[dict[str, Any]]:
    """Every schema as the store holds it (by id, not through a list that may lag)."""
    return [d for d in sb.store.list_schemas()]


def duplicate_options(sb: RunningSandbox) -> list[str]:
    out = []
    for doc in raw_schemas(sb):
        for f in doc.get("fields") or ():
            values = [o["value"] for o in f.get("options") or ()]
            if len(values) != len(set(values)):
                out.append(f"{doc['slug']}.{f['id']}: {values}")
    return out


class Run:
    """One project folder against one sandbox: plans and applies as the CLI would."""

    def __init__(self, sb: RunningSandbox, root: Path, lag: float):
        self.sb, self.root, self.lag = sb, root, lag
        self.detected: tuple[str, ...] = ()

    def options(self, **overrides: Any) -> PlanOptions:
        return PlanOptions(target_url=self.sb.url, **required_options(self.sb.url, self.root), **overrides)

    async def plan(self, client: Client, desired: dict[str, Schema], **overrides: Any) -> Any:
        live = {s.slug: s for s in await client.list_schemas()}
        return make_plan(desired, live, self.options(**overrides))

    async def step(self, client: Client, name: str, desired: dict[str, Schema], **overrides: Any) -> Any:
        planned = await self.plan(client, desired, **overrides)
        assert not planned.has_errors, f"{name}: {render(planned)}"
        result = await apply_plan(planned, client, desired=desired, options=self.options(**overrides),
                                  allow_data_loss=True)
        assert result.ok, f"{name}: {[(r.status, r.error) for r in result.results]} {result.verify_error}"
        if result.required_ignored:
            record_required_ignored(self.sb.url, self.root)
            self.detected += result.required_ignored
        time.sleep(self.lag)  # lists lag writes (schema_list_lag_s): plan again once they caught up
        again = await self.plan(client, desired, **overrides)
        assert not again.has_changes and not again.has_errors, f"after {name}:\n{render(again)}"
        return planned


def converge(sb: RunningSandbox, root: Path, lag: float) -> tuple[Run, list[Any]]:
    run = Run(sb, root, lag)

    async def go() -> list[Any]:
        async with Client(sb.url, TOKEN, rate=None) as client:
            plans = [await run.step(client, "seed", {SEED.slug: SEED})]
            for name, desired, overrides in change_kinds(SEED):
                plans.append(await run.step(client, name, desired, **overrides))
            final = await run.plan(client, change_kinds(SEED)[-1][1])
            assert not final.has_changes and not final.has_errors, render(final)
            listed = await client.list_schemas()
            assert sorted(s.id for s in listed) == sorted(d["id"] for d in raw_schemas(sb))  # none skipped
            return plans

    return run, asyncio.run(go())


@pytest.mark.parametrize("seed", range(20))
def test_pessimistic_converges_with_shuffled_lists(seed: int, tmp_path: Path) -> None:
    lag = 0.02  # shorter than the profile's 0.5 s, so 20 seeds stay quick; the next test runs 0.5 s
    with running_sandbox(settings("pessimistic", seed, schema_list_lag_s=lag, list_visibility_delay_s=0)) as sb:
        add_fillers(sb)
        run, plans = converge(sb, tmp_path, lag + 0.01)
        assert duplicate_options(sb) == []
        # the account ignores required: detected by the seed's create, then never planned again
        assert run.detected and all(d.startswith(f"{SEED.slug}.") for d in run.detected)
        assert {f.id for f in SEED.fields if f.required} == {d.split(".", 1)[1] for d in run.detected}
        (step,) = [p for (name, _, _), p in zip(change_kinds(SEED), plans[1:], strict=True)
                   if name == "required both ways"]
        assert not step.has_changes and [n.kind for n in step.notes if n.kind == "required"] == ["required"]
        # every list was asked for in a stable order
        gets = [e for e in sb.traffic.log if e.method == "GET" and e.path.endswith("/customObjects/schemas")]
        assert gets and all("orders%5BcreatedTimestamp%5D=ASC" in e.query for e in gets)


@pytest.mark.parametrize("profile", ["documented", "pessimistic"])
def test_both_profiles_converge_with_their_own_lag(profile: str, tmp_path: Path) -> None:
    st = settings(profile, 7)
    with running_sandbox(st) as sb:
        add_fillers(sb)
        run, plans = converge(sb, tmp_path, st.schema_list_lag_s + 0.05)
        assert duplicate_options(sb) == []
    names = ["seed"] + [name for name, _, _ in change_kinds(SEED)]
    required_step = plans[names.index("required both ways")]
    if profile == "documented":
        assert run.detected == ()
        assert sorted(c.subject_id or "" for c in required_step.changes) == sorted(
            [next(f.id for f in SEED.fields if not f.type.has_options and not f.required),
             next(f.id for f in SEED.fields if f.required)])
    else:
        assert run.detected and not required_step.has_changes


def test_updates_send_live_options_with_their_ids(tmp_path: Path) -> None:
    """Under options_match="id" an option sent without its id would be a new one: every update sends
    the stored options with the server's ids and only the added ones as values."""
    with running_sandbox(settings("pessimistic", 1, schema_list_lag_s=0)) as sb:
        run = Run(sb, tmp_path, 0)
        dropdown = next(f for f in SEED.fields if f.type.has_options)

        async def go() -> None:
            async with Client(sb.url, TOKEN, rate=None) as client:
                await run.step(client, "seed", {SEED.slug: SEED})
                s = _replace_field(SEED, dropdown.id, options=(*(dropdown.options or ()), Option(value="Lost")))
                await run.step(client, "options", {s.slug: s})

        asyncio.run(go())
        (doc,) = raw_schemas(sb)
        stored = {o["value"]: o["id"] for f in doc["fields"] if f["id"] == dropdown.id for o in f["options"]}
        assert [e for e in sb.traffic.log if e.method == "PUT"]
        assert duplicate_options(sb) == []
    assert list(stored) == [*dropdown.option_values, "Lost"]


def test_the_store_matches_what_a_fresh_read_shows(tmp_path: Path) -> None:
    """A check of the check: raw_schemas is the store, and a list read after the lag shows the same."""
    with running_sandbox(settings("pessimistic", 2, schema_list_lag_s=0)) as sb:
        add_fillers(sb, 5)
        r = httpx.get(f"{sb.url}/api/3/customObjects/schemas", params={"limit": 100, "orders[createdTimestamp]": "ASC"},
                      headers={"Api-Token": TOKEN}, timeout=10)
        assert sorted(s["id"] for s in r.json()["schemas"]) == sorted(d["id"] for d in raw_schemas(sb))

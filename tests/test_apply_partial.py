"""Partial failure, Ctrl-C, and the details of the steps: what apply does when a later write fails
after earlier ones succeeded, when it is interrupted, and how it orders and builds its writes."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

import httpx
import pytest

import reconciler.impact
from reconciler.applier import (
    ApplyResult,
    PreflightFailed,
    StepResult,
    apply_plan,
    build_stages,
)
from reconciler.client import Client
from reconciler.model import Schema
from reconciler.plan import AddField, Plan, UpdateField
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.sandbox import SandboxSettings, create_app
from reconciler.stages import _update_body
from tests.conftest import TOKEN, Cli
from tests.support.apply import (
    NoSleep,
    StoreSpy,
    apply_desired,
    asgi_client,
    field,
    live_of,
    plan_against,
    schema,
)

OPTIONS = PlanOptions(prune=True)


def live_docs() -> list[Schema]:
    return [
        schema("order", [field("a"), field("b"), field("c"), field("d"), field("e")]),
        schema("junk", [field("x")]),
    ]


def desired_docs() -> dict[str, Schema]:
    """order: relabelled, a field added, b-e deleted; junk pruned."""
    return {"order": schema("order", [field("a"), field("new-one")], label="Purchase")}


def statuses(result: ApplyResult) -> list[tuple[str, str]]:
    return [(r.step.label, r.status) for r in result.results]


async def seeded(app: Any) -> dict[str, Schema]:
    async with asgi_client(app) as c:
        for s in live_docs():
            await c.create_schema(s)
        return await live_of(c)


def active_fields(app: Any, slug: str) -> list[str]:
    (doc,) = [d for d in app.state.sandbox.store.list_schemas() if d["slug"] == slug]
    return [f["id"] for f in doc["fields"] if f.get("status") != "marked_for_deletion"]


def slugs(app: Any) -> list[str]:
    return sorted(d["slug"] for d in app.state.sandbox.store.list_schemas())


# ---------------------------------------------------------------------------------------------
# A later step fails after earlier ones succeeded


def test_field_deleted_behind_our_back_fails_its_step_and_stops_the_rest() -> None:
    """A user deletes field b in the UI after our first write to the schema: the next write to it
    sees the schema changed (its fingerprint is not the one our write returned) and stops the run."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    store = app.state.sandbox.store
    spy = StoreSpy(store)

    def user_deletes_b(r: StepResult) -> None:
        if r.status == "done" and r.step.method == "update":
            (doc,) = [d for d in store.list_schemas() if d["slug"] == "order"]
            for f in doc["fields"]:
                if f["id"] == "b":
                    f["status"] = "marked_for_deletion"
            doc["updatedTimestamp"] = "2030-01-01T00:00:00.000000000Z"
            store.put_schema(doc)

    async def scenario() -> tuple[ApplyResult, list[StepResult], Any]:
        live = await seeded(app)
        async with asgi_client(app) as c:
            the_plan = make_plan(desired_docs(), live, OPTIONS)
            spy.clear()
            seen: list[StepResult] = []
            result = await apply_plan(the_plan, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True,
                                      on_step=lambda r: (seen.append(r), user_deletes_b(r)), concurrency=1)
            return result, seen, the_plan

    result, seen, _plan = asyncio.run(scenario())
    assert statuses(result) == [
        ("update schema order (labels.singular, labels.plural); add field order.new-one", "done"),
        ("delete field order.b", "failed"),
        ("delete field order.c", "not started"),
        ("delete field order.d", "not started"),
        ("delete field order.e", "not started"),
        ("delete schema junk", "not started"),
    ]
    (failed,) = result.failed
    assert failed.race and result.raced == [failed]
    assert failed.error == ('schema "order" changed in the account while applying (another apply or a user?); '
                            "nothing more was written to it")
    assert [r.status for r in seen] == ["done", "failed"]  # progress: only what ran
    assert not result.ok and not result.verified and not result.interrupted
    assert result.counts() == (1, 1, 0)  # the done step: one field added, one schema changed
    # what ran is in the account (b: the user's delete), nothing was written after the change
    assert active_fields(app, "order") == ["a", "c", "d", "e", "new-one"]
    assert slugs(app) == ["junk", "order"]
    assert [e for e in spy.events if e[0] != "create"] == [("delete-field", "order", "b")]  # the user's

    async def again() -> tuple[ApplyResult, Plan]:
        async with asgi_client(app) as c:
            _plan, result = await apply_desired(c, desired_docs(), OPTIONS)
            return result, await plan_against(c, desired_docs(), OPTIONS)

    result2, after = asyncio.run(again())
    assert result2.ok, statuses(result2)
    assert not after.has_changes
    assert slugs(app) == ["order"] and active_fields(app, "order") == ["a", "new-one"]


def test_faults_switched_on_mid_run() -> None:
    """The account starts failing after the first write: the rest fails or does not start, with the
    API's error; once it is healthy again, apply converges."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    state = app.state.sandbox

    def break_after_first(r: StepResult) -> None:
        if r.status == "done":
            state.set_faults("503=1.0", 1)

    async def scenario() -> ApplyResult:
        await seeded(app)
        async with asgi_client(app, max_retries=2) as c:
            _plan, result = await apply_desired(c, desired_docs(), OPTIONS, on_step=break_after_first)
            return result

    result = asyncio.run(scenario())
    assert [r.status for r in result.results][:2] == ["done", "failed"]
    assert {r.status for r in result.results[2:]} <= {"failed", "not started"}
    assert result.results[-1].status == "not started"  # the schema delete: a later stage
    for r in result.failed:
        assert r.error is not None and "503" in r.error and "after 3 attempts" in r.error, r.error
    state.set_faults(None)

    async def again() -> Plan:
        async with asgi_client(app) as c:
            _plan, result = await apply_desired(c, desired_docs(), OPTIONS)
            assert result.ok, statuses(result)
            return await plan_against(c, desired_docs(), OPTIONS)

    assert not asyncio.run(again()).has_changes


def test_partial_failure_through_the_cli(cli: Cli, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 1; the report says what was done, what failed (here: the schema changed in the account
    after the plan, so nothing was written to it) and what did not start; `apply` again converges."""
    cli.write("order.yaml", _yaml("order", ["a", "b", "c"]))
    cli.write("junk.yaml", _yaml("junk", ["x"]))
    assert cli("apply", "--auto-approve").code == 0
    (cli.workdir / "reconciler.yaml").write_text("prune: true\n")
    (cli.schemas / "junk.yaml").unlink()
    cli.write("order.yaml", _yaml("order", ["a", "d"], label="Purchase"))
    cli.write("extra.yaml", _yaml("extra", ["y"]))

    def meddle() -> None:
        """Runs right after the CLI planned: field b is deleted in the account meanwhile."""
        headers = {"Api-Token": TOKEN}
        base = f"{sandbox.url}/api/3/customObjects/schemas"
        listed = httpx.get(base, headers=headers).json()["schemas"]
        order = next(s for s in listed if s["slug"] == "order")
        httpx.delete(f"{base}/{order['id']}/fields/b", headers=headers).raise_for_status()

    real_skip = reconciler.impact.not_counted

    def skip_then_meddle(the_plan: Plan, why: str) -> Plan:
        """apply --auto-approve --allow-data-loss does not count records: its plan ends here."""
        skipped = real_skip(the_plan, why)
        meddle()
        return skipped

    monkeypatch.setattr(reconciler.impact, "not_counted", skip_then_meddle)
    r = cli("apply", "--auto-approve", "--allow-data-loss")
    assert r.code == 1, r.out + r.err
    assert "Apply stopped:" in r.out
    assert "  done        extra: create schema extra" in r.out
    failed = [line for line in r.out.splitlines() if line.startswith("  failed ")]
    assert failed and all("order: " in line and 'schema "order" changed in the account while applying' in line
                          for line in failed), r.out
    assert "  not started order: delete field order.b" in r.out
    assert "  not started junk: delete schema junk" in r.out
    assert "Apply complete!" not in r.out
    assert "`apply` again converges." in r.out

    monkeypatch.setattr(reconciler.impact, "not_counted", real_skip)
    r = cli("apply", "--auto-approve", "--allow-data-loss")
    assert r.code == 0, r.out + r.err
    assert "Apply complete!" in r.out
    assert cli("plan", "--detailed-exitcode").code == 0


def _yaml(slug: str, fields: list[str], label: str | None = None) -> str:
    label = label or slug.title()
    lines = ["apiVersion: reconciler/v1", "kind: CustomObjectSchema", f"slug: {slug}", f"labels: {{singular: {label}, plural: {label}s}}", "fields:"]
    for f in fields:
        lines += [f"  - id: {f}", "    type: text", f"    labels: {{singular: F {f}, plural: F {f}s}}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Ctrl-C


def test_stop_lets_in_flight_steps_finish_and_starts_no_new_ones() -> None:
    """The CLI's SIGINT handler sets ``stop``: the steps in flight finish, no new one starts."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    state = app.state.sandbox
    spy = StoreSpy(state.store)

    async def scenario() -> ApplyResult:
        live = await seeded(app)
        async with asgi_client(app) as c:
            the_plan = make_plan(desired_docs(), live, OPTIONS)
            stop = asyncio.Event()
            state.traffic.clear()
            spy.clear()
            state.set_faults("latency=100ms")

            async def press_ctrl_c_when_two_deletes_are_in_flight() -> None:
                while sum(e.method == "DELETE" for e in state.traffic.log) < 2:
                    await asyncio.sleep(0.001)
                stop.set()

            watcher = asyncio.create_task(press_ctrl_c_when_two_deletes_are_in_flight())
            result = await apply_plan(the_plan, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True,
                                      stop=stop, concurrency=2)
            watcher.cancel()
            state.set_faults(None)
            return result

    result = asyncio.run(scenario())
    assert statuses(result) == [
        ("update schema order (labels.singular, labels.plural); add field order.new-one", "done"),
        ("delete field order.b", "done"),  # in flight when stop was set: finished
        ("delete field order.c", "done"),
        ("delete field order.d", "not started"),
        ("delete field order.e", "not started"),
        ("delete schema junk", "not started"),
    ]
    assert result.interrupted and not result.failed and not result.ok
    assert sorted(e for e in spy.events) == [("delete-field", "order", "b"), ("delete-field", "order", "c")]
    assert active_fields(app, "order") == ["a", "d", "e", "new-one"]

    async def again() -> ApplyResult:
        async with asgi_client(app) as c:
            return (await apply_desired(c, desired_docs(), OPTIONS))[1]

    assert asyncio.run(again()).ok


def test_ctrl_c_through_the_cli(cli: Cli, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGINT while the deletes are in flight: exit 1, "(interrupted)", then apply converges.

    12 field deletes of one schema: they run one after the other (each checks what the last left),
    so the one in flight finishes and the other 11 do not start."""
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        pytest.skip("signal handlers need the main thread")
    sb = sandbox
    kwdefaults = Client.__init__.__kwdefaults__
    assert kwdefaults is not None
    monkeypatch.setitem(kwdefaults, "rate", None)  # the sandbox's limiter is off: no need to pace
    cli.write("order.yaml", _yaml("order", ["a", *(f"f{i}" for i in range(12))]))
    assert cli("apply", "--auto-approve").code == 0
    cli.write("order.yaml", _yaml("order", ["a"]))
    sb.state.set_faults("latency=300ms")
    sb.traffic.clear()

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(e.method == "DELETE" for e in sb.traffic.log):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.005)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    r = cli("apply", "--auto-approve", "--allow-data-loss")
    presser.join()
    sb.state.set_faults(None)
    assert r.code == 1, r.out + r.err
    assert "Apply stopped (interrupted):" in r.out
    lines = r.out.splitlines()
    assert sum(line.startswith("  done        order: delete field order.f") for line in lines) == 1, r.out
    assert sum(line.startswith("  not started order: delete field order.f") for line in lines) == 11, r.out
    r = cli("apply", "--auto-approve", "--allow-data-loss")
    assert r.code == 0, r.out + r.err
    assert cli("plan", "--detailed-exitcode").code == 0


# ---------------------------------------------------------------------------------------------
# Lost DELETEs: a 404 on the retry is the first attempt's success


def test_lost_deletes_count_as_done_when_the_retry_finds_them_gone() -> None:
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    state = app.state.sandbox

    class HealOnRetry(NoSleep):
        async def __call__(self, delay: float) -> None:
            await super().__call__(delay)
            state.set_faults(None)  # the first attempt's answer was lost; the retry gets through

    def lose_next(r: StepResult) -> None:
        state.set_faults("lost=1.0")

    desired = {"order": schema("order", [field("a"), field("c"), field("d"), field("e")])}

    async def scenario() -> ApplyResult:
        live = await seeded(app)
        the_plan = make_plan(desired, live, OPTIONS)
        assert sorted(c.kind for c in the_plan.changes) == ["delete-field", "delete-schema"]
        state.traffic.clear()
        state.set_faults("lost=1.0")
        async with asgi_client(app, sleep=HealOnRetry()) as c:
            return await apply_plan(the_plan, c, desired=desired, options=OPTIONS, allow_data_loss=True,
                                    on_step=lose_next)

    result = asyncio.run(scenario())
    assert result.ok, statuses(result)
    deletes = [(e.path.rsplit("/", 2)[-1], e.status, e.fault) for e in state.traffic.log if e.method == "DELETE"]
    assert [(status, fault) for _, status, fault in deletes] == [(None, "lost"), (404, None)] * 2
    assert slugs(app) == ["order"] and active_fields(app, "order") == ["a", "c", "d", "e"]


# ---------------------------------------------------------------------------------------------
# How the writes are built and ordered


def _plan(desired: list[Schema], live: list[Schema]) -> Plan:
    live_ids = [s.model_copy(update={"id": f"id-{s.slug}"}) for s in live]
    return make_plan({s.slug: s for s in desired}, {s.slug: s for s in live_ids}, OPTIONS)


def _rel(rid: str, ns: str) -> dict[str, Any]:
    return {"id": rid, "namespace": ns, "labels": {"singular": rid.title(), "plural": f"{rid.title()}s"}}


def test_update_body_when_only_options_were_added() -> None:
    live = schema("s", [field("size", "dropdown", options=[{"value": "m", "id": "u1"}, {"value": "s", "id": "u2"}])])
    # the file lists the options in another order (ignored by the planner: the API cannot reorder)
    want = schema("s", [field("size", "dropdown", options=[{"value": "s"}, {"value": "xl"}, {"value": "m"}])])
    (change,) = _plan([want], [live]).changes
    assert isinstance(change, UpdateField) and change.changed == ("options",)
    body = _update_body([change])
    # the live options in the live order with their ids, then the new one: append-only, nothing reordered
    assert body == {"fields": [{"id": "size", "labels": {"singular": "Size", "plural": "Sizes"}, "type": "dropdown",
                                "required": False,
                                "options": [{"id": "u1", "value": "m"}, {"id": "u2", "value": "s"}, {"value": "xl"}]}]}


def test_update_body_clears_descriptions() -> None:
    live = schema("s", [field("a", description="old")], description="old")
    want = schema("s", [field("a")])
    body = _update_body(_plan([want], [live]).changes)
    assert body["description"] == ""
    assert body["fields"][0]["description"] == ""
    assert "labels" not in body and "slug" not in body


def test_options_only_update_end_to_end_keeps_the_live_order() -> None:
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    live = schema("s", [field("size", "dropdown", options=[{"value": "m"}, {"value": "s"}])])
    want = {"s": schema("s", [field("size", "dropdown", options=[{"value": "s"}, {"value": "xl"}, {"value": "m"}])])}

    async def scenario() -> list[str]:
        async with asgi_client(app) as c:
            await c.create_schema(live)
            _plan, result = await apply_desired(c, want, OPTIONS)
            assert result.ok, statuses(result)
            (s,) = await c.list_schemas()
            (f,) = s.fields
            return list(f.option_values)

    assert asyncio.run(scenario()) == ["m", "s", "xl"]


def test_creates_run_in_relationship_order_and_cycles_are_closed_by_a_put() -> None:
    a = schema("a", [field("x")], relationships=[_rel("to-b", "b")])
    b = schema("b", [field("x")], relationships=[_rel("to-c", "c"), _rel("to-a", "a")])
    c = schema("c", [field("x")], relationships=[_rel("me", "c")])  # itself: fine in one POST
    d = schema("d", [field("x")])
    stages = build_stages(_plan([a, b, c, d], []))
    assert [[(s.method, s.slug) for s in stage] for stage in stages] == [
        [("create", "c"), ("create", "d")],
        [("create", "b")],
        [("create", "a")],
        [("update", "b")],  # b -> a closes the cycle a -> b -> a: added once both exist
    ]
    created_b = stages[1][0].after
    assert created_b is not None and [r.id for r in created_b.relationships] == ["to-c"]
    link = stages[3][0]
    assert link.schema_id is None and not link.counted and link.body is not None
    assert [r["id"] for r in link.body["relationships"]] == ["to-a"]

    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    desired = {s.slug: s for s in (a, b, c, d)}

    async def scenario() -> tuple[ApplyResult, Plan]:
        async with asgi_client(app) as cl:
            _plan, result = await apply_desired(cl, desired, OPTIONS)
            return result, await plan_against(cl, desired, OPTIONS)

    result, again = asyncio.run(scenario())
    assert result.ok, statuses(result)
    assert result.counts() == (4, 0, 0)
    assert not again.has_changes


def test_new_relationship_to_a_new_schema_passes_preflight() -> None:
    """An existing schema gains a relationship to a schema created in the same apply: preflight
    cannot check that relationship before the create (the namespace does not exist yet)."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    live = schema("order", [field("a")])
    desired = {"order": schema("order", [field("a"), field("b")], relationships=[_rel("shop", "shop")]),
               "shop": schema("shop", [field("name")])}

    async def scenario() -> ApplyResult:
        async with asgi_client(app) as c:
            await c.create_schema(live)
            _plan, result = await apply_desired(c, desired, OPTIONS, preflight=True)
            return result

    result = asyncio.run(scenario())
    assert result.ok, statuses(result)


def test_preflight_still_rejects_the_rest_of_such_an_update() -> None:
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0, max_fields=2))
    live = schema("order", [field("a")])
    desired = {"order": schema("order", [field("a"), field("b"), field("c")], relationships=[_rel("shop", "shop")]),
               "shop": schema("shop", [field("name")])}

    async def scenario() -> None:
        async with asgi_client(app) as c:
            await c.create_schema(live)
            the_plan = await plan_against(c, desired, OPTIONS)
            with pytest.raises(PreflightFailed, match="at most 2 fields"):
                await apply_plan(the_plan, c, desired=desired, options=OPTIONS, preflight=True)

    asyncio.run(scenario())
    assert slugs(app) == ["order"]  # nothing written: not even the create


def test_without_preflight_a_rejected_update_stops_the_run_at_once() -> None:
    """The default: the update the API rejects is a failed step with the API's answer; what ran
    before it (the create) stays written, nothing after it starts, and no validateOnly was sent."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0, max_fields=2))
    live = schema("order", [field("a")])
    desired = {"order": schema("order", [field("a"), field("b"), field("c")]),
               "shop": schema("shop", [field("name")]),
               "zebra": schema("zebra", [field("x"), field("y")])}
    seeded_live = [live, schema("zebra", [field("x")])]

    async def scenario() -> ApplyResult:
        async with asgi_client(app) as c:
            for s in seeded_live:
                await c.create_schema(s)
            the_plan = await plan_against(c, desired, OPTIONS)
            app.state.sandbox.traffic.clear()
            return await apply_plan(the_plan, c, desired=desired, options=OPTIONS, concurrency=1)

    result = asyncio.run(scenario())
    assert statuses(result) == [("create schema shop", "done"),
                                ("add field order.b; add field order.c", "failed"),
                                ("add field zebra.y", "not started")]
    (failed,) = result.failed
    assert failed.error is not None and "at most 2 fields" in failed.error and not failed.race
    assert not result.ok and result.stopped and not result.verified
    assert slugs(app) == ["order", "shop", "zebra"]
    assert active_fields(app, "order") == ["a"] and active_fields(app, "zebra") == ["x"]
    writes = [(e.method, e.path.rsplit("/", 1)[-1] == "schemas") for e in app.state.sandbox.traffic.writes()]
    assert writes == [("POST", True), ("PUT", False)]  # the create, the rejected update: nothing else


def test_field_taking_over_a_deleted_fields_label() -> None:
    """A field renamed by id (same label): the API wants labels unique among live fields, so the old
    one is deleted before the new one is added."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    live = schema("order", [field("old-id", label="Total"), field("keep")])
    desired = {"order": schema("order", [field("new-id", label="Total"), field("keep", label="Kept")])}
    the_plan = _plan(list(desired.values()), [live])
    stages = build_stages(the_plan)
    assert [[s.method for s in stage] for stage in stages] == [["delete-field"], ["update"]]
    (update,) = stages[1]
    assert update.preflight == {"fields": [f for f in (update.body or {})["fields"] if f["id"] == "keep"]}
    assert any(isinstance(c, AddField) for c in update.changes)

    async def scenario() -> ApplyResult:
        async with asgi_client(app) as c:
            await c.create_schema(live)
            _plan, result = await apply_desired(c, desired, OPTIONS, preflight=True)
            return result

    result = asyncio.run(scenario())
    assert result.ok, statuses(result)


def test_unexpected_exceptions_fail_the_step_instead_of_escaping() -> None:
    """A bug or an unexpected answer in one step must not leave the other writes running unwatched."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))

    class Broken(Client):
        async def delete_schema(self, schema_id: str) -> None:
            raise RuntimeError("boom")

    async def scenario() -> ApplyResult:
        await seeded(app)
        client = Broken("http://sandbox.local", TOKEN, rate=None, sleep=NoSleep(),
                        transport=httpx.ASGITransport(app=app))
        async with client as c:
            return (await apply_desired(c, desired_docs(), OPTIONS))[1]

    result = asyncio.run(scenario())
    (failed,) = result.failed
    assert failed.step.method == "delete-schema" and failed.error == "RuntimeError: boom"


def test_cli_progress_and_summary(seed_files: Cli, sandbox: Any) -> None:
    r = seed_files("apply", "--auto-approve")
    assert r.code == 0, r.out + r.err
    assert "online-order: + create schema online-order … done" in r.out
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in r.out



def test_relationships_to_a_renamed_schema_wait_for_the_rename() -> None:
    """A new schema and an existing one both point at the NEW slug of a renamed schema: the rename
    runs first, the relationships after it (and preflight leaves them out)."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    live = [schema("old-name", [field("a")]), schema("other", [field("a")])]
    desired = {
        "new-name": schema("new-name", [field("a")], renamed_from="old-name"),
        "other": schema("other", [field("a")], relationships=[_rel("to-renamed", "new-name")]),
        "child": schema("child", [field("a")], relationships=[_rel("parent", "new-name")]),
    }

    async def scenario() -> tuple[Plan, ApplyResult, Plan]:
        async with asgi_client(app) as c:
            for s in live:
                await c.create_schema(s)
            the_plan, result = await apply_desired(c, desired, OPTIONS, preflight=True)
            return the_plan, result, await plan_against(c, desired, OPTIONS)

    the_plan, result, again = asyncio.run(scenario())
    assert [[(s.method, s.slug) for s in stage] for stage in build_stages(the_plan)] == [
        [("create", "child")], [("update", "new-name")], [("update", "other")], [("update", "child")]]
    assert result.ok, statuses(result)
    assert result.counts() == (2, 1, 0)  # child created, other's relationship added, the rename
    assert not again.has_changes


def test_chain_of_labels_taken_over() -> None:
    """f1 is deleted, f3 takes f1's label, f4 takes f3's: the preflight leaves both f3 and f4 out
    (found by the property test)."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    live = schema("alpha", [field("f1", label="Name"), field("f3", label="Color"), field("f4", label="Size")])
    desired = {"alpha": schema("alpha", [field("f3", label="Name"), field("f4", label="Color")])}

    async def scenario() -> tuple[ApplyResult, Plan]:
        async with asgi_client(app) as c:
            await c.create_schema(live)
            _plan, result = await apply_desired(c, desired, OPTIONS, preflight=True)
            return result, await plan_against(c, desired, OPTIONS)

    result, again = asyncio.run(scenario())
    assert result.ok, statuses(result)
    assert not again.has_changes


def test_verification_read_failure_still_reports_the_writes() -> None:
    """Every write done, then the account cannot be read back: the result keeps what was done and
    says it is unverified (it does not raise and lose the report)."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    state = app.state.sandbox
    steps: list[StepResult] = []

    def break_after_last(r: StepResult) -> None:
        steps.append(r)
        if len(steps) == len(build_stages(the_plan)[-1]) + sum(len(s) for s in build_stages(the_plan)[:-1]):
            state.set_faults("500=1.0", 1)

    async def scenario() -> ApplyResult:
        nonlocal the_plan
        live = await seeded(app)
        async with asgi_client(app) as c:
            the_plan = make_plan(desired_docs(), live, OPTIONS)
            return await apply_plan(the_plan, c, desired=desired_docs(), options=OPTIONS, allow_data_loss=True,
                                    on_step=break_after_last)

    the_plan: Plan = Plan()  # replaced in scenario()
    result = asyncio.run(scenario())
    assert all(r.status == "done" for r in result.results)
    assert not result.verified and not result.ok
    assert result.verify_error is not None and "500" in result.verify_error
    state.set_faults(None)
    assert slugs(app) == ["order"]

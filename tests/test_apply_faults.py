"""Acceptance 5: apply survives a flaky API (429/503, latency, dropped connections, responses lost
after commit) without ever writing anything twice, and ends with an empty plan.

The library-level runs use an in-process sandbox (``httpx.ASGITransport``, where a dropped or lost
connection surfaces as ``ConnectionDropped``) and a client whose retry ``sleep`` returns at once; one
run goes through the real CLI over HTTP (uvicorn), where the sandbox closes the socket instead.
The sandbox's traffic log is the independent witness of what reached its handlers.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reconciler.applier import ApplyResult
from reconciler.client import Client
from reconciler.model import Schema
from reconciler.plan import Plan
from reconciler.planner import PlanOptions
from reconciler.sandbox import SandboxSettings, create_app
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import TOKEN, Cli
from tests.support.apply import (
    SCHEMAS_PATH,
    NoSleep,
    StoreSpy,
    apply_desired,
    asgi_client,
    field,
    plan_against,
    reached_handler,
    schema,
    slug_counts,
)

#: 30 % 429/503, dropped connections and responses lost after the commit, a little latency.
FAULTS = "429=0.15,503=0.15,drop=0.07,lost=0.08,latency=1ms"


# ---------------------------------------------------------------------------------------------
# Helpers shared by the apply test modules


def assert_nothing_written_twice(log: list[Any], spy: StoreSpy, creates: int) -> None:
    """Every create POST reached the handler once; no create or delete took effect twice; no DELETE
    was answered with success twice."""
    posts = [e for e in log if e.method == "POST" and e.path == SCHEMAS_PATH and reached_handler(e)]
    assert len(posts) == creates, [(e.status, e.fault) for e in posts]
    assert all(e.fault == "lost" or e.status == 201 for e in posts), [(e.status, e.fault) for e in posts]
    deletes = Counter(e.path for e in log if e.method == "DELETE" and e.fault is None
                      and e.status is not None and e.status < 300)
    assert all(n == 1 for n in deletes.values()), deletes
    effects = Counter(e for e in spy.events if e[0] in ("create", "delete-field", "delete-schema"))
    assert all(n == 1 for n in effects.values()), effects
    assert sum(1 for e in spy.events if e[0] == "create") == creates


# ---------------------------------------------------------------------------------------------
# The scenario: every change kind at once


def before_state() -> list[Schema]:
    return [
        schema("order", [
            field("number", "number", scale=0, required=True),
            field("note", "textarea", description="free text"),
            field("status", "dropdown", options=[{"value": "new"}, {"value": "paid"}]),
            field("legacy"),
            field("coupon"),
        ], description="Orders"),
        schema("customer", [field("email", required=True), field("nickname")]),
        schema("old-stuff", [field("thing")]),
        schema("more-old", [field("thing")]),
    ]


def after_state() -> dict[str, Schema]:
    desired = [
        # label + description change, description cleared on a field, option added, required on,
        # a field added, two fields deleted
        schema("order", [
            field("number", "number", scale=0, required=True),
            field("note", "textarea"),
            field("status", "dropdown", options=[{"value": "new"}, {"value": "paid"}, {"value": "refunded"}]),
            field("channel", "text", label="Sales Channel", required=True),
        ], label="Purchase", description="Orders of the web shop"),
        # required off, a field added
        schema("customer", [field("email"), field("nickname"), field("vip", "dropdown", options=[{"value": "yes"}])]),
        # new schemas; "shipment" relates to the new "carrier", so "carrier" must be created first
        schema("shipment", [field("tracking")], relationships=[
            {"id": "carrier", "namespace": "carrier", "labels": {"singular": "Carrier", "plural": "Carriers"}},
            {"id": "order", "namespace": "order", "labels": {"singular": "Order", "plural": "Orders"}},
        ]),
        schema("carrier", [field("name"), field("phone")]),
        schema("warehouse", [field("city", description="where it is")]),
        # old-stuff and more-old are pruned
    ]
    return {s.slug: s for s in desired}


OPTIONS = PlanOptions(prune=True)


async def seed(client: Client, schemas: list[Schema]) -> None:
    for s in schemas:
        await client.create_schema(s)


async def run_faulty_apply(app: Any, fault_seed: int, spy: StoreSpy) -> tuple[Plan, ApplyResult, list[Any]]:
    state = app.state.sandbox
    async with asgi_client(app) as c:
        await seed(c, before_state())
    state.traffic.clear()
    spy.clear()
    state.set_faults(FAULTS, fault_seed)
    async with asgi_client(app, rng=random.Random(fault_seed), max_retries=12) as c:
        the_plan, result = await apply_desired(c, after_state(), OPTIONS)
    log = state.traffic.log
    state.set_faults(None)
    return the_plan, result, log


def check_one_seed(fault_seed: int) -> list[Any]:
    """Apply the scenario with faults from ``fault_seed``; the traffic log of the faulty part."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    spy = StoreSpy(app.state.sandbox.store)
    the_plan, result, log = asyncio.run(run_faulty_apply(app, fault_seed, spy))

    kinds = Counter(c.kind for c in the_plan.changes)
    assert kinds == {"create-schema": 3, "update-schema": 1, "update-field": 3, "add-field": 2,
                     "delete-field": 2, "delete-schema": 2}, kinds
    assert result.ok, [(r.step.label, r.status, r.error) for r in result.results]

    async def check() -> Plan:
        async with asgi_client(app) as c:
            return await plan_against(c, after_state(), OPTIONS)

    again = asyncio.run(check())
    assert not again.has_changes and not again.has_errors, again.changes
    assert slug_counts(app) == {"order": 1, "customer": 1, "shipment": 1, "carrier": 1, "warehouse": 1}
    assert_nothing_written_twice(log, spy, creates=3)
    assert sorted(e for e in spy.events if e[0] != "create") == [
        ("delete-field", "order", "coupon"), ("delete-field", "order", "legacy"),
        ("delete-schema", "more-old"), ("delete-schema", "old-stuff")]
    return log


def test_apply_under_faults_converges_and_writes_once() -> None:
    """20 seeds; together they inject every kind of fault, on reads and on every kind of write."""
    seen: Counter[tuple[str, str]] = Counter()
    for fault_seed in range(20):
        try:
            log = check_one_seed(fault_seed)
        except AssertionError as exc:
            raise AssertionError(f"fault seed {fault_seed}: {exc}") from exc
        seen.update((e.method, e.fault) for e in log if e.fault is not None)
    for method in ("GET", "POST", "PUT", "DELETE"):
        for kind in ("429", "503", "drop"):
            assert seen[(method, kind)] > 0, (method, kind, seen)
    for method in ("POST", "PUT", "DELETE"):
        assert seen[(method, "lost")] > 0, (method, seen)


def test_apply_under_faults_through_the_cli_over_http(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The real CLI against uvicorn: faults on for the plan, the writes and the verification."""
    # the CLI's client sleeps for real between retries; Retry-After: 1 on every 429 would make this slow
    kwdefaults = Client.__init__.__kwdefaults__
    assert kwdefaults is not None and "sleep" in kwdefaults
    monkeypatch.setitem(kwdefaults, "sleep", NoSleep())
    # 8 retries (the default) lose one request in ~10^4 to 37 % of faults; this test must not flake
    monkeypatch.setitem(kwdefaults, "max_retries", 12)
    root = Path(__file__).resolve().parent.parent
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        spy = StoreSpy(sb.store)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("AC_API_URL", sb.url)
        monkeypatch.setenv("AC_API_TOKEN", TOKEN)
        (tmp_path / "schemas").mkdir()
        shutil.copy(root / "schemas" / "orders.yaml", tmp_path / "schemas" / "orders.yaml")
        (tmp_path / "schemas" / "gift.yaml").write_text(
            (root / "schemas" / "orders.yaml").read_text().replace("slug: online-order", "slug: gift-card")
            .replace("Online Order", "Gift Card"))
        cli = Cli(tmp_path, capsys, monkeypatch)
        sb.state.set_faults("429=0.15,503=0.15,drop=0.05,lost=0.05,latency=5ms", 7)
        r = cli("apply", "--auto-approve")
        assert r.code == 0, r.out + r.err
        assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in r.out
        log = sb.traffic.log
        sb.state.set_faults(None)
        r = cli("plan", "--detailed-exitcode")
        assert r.code == 0, r.out + r.err
        assert slug_counts(sb.app) == {"online-order": 1, "gift-card": 1}
        assert_nothing_written_twice(log, spy, creates=2)
        assert sum(1 for e in log if e.fault) >= 3, log

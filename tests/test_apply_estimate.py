"""The plan's cost estimate is the apply's own count: :func:`~reconciler.applier.estimate` must give
exactly the number of requests :func:`~reconciler.applier.apply_plan` sends when nothing fails, for
creates, updates, field and schema deletes, with and without ``preflight``, fresh and saved, and
across list pages (every read of the schema list is one request per 100 schemas).

The sandbox's traffic log is the witness. The CLI's line and the plan file's ``estimate`` are
checked through the real command.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.applier import BackupOptions, apply_plan, estimate
from reconciler.model import Schema
from reconciler.plan import Estimate, Plan
from reconciler.planner import PlanOptions
from reconciler.render.words import estimate_line
from reconciler.sandbox import SandboxSettings, create_app
from tests.conftest import TOKEN, Cli
from tests.support.apply import asgi_client, field, plan_against, schema

OPTIONS = PlanOptions(prune=True)


def _scenario(extra_live: int) -> tuple[list[Schema], dict[str, Schema]]:
    """(live, desired): one schema updated (label + field), one losing two fields, one deleted, two
    new schemas where one points at the other, and ``extra_live`` schemas left alone."""
    idle = [schema(f"idle-{i:03d}", [field("a")]) for i in range(extra_live)]
    live = [schema("order", [field("a")]), schema("shop", [field("x"), field("y"), field("z")]),
            schema("junk", [field("j")]), *idle]
    desired = {
        "order": schema("order", [field("a"), field("b")], label="Purchase"),
        "shop": schema("shop", [field("x")]),
        "parcel": schema("parcel", [field("p")]),
        "carrier": schema("carrier", [field("c")], relationships=[
            {"id": "parcel", "namespace": "parcel", "labels": {"singular": "Parcel", "plural": "Parcels"},
             "hasMany": False}]),
        **{s.slug: s for s in idle},
    }
    return live, desired


async def _apply_counted(app: Any, live: list[Schema], desired: dict[str, Schema], *, saved: bool,
                         preflight: bool, backups: Path) -> tuple[Estimate | None, int, Plan]:
    async with asgi_client(app) as c:
        for s in live:
            await c.create_schema(s)
        the_plan = await plan_against(c, desired, OPTIONS)
        if saved:
            the_plan = Plan.from_json(the_plan.stamped(target="http://sandbox.local").to_json())
        cost = estimate(the_plan, account_schemas=len(live), rate=5.0, saved=saved)
        app.state.sandbox.traffic.clear()
        result = await apply_plan(the_plan, c, desired=desired, options=OPTIONS, allow_data_loss=True,
                                  saved=saved, preflight=preflight, backup=BackupOptions(backups))
        assert result.ok and result.verified, [(r.step.label, r.status, r.error) for r in result.results]
        return cost, app.state.sandbox.traffic.total, the_plan


@pytest.mark.parametrize("extra_live", [0, 120], ids=["one-page", "two-pages"])
@pytest.mark.parametrize("saved", [False, True], ids=["fresh", "saved"])
@pytest.mark.parametrize("preflight", [False, True], ids=["plain", "preflight"])
def test_the_estimate_is_what_apply_sends(extra_live: int, saved: bool, preflight: bool, tmp_path: Path) -> None:
    """The backups of the deletes' records included (one list request per file of the empty schemas)."""
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    live, desired = _scenario(extra_live)
    cost, sent, _plan = asyncio.run(_apply_counted(app, live, desired, saved=saved, preflight=preflight,
                                                   backups=tmp_path / "backups"))
    assert cost is not None
    assert sent == cost.requests + (cost.preflight if preflight else 0), (sent, cost)
    # the preflight costs one validateOnly update (order's; shop only loses fields) and one read
    # before each schema's first delete (shop's fields, junk)
    assert cost.preflight == 3


def test_no_estimate_for_nothing_to_do_or_a_refused_plan() -> None:
    app = create_app(SandboxSettings(token=TOKEN, rate_limit=0))
    live = [schema("order", [field("a")])]

    async def plans() -> tuple[Plan, Plan]:
        async with asgi_client(app) as c:
            for s in live:
                await c.create_schema(s)
            same = await plan_against(c, {"order": live[0]}, OPTIONS)
            # a field type change cannot be applied (NA301): the gates refuse whatever the flags
            bad = await plan_against(c, {"order": schema("order", [field("a", "number")])}, OPTIONS)
            return same, bad

    same, bad = asyncio.run(plans())
    assert estimate(same, account_schemas=1, rate=5.0) is None
    assert bad.errors and estimate(bad, account_schemas=1, rate=5.0) is None


def test_seconds_follow_the_pace_and_the_line_says_so() -> None:
    cost = Estimate(requests=301, preflight=200, rate=5.0, pace=4.5)
    assert cost.seconds == pytest.approx(301 / 4.5, abs=0.05)
    line = estimate_line(cost)
    assert line is not None and line.startswith("Apply: about 301 requests, ") and " at 5 req/s." in line
    assert "With --preflight: 200 more" in line
    assert estimate_line(Estimate(requests=3, preflight=0, rate=None, pace=None)) is None  # no limiter: no seconds
    assert Estimate.model_validate_json(cost.model_dump_json()) == cost


def test_the_plan_states_its_cost_through_the_cli(cli: Cli) -> None:
    """A target with a rate (the test sandbox by URL, at --rate 5): the line after the summary is
    the cost, and the saved plan file holds it as ``estimate``. One create in an empty account,
    saved: the re-plan's read, the create, the verification read."""
    cli.write("order.yaml", _yaml())
    r = cli("plan", "--rate", "5", "--out", "plan.json")
    assert r.code == 0, r.out + r.err
    lines = r.out.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("Plan: "))
    assert lines[summary + 1] == "Apply: about 3 requests, 0.6 s at 5 req/s.", r.out
    data = json.loads((cli.workdir / "plan.json").read_text())
    assert data["estimate"]["requests"] == 3 and data["estimate"]["rate"] == 5.0
    assert data["estimate"]["preflight"] == {"requests": 0, "seconds": 0.0}


def _yaml() -> str:
    return ("apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: order\n"
            "labels: {singular: Order, plural: Orders}\n"
            "fields:\n  - {id: a, type: text, labels: {singular: A, plural: As}}\n")

"""Issue 12 "required the account does not honour": detected once by apply, recorded per target in
``.reconciler/quirks.json``, then not planned (a note says why); an explicit setting wins.

Integration tests run the sandbox with ``required_honoured=False`` over real HTTP; the planner and
the cache are also tested alone.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.applier import apply_plan
from reconciler.client import Client
from reconciler.drift import compute_drift
from reconciler.errors import ConfigError
from reconciler.model import Field, Labels, Schema
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.quirks import QUIRKS_FILE, read_quirks, record_required_ignored, required_options
from reconciler.render.words import drift_message
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import RunningSandbox, running_sandbox
from reconciler.writes import WriteRefused

TOKEN = "tok-required-91c0ffee"
URL = "https://acme.api-us1.com"


def field(fid: str, required: bool = False, **kw: Any) -> Field:
    return Field(id=fid, type="text", labels=Labels(singular=fid.title(), plural=f"{fid.title()}s"),
                 required=required, **kw)


def schema(*fields: Field, slug: str = "orders") -> Schema:
    return Schema(slug=slug, labels=Labels(singular="Order", plural="Orders"), fields=fields)


def ignoring() -> SandboxSettings:
    return SandboxSettings(token=TOKEN, rate_limit=0, required_honoured=False)


async def _apply(sb: RunningSandbox, desired: Schema, options: PlanOptions | None = None) -> Any:
    options = options or PlanOptions()
    async with Client(sb.url, TOKEN, rate=None) as c:
        live = {s.slug: s for s in await c.list_schemas()}
        p = make_plan({desired.slug: desired}, live, options)
        result = await apply_plan(p, c, desired={desired.slug: desired}, options=options)
        again = make_plan({desired.slug: desired}, {s.slug: s for s in await c.list_schemas()}, options)
        return p, result, again


# ---------------------------------------------------------------------------------------------
# Detection by apply


def test_a_create_whose_answer_drops_required_is_accepted_and_reported() -> None:
    want = schema(field("number", required=True), field("date", required=True), field("note"))
    with running_sandbox(ignoring()) as sb:
        p, result, again = asyncio.run(_apply(sb, want))
    assert [c.kind for c in p.changes] == ["create-schema"]
    assert result.ok and result.verified
    assert result.required_ignored == ("orders.number", "orders.date")
    assert result.required_line == ("the account ignores required: orders.number, orders.date "
                                    "(managed as not required)")
    # without the record of it, the next plan would want required again (what the CLI must avoid)
    assert [(c.kind, c.changed) for c in again.changes] == [("update-field", ("required",))] * 2


def test_an_update_whose_answer_drops_required_is_no_race_and_is_accepted() -> None:
    with running_sandbox(ignoring()) as sb:
        asyncio.run(_apply(sb, schema(field("number"), field("note"))))
        want = schema(field("number", required=True), field("note", description="free text"))
        p, result, _again = asyncio.run(_apply(sb, want))
    assert sorted(c.subject for c in p.changes) == ["orders.note", "orders.number"]
    assert result.ok, [(r.status, r.error) for r in result.results]
    assert not result.raced
    assert result.required_ignored == ("orders.number",)


def test_an_account_that_honours_required_reports_nothing() -> None:
    want = schema(field("number", required=True))
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        _p, result, again = asyncio.run(_apply(sb, want))
    assert result.ok and result.required_ignored == () and result.required_line is None
    assert not again.has_changes


def test_recorded_then_planned_without_required_and_said_so(tmp_path: Path) -> None:
    want = schema(field("number", required=True), field("note"))
    with running_sandbox(ignoring()) as sb:
        _p, result, _again = asyncio.run(_apply(sb, want))
        assert result.required_ignored
        path = record_required_ignored(sb.url, tmp_path, now=datetime(2026, 5, 21, 11, 14, tzinfo=UTC))
        options = PlanOptions(**required_options(sb.url, tmp_path))
        # both ways: the file now says not required for number, required for note
        flipped = schema(field("number"), field("note", required=True))
        p1, r1, again1 = asyncio.run(_apply(sb, want, options))
        p2, _r2, again2 = asyncio.run(_apply(sb, flipped, options))
    assert path == tmp_path / QUIRKS_FILE
    for p in (p1, again1, again2):
        assert not p.has_changes and not p.has_errors
    assert r1.ok
    (note,) = [n.message for n in p1.notes if n.kind == "required"]
    assert note == ("schema orders: required is not managed in this account (the account ignores it; "
                    "detected 2026-05-21): required of number differs from the files and is left as it is")
    assert not p2.has_changes
    assert [n.message for n in p2.notes if n.kind == "required"] == [
        "schema orders: required is not managed in this account (the account ignores it; detected 2026-05-21): "
        "required of note differs from the files and is left as it is"]


# ---------------------------------------------------------------------------------------------
# The planner's option


def test_the_planner_leaves_required_alone_when_not_managed() -> None:
    live = schema(field("a", required=True), field("b"), field("c")).model_copy(update={"id": "s1"})
    desired = schema(field("a"), field("b", required=True), field("c", description="x"),
                     field("d", required=True))
    managed = make_plan({"orders": desired}, {"orders": live})
    off = make_plan({"orders": desired}, {"orders": live},
                    PlanOptions(required_managed=False, required_reason="set in reconciler.yaml"))
    assert sorted(c.subject for c in managed.changes) == ["orders.a", "orders.b", "orders.c", "orders.d"]
    assert {f.code for c in managed.changes for f in c.findings} == {"BC201"}
    assert [(c.subject, c.changed) for c in off.changes if c.kind == "update-field"] == [("orders.c", ("description",))]
    assert [c.subject for c in off.changes if c.kind == "add-field"] == ["orders.d"]
    assert not any(f.code == "BC201" for c in off.changes for f in c.findings)
    assert [n.message for n in off.notes] == [
        "schema orders: required is not managed in this account (the account ignores it; set in reconciler.yaml): "
        "required of a, b differs from the files and is left as it is"]
    drift = compute_drift({"orders": desired}, {"orders": live},
                          PlanOptions(required_managed=False, required_reason="detected 2026-05-21"))
    assert not any(i.prop == "required" for i in drift.items)
    assert [i.severity for i in drift.items if "required is not managed" in drift_message(i)] == ["info"]


# ---------------------------------------------------------------------------------------------
# The cache and the setting


def test_no_cache_no_setting_manages_required(tmp_path: Path) -> None:
    assert required_options(URL, tmp_path) == {"required_managed": True, "required_reason": None}


def test_a_recorded_detection_turns_required_off_for_that_target_only(tmp_path: Path) -> None:
    record_required_ignored(URL + "/api/3/", tmp_path, now=datetime(2026, 5, 21, 9, 0, tzinfo=UTC))
    assert required_options(URL, tmp_path) == {"required_managed": False, "required_reason": "detected 2026-05-21"}
    assert required_options("https://other.api-us1.com", tmp_path)["required_managed"] is True
    data = json.loads((tmp_path / ".reconciler" / "quirks.json").read_text())
    assert data == {URL: {"required": "ignored", "detected": "2026-05-21T09:00:00+00:00"}}


def test_a_later_detection_keeps_the_first_date_and_the_other_targets(tmp_path: Path) -> None:
    record_required_ignored(URL, tmp_path, now=datetime(2026, 5, 21, tzinfo=UTC))
    record_required_ignored("https://b.api-us1.com", tmp_path, now=datetime(2026, 6, 2, tzinfo=UTC))
    record_required_ignored(URL, tmp_path, now=datetime(2026, 7, 1, tzinfo=UTC))
    quirks = read_quirks(tmp_path)
    assert quirks[URL]["detected"].startswith("2026-05-21")
    assert quirks["https://b.api-us1.com"]["detected"].startswith("2026-06-02")


def test_an_explicit_setting_wins_over_the_cache(tmp_path: Path) -> None:
    record_required_ignored(URL, tmp_path)
    assert required_options(URL, tmp_path, "honoured") == {"required_managed": True, "required_reason": None}
    assert required_options("https://new.api-us1.com", tmp_path, "ignored",
                            setting_source="reconciler.yaml (environments.production.required)") == {
        "required_managed": False, "required_reason": "set in reconciler.yaml (environments.production.required)"}
    with pytest.raises(ConfigError, match=r"^required: 'maybe' is not a valid setting; use one of ignored, honoured$"):
        required_options(URL, tmp_path, "maybe")


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"https://acme.api-us1.com": "ignored"}'])
def test_a_damaged_cache_counts_as_empty_and_is_rewritten(tmp_path: Path, content: str) -> None:
    path = tmp_path / QUIRKS_FILE
    path.parent.mkdir()
    path.write_text(content)
    assert required_options(URL, tmp_path)["required_managed"] is True
    record_required_ignored(URL, tmp_path)
    assert required_options(URL, tmp_path)["required_managed"] is False


def test_the_cache_refuses_a_symlinked_target(tmp_path: Path) -> None:
    (tmp_path / ".reconciler").mkdir()
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    (tmp_path / QUIRKS_FILE).symlink_to(elsewhere)
    with pytest.raises(WriteRefused, match=r"is a symbolic link; not replaced"):
        record_required_ignored(URL, tmp_path)
    assert elsewhere.read_text() == "{}"

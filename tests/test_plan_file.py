"""The JSON plan file: round trip, tamper detection, version check, impacts and digests."""

from __future__ import annotations

import json

import pytest

from reconciler.plan import (
    CODES,
    DeleteField,
    Impact,
    Plan,
    PlanFileError,
    PlanTampered,
    UnknownPlanVersion,
    desired_digest,
    fingerprint,
)
from tests.support.golden import build_case


@pytest.mark.parametrize("name", ["mixed", "protect-environment", "na304-option-renamed", "renamed-from", "target"])
def test_round_trip_is_equal(name: str) -> None:
    p = build_case(name).stamped(created_at="2026-06-01T12:00:00Z", target="https://acme.api-us1.com")
    text = p.to_json()
    again = Plan.from_json(text)
    assert again == p
    assert again.digest == p.digest
    assert again.to_json() == text


def test_hand_edited_file_is_refused() -> None:
    p = build_case("delete-field")
    data = json.loads(p.to_json())
    data["changes"][0]["blocked"] = True
    with pytest.raises(PlanTampered, match="modified after it was written"):
        Plan.from_json(json.dumps(data), source="plan.json")
    # an edit that breaks the structure is still reported as tampering, not as a crash
    data = json.loads(p.to_json())
    del data["changes"][0]["slug"]
    with pytest.raises(PlanTampered):
        Plan.from_json(json.dumps(data))


def test_whitespace_only_reformatting_is_accepted() -> None:
    p = build_case("delete-field")
    compact = json.dumps(json.loads(p.to_json()), separators=(",", ":"))
    assert Plan.from_json(compact) == p


def test_unknown_version_is_refused() -> None:
    data = json.loads(build_case("seed-create").to_json())
    data["format_version"] = 2
    with pytest.raises(UnknownPlanVersion, match="format_version 2"):
        Plan.from_json(json.dumps(data), source="plan.json")


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"format_version": 1}'])
def test_garbage_is_a_plan_file_error(text: str) -> None:
    with pytest.raises(PlanFileError):
        Plan.from_json(text, source="x.json")


def test_plan_file_errors_name_the_file() -> None:
    with pytest.raises(PlanFileError, match=r"^x\.json: "):
        Plan.from_json("nope", source="x.json")


def test_with_impacts_returns_a_new_plan_and_a_new_digest() -> None:
    p = build_case("delete-field-not-counted")
    key = "online-order.order-link:delete-field"
    q = p.with_impacts({key: Impact(3, 10)})
    assert q is not p and q.digest != p.digest
    change = q.change(key)
    assert isinstance(change, DeleteField)
    assert change.findings[0].impact == Impact(3, 10)
    assert p.change(key).findings[0].impact is None  # type: ignore[union-attr]
    assert Plan.from_json(q.to_json()) == q


def test_impact_queries() -> None:
    p = build_case("mixed")
    q = p.change("online-order.order-link:delete-field").impact_query  # type: ignore[union-attr]
    assert q is not None and q.what == "not_blank" and q.schema_id == "6449c3f3-0001-4000-8000-000000000001"
    assert q.filters == {"filters[fields.order-link][not_blank]": "true"}
    d = p.change("legacy-ticket:delete-schema").impact_query  # type: ignore[union-attr]
    assert d is not None and d.what == "records" and d.filters is None
    r = build_case("update-field-required").change("online-order.order-instructions:update-field")
    assert r is not None and r.impact_query is not None and r.impact_query.what == "blank"
    assert r.impact_query.filters == {"filters[fields.order-instructions][blank]": "true"}
    # non-destructive changes have nothing to count
    assert all(c.impact_query is None for c in build_case("update-field-properties").changes)


def test_fingerprints_and_digests() -> None:
    from tests.test_planner import CASES, load_desired, load_live

    live = load_live(CASES / "mixed" / "live.yaml")
    p = build_case("mixed")
    assert p.live_fingerprints == {slug: fingerprint(s) for slug, s in live.items()}
    moved = live["online-order"].model_copy(update={"updated_timestamp": "2030-01-01T00:00:00Z"})
    assert fingerprint(moved) != p.live_fingerprints["online-order"]
    desired = load_desired(CASES / "mixed" / "desired")
    assert p.desired_digest == desired_digest(desired)
    flagged = {k: v.model_copy(update={"protect": True}) for k, v in desired.items()}
    assert desired_digest(flagged) != p.desired_digest  # desired-only flags count


def test_the_token_is_never_in_the_plan() -> None:
    p = build_case("seed-create").stamped(target="https://acme.api-us1.com")
    assert "token" not in p.to_json().lower()


def test_code_registry() -> None:
    assert {c[:2] for c in CODES} == {"DL", "BC", "NA"}
    for code, info in CODES.items():
        assert info.code == code and info.title and info.hint
    assert {"DL101", "DL102", "BC201", "BC202", *(f"NA30{i}" for i in range(1, 10))} <= set(CODES)

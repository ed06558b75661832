"""The pure part of drift: from a plan to account-side items, ignore rules, rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.drift import compute_drift, ignored_by
from reconciler.envs import environment_names, most_severe
from reconciler.errors import ConfigError
from reconciler.files import load_dir
from reconciler.model import Field, FieldType, Labels, Relationship, Schema
from reconciler.plan import Plan, PlanFileError
from reconciler.render import render_drift
from reconciler.render.words import drift_message

ROOT = Path(__file__).resolve().parent.parent
DESIRED = load_dir(ROOT / "schemas").schemas["online-order"]
TS = "2026-05-02T11:30:00.987654321Z"


def as_live(schema: Schema, **changes: object) -> Schema:
    return schema.model_copy(update={"id": "s1", "updated_timestamp": TS, **changes})


@pytest.mark.parametrize(("key", "pattern", "hit"), [
    ("orders.description", "*.description", True),
    ("orders.order-link.description", "*.description", True),
    ("orders.order-link", "orders.order-link.*", True),
    ("orders.order-link.labels.singular", "orders.order-link.*", True),
    ("orders.order-link.labels.singular", "*.labels", True),
    ("orders.order-linked", "orders.order-link", False),
    ("orders.order-link", "orders.order-li", False),
    ("orders", "orders", True),
    ("tickets.x", "orders*", False),
])
def test_ignore_globs(key: str, pattern: str, hit: bool) -> None:
    assert (ignored_by(key, [pattern]) == pattern) is hit


def test_relationship_and_description_drift_worded_neutrally_without_evidence() -> None:
    rel = DESIRED.relationships[0]
    live = as_live(DESIRED, description="Edited in the UI", relationships=(
        rel.model_copy(update={"labels": Labels(singular="Buyer", plural="Buyers")}),
        Relationship(id="deal", namespace="deals", labels=Labels(singular="Deal", plural="Deals")),
    ), fields=(*DESIRED.fields, Field(id="extra", type=FieldType.TEXT, labels=Labels(singular="E", plural="Es"),
                                      required=True)))
    report = compute_drift({"online-order": DESIRED}, {"online-order": live}, ignore=["*.description"])
    by_key = {i.key: i for i in report.items}
    assert by_key["online-order.description"].ignored_by == "*.description"
    assert drift_message(by_key["online-order.primary-contact.labels.singular"]) == (
        'relationship online-order.primary-contact: labels.singular differs: account "Buyer", '
        'files "Primary Contact"')
    assert drift_message(by_key["online-order.deal"]) == (
        "relationship online-order.deal is in the account but not in the files")
    assert all(i.changed_in is None for i in report.items)
    assert by_key["online-order.extra"].symbol == "+"
    assert all(i.updated == TS for i in report.items)
    assert report.summary == {"drift": 4, "ignored": 1, "info": 0}


def test_required_changed_and_field_missing() -> None:
    fields = tuple(f.model_copy(update={"required": False}) if f.id == "order-date" else f
                   for f in DESIRED.fields if f.id != "order-total")
    report = compute_drift({"online-order": DESIRED}, {"online-order": as_live(DESIRED, fields=fields)})
    text = render_drift(report, "text")
    assert "~ field online-order.order-date: required differs: account false, files true" in text
    assert "- field online-order.order-total is not in the account (the files declare it)" in text


def test_no_drift_and_no_plan_file() -> None:
    report = compute_drift({"online-order": DESIRED}, {"online-order": as_live(DESIRED)})
    assert report.in_sync and report.items == ()
    assert render_drift(report, "text") == "No drift. The account matches the files."
    with pytest.raises(PlanFileError):
        Plan.from_json(render_drift(report, "json"))


def test_most_severe_and_environment_names() -> None:
    assert most_severe([0, 2, 0]) == 2
    assert most_severe([2, 1, 0]) == 1
    assert most_severe([]) == 0
    envs = {"staging": object(), "production": object()}
    assert environment_names(envs, (), True) == ["staging", "production"]
    assert environment_names(envs, ("production", "production"), False) == ["production"]
    with pytest.raises(ConfigError, match="unknown environment"):
        environment_names(envs, ("nope",), False)
    with pytest.raises(ConfigError, match="no environments"):
        environment_names({}, (), True)

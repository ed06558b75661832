"""Every change kind has its comparison, its risks, its API request, its text and markdown wording
and its drift reading (each a ``match`` with ``assert_never``: mypy reports a forgotten kind; this
test runs each for one change of every kind)."""

from __future__ import annotations

import pytest

from reconciler.changes import (
    CHANGE_KINDS,
    AddField,
    AddRelationship,
    Change,
    CopyCount,
    CopyField,
    CreateSchema,
    DeleteField,
    DeleteSchema,
    UpdateField,
    UpdateRelationship,
    UpdateSchema,
)
from reconciler.drift import DriftItem, DriftKind, _Builder
from reconciler.model import Field, FieldType, Labels, Relationship, Schema
from reconciler.plan import Plan
from reconciler.props import Prop
from reconciler.render import change_text, render
from reconciler.render.words import drift_message
from reconciler.risks import risks
from reconciler.stages import StepMethod, request

L = Labels(singular="Order", plural="Orders")
F = Field(id="f", type=FieldType.TEXT, labels=L, required=True)
F2 = F.model_copy(update={"labels": Labels(singular="Ordre", plural="Ordres")})
R = Relationship(id="r", namespace="contacts", labels=L)
R2 = R.model_copy(update={"description": "who"})
S = Schema(slug="order", labels=L, fields=(F,), relationships=(R,), id="s1")
S2 = S.model_copy(update={"slug": "purchase"})

SAMPLES: dict[str, Change] = {
    "create-schema": CreateSchema(slug="order", after=S),
    "update-schema": UpdateSchema(slug="purchase", schema_id="s1", before=S, after=S2, changed=(Prop.SLUG,),
                                  renamed_from="order"),
    "add-field": AddField(slug="order", schema_id="s1", field_id="f", after=F),
    "update-field": UpdateField(slug="order", schema_id="s1", field_id="f", before=F, after=F2,
                                changed=(Prop.LABELS_SINGULAR, Prop.LABELS_PLURAL)),
    "delete-field": DeleteField(slug="order", schema_id="s1", field_id="f", before=F),
    "copy-field": CopyField(slug="order", schema_id="s1", field_id="f", from_field="g", conversion="number-to-text",
                            before=F.model_copy(update={"id": "g", "type": FieldType.NUMBER}), after=F),
    "add-relationship": AddRelationship(slug="order", schema_id="s1", relationship_id="r", after=R),
    "update-relationship": UpdateRelationship(slug="order", schema_id="s1", relationship_id="r", before=R, after=R2,
                                              changed=(Prop.DESCRIPTION,)),
    "delete-schema": DeleteSchema(slug="order", schema_id="s1", before=S),
}
#: the risks each kind carries for these samples
RISKS = {"create-schema": (), "update-schema": ("BC202",), "add-field": ("BC201",), "update-field": (),
         "delete-field": ("DL102",), "copy-field": ("DL103",), "add-relationship": (), "update-relationship": (), "delete-schema": ("DL101",)}


def test_the_samples_are_every_kind() -> None:
    assert set(SAMPLES) == set(CHANGE_KINDS) == set(RISKS)
    assert all(type(c) is CHANGE_KINDS[k] for k, c in SAMPLES.items())


@pytest.mark.parametrize("kind", sorted(CHANGE_KINDS))
def test_each_kind_has_its_comparison_risks_request_and_wording(kind: str) -> None:
    change = SAMPLES[kind]
    cls = CHANGE_KINDS[kind]
    # comparison: an update compares its noun's properties, an add or a delete is found by presence
    assert bool(cls.compares) == kind.startswith("update-")
    assert set(change.changed) <= set(cls.compares)
    # risks
    assert tuple(f.code for f in risks(change)) == RISKS[kind]
    # request: the step's method and the change's part of its body
    method, part = request(change)
    assert method in StepMethod
    assert bool(part) == (method in (StepMethod.CREATE, StepMethod.UPDATE))
    # wording: text and markdown name it
    head, _ = change_text(change)
    assert change.subject_id is None or change.subject_id in head
    plan = Plan(changes=(change,))
    for fmt in ("text", "markdown"):
        assert f'"{change.subject_id or change.slug}"' in render(plan, fmt)  # type: ignore[arg-type]
    # drift: the change reads as at least one difference
    b = _Builder({"order": S}, {"order": S}, {})
    b.change(change)
    assert b.items and all(drift_message(i) for i in b.items)


@pytest.mark.parametrize("kind", list(DriftKind))
def test_each_drift_kind_has_its_words(kind: DriftKind) -> None:
    item = DriftItem(slug="order", kind=kind, symbol="~", subject_id="f", prop="labels.singular",
                     files=["a"], account=["b"], detail="NA303 the planner's line")
    words = drift_message(item)
    assert words
    if kind not in (DriftKind.CONFLICT, DriftKind.NOTE):
        assert "order" in words  # names what it is about


def test_a_copy_shows_its_count_time_and_samples_and_drops_dl103_when_every_value_converts() -> None:
    copy = SAMPLES["copy-field"]
    assert isinstance(copy, CopyField)
    change = copy.model_copy(update={"findings": risks(copy)})
    counted = change.with_copy(CopyCount(records=1000, convertible=980, to_copy=980, unconvertible=20,
                                         samples=("'12,5' (not a number)",), requests=1971, rate=5.0))
    text = render(Plan(changes=(counted,)), "text")
    assert '» copy "g" → "f": 980 records, ~394 s (about 7 min) at 5 req/s, conversion number-to-text' in text
    assert "cannot convert 20 values (not copied): '12,5' (not a number), …" in text
    assert "DL103" in text and "20 of 1,000 records hold a value it cannot convert" in text
    clean = change.with_copy(CopyCount(records=10, convertible=10, to_copy=10, requests=31))
    assert [f.code for f in clean.findings] == []

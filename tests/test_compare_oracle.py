"""The planner's typed, per-property comparison names exactly the properties that deepdiff, an
independent generic diff of the models' compared views, finds different (deepdiff is the oracle
here, a dev dependency; the library does not use it)."""

from __future__ import annotations

from typing import Any

from deepdiff import DeepDiff
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.model import Field, FieldType, Labels, Relationship
from reconciler.props import FIELD_PROPS, RELATIONSHIP_PROPS, differing

_text = st.sampled_from(["A", "B", "Order"])
_labels = st.builds(Labels, singular=_text, plural=_text)


def _oracle(before: dict[str, Any], after: dict[str, Any], skip: set[str]) -> set[str]:
    diff = DeepDiff({k: v for k, v in before.items() if k not in skip},
                    {k: v for k, v in after.items() if k not in skip}, ignore_order=True, view="tree")
    return {".".join(str(p) for p in item.path(output_format="list")[:2]) for items in diff.values() for item in items}


_fields = st.builds(Field, id=st.just("f"), type=st.just(FieldType.NUMBER), labels=_labels,
                    description=st.sampled_from([None, "d", "e"]), required=st.booleans(),
                    scale=st.sampled_from([None, 0, 2]))


@settings(max_examples=300, deadline=None)
@given(_fields, _fields)
def test_field_comparison_matches_deepdiff(live: Field, desired: Field) -> None:
    skip = {"type", "options", "defaultCurrency"} | ({"scale"} if desired.scale is None else set())
    assert {str(p) for p in differing(FIELD_PROPS, live, desired)} == _oracle(live.comparable(), desired.comparable(),
                                                                                skip)


_rels = st.builds(Relationship, id=st.just("r"), namespace=st.just("contacts"), labels=_labels,
                  description=st.sampled_from([None, "d"]), has_many=st.booleans())


@settings(max_examples=200, deadline=None)
@given(_rels, _rels)
def test_relationship_comparison_matches_deepdiff(live: Relationship, desired: Relationship) -> None:
    assert {str(p) for p in differing(RELATIONSHIP_PROPS, live, desired)} == _oracle(
        live.comparable(), desired.comparable(), {"namespace"})

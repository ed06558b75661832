"""The planner's direct diff gives exactly deepdiff's property names (it replaced deepdiff for speed)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.planner import _changed, _deepdiff_changed

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 2.5]),
                     st.sampled_from(["", "a", "b", "Order"]))
_leaf = st.one_of(_scalars, st.lists(st.sampled_from(["x", "y", "z"]), max_size=3),
                  st.lists(st.sampled_from([1, 1.0, True]), max_size=2))
_keys = st.sampled_from(["type", "labels", "description", "required", "scale", "options", "slug"])
_inner = st.dictionaries(st.sampled_from(["singular", "plural", "x"]), _leaf, max_size=3)
_views = st.dictionaries(_keys, st.one_of(_leaf, _inner), max_size=6)


def _reference(before: dict[str, Any], after: dict[str, Any], exclude: tuple[str, ...]) -> tuple[str, ...]:
    """The planner's ``_changed`` as it was: deepdiff for everything (its fallback, kept as the reference)."""
    return _deepdiff_changed(before, after, exclude)


@settings(max_examples=400, deadline=None)
@given(_views, _views, st.sampled_from([(), ("options",), ("labels", "slug")]))
def test_direct_diff_matches_deepdiff(before: dict[str, Any], after: dict[str, Any], exclude: tuple[str, ...]) -> None:
    assert _changed(before, after, exclude) == _reference(before, after, exclude)


@settings(max_examples=200, deadline=None)
@given(_views, st.sampled_from([(), ("options",)]))
def test_small_edits_match_deepdiff(before: dict[str, Any], exclude: tuple[str, ...]) -> None:
    after = {**before, "description": "changed", "labels": {"singular": "S", "plural": 1}}
    assert _changed(before, after, exclude) == _reference(before, after, exclude)
    assert _changed(before, dict(before), exclude) == ()

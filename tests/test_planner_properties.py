"""Property tests: a schema planned against itself has no changes; planning is deterministic."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.model import Field, FieldType, Labels, Option, Relationship, Schema
from reconciler.planner import plan
from reconciler.render.words import summary_line

_word = st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=12).filter(lambda s: s.strip())
_id = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


@st.composite
def fields(draw: st.DrawFn) -> Field:
    ftype = draw(st.sampled_from(list(FieldType)))
    options = None
    if ftype.has_options:
        values = draw(st.lists(_id, min_size=1, max_size=4, unique=True))
        options = tuple(Option(value=v) for v in values)
    return Field(
        id=draw(_id),
        type=ftype,
        labels=Labels(singular=draw(_word), plural=draw(_word)),
        description=draw(st.one_of(st.none(), st.just(""), _word)),
        required=draw(st.booleans()),
        scale=draw(st.one_of(st.none(), st.integers(0, 4))) if ftype.has_scale else None,
        defaultCurrency=draw(st.sampled_from([None, "USD", "EUR"])) if ftype is FieldType.CURRENCY else None,
        options=options,
    )


@st.composite
def schemas(draw: st.DrawFn) -> Schema:
    fs = draw(st.lists(fields(), max_size=5, unique_by=lambda f: f.id))
    rels = draw(st.lists(
        st.builds(Relationship, id=_id, namespace=st.sampled_from(["contacts", "accounts", "deals"]),
                  labels=st.builds(Labels, singular=_word, plural=_word)),
        max_size=2, unique_by=lambda r: r.id))
    return Schema(slug=draw(st.from_regex(r"[a-z]{1,6}(-[a-z0-9]{1,4})?", fullmatch=True)),
                  labels=Labels(singular=draw(_word), plural=draw(_word)),
                  description=draw(st.one_of(st.none(), _word)), fields=tuple(fs), relationships=tuple(rels))


@settings(max_examples=60, deadline=None)
@given(st.lists(schemas(), max_size=3, unique_by=lambda s: s.slug), st.randoms())
def test_plan_of_a_state_against_itself_is_empty(items: list[Schema], rnd) -> None:
    desired = {s.slug: s for s in items}
    # the live copy: server ids, option UUIDs, shuffled fields and options — none of it is a change
    live = {}
    for s in items:
        fs = []
        for f in s.fields:
            opts = f.options
            if opts is not None:
                opts = tuple(Option(value=o.value, id=f"uuid-{i}") for i, o in enumerate(opts))
                opts = tuple(rnd.sample(opts, len(opts)))
            fs.append(f.model_copy(update={"options": opts}))
        live[s.slug] = s.model_copy(update={"id": f"id-{s.slug}", "fields": tuple(rnd.sample(fs, len(fs))),
                                            "updated_timestamp": "2026-01-01T00:00:00Z"})
    p = plan(desired, live)
    assert not p.has_changes and not p.has_errors
    assert summary_line(p) == "No changes. The account matches the files."


@settings(max_examples=40, deadline=None)
@given(st.lists(schemas(), max_size=3, unique_by=lambda s: s.slug),
       st.lists(schemas(), max_size=3, unique_by=lambda s: s.slug))
def test_planning_is_deterministic(desired_items: list[Schema], live_items: list[Schema]) -> None:
    desired = {s.slug: s for s in desired_items}
    live = {s.slug: s.model_copy(update={"id": f"id-{s.slug}"}) for s in live_items}
    first = plan(desired, live)
    second = plan(dict(reversed(list(desired.items()))), dict(reversed(list(live.items()))))
    assert first.to_json() == second.to_json()

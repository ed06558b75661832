"""Acceptance 6 (hypothesis): for any live account and desired files whose plan has no ``NA`` error,
``apply --allow-data-loss`` followed by ``plan`` is empty.

The live account is made through the API of an in-process sandbox (creates, then maybe field
deletes, so some ids are marked for deletion); the desired files are mutations of it: labels,
descriptions and ``required`` changed, options added, fields added (some taking over the label of a
field they replace) and removed, relationships added (also between new schemas, cycles included),
schemas added and removed, ``prune`` on or off.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from reconciler.model import Schema, check_schemas
from reconciler.planner import PlanOptions
from reconciler.sandbox import SandboxSettings, create_app
from tests.support.apply import apply_desired, asgi_client, plan_against

SLUGS = ("alpha", "beta", "gamma", "delta", "epsilon")
FIELD_IDS = ("f1", "f2", "f3", "f4", "f5", "f6", "f7")
TYPES = ("text", "textarea", "number", "date", "datetime", "currency", "dropdown", "multiselect")
LABELS = ("Name", "Size", "Color", "Note", "Price", "Code", "Weight")
WORDS = ("red", "green", "blue", "big", "small")
NAMESPACES = ("contacts", "accounts", "deals")


def _labels(word: str) -> dict[str, str]:
    return {"singular": word, "plural": f"{word}s"}


@st.composite
def a_field(draw: st.DrawFn, fid: str) -> dict[str, Any]:
    ftype = draw(st.sampled_from(TYPES))
    f: dict[str, Any] = {"id": fid, "type": ftype, "labels": _labels(draw(st.sampled_from(LABELS))),
                         "required": draw(st.booleans())}
    if draw(st.booleans()):
        f["description"] = draw(st.sampled_from(WORDS))
    if ftype in ("dropdown", "multiselect"):
        f["options"] = [{"value": v} for v in draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3,
                                                            unique=True))]
    if ftype == "number" and draw(st.booleans()):
        f["scale"] = draw(st.integers(0, 3))
    if ftype == "currency" and draw(st.booleans()):
        f["defaultCurrency"] = draw(st.sampled_from(["USD", "EUR"]))
    return f


def _unique_labels(fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for f in fields:
        if f["labels"]["singular"].casefold() not in seen:
            seen.add(f["labels"]["singular"].casefold())
            out.append(f)
    return out


@st.composite
def a_schema(draw: st.DrawFn, slug: str, namespaces: tuple[str, ...]) -> dict[str, Any]:
    ids = draw(st.lists(st.sampled_from(FIELD_IDS), min_size=1, max_size=4, unique=True))
    fields = _unique_labels([draw(a_field(fid)) for fid in ids])
    rels = []
    if draw(st.booleans()):
        ns = draw(st.sampled_from(namespaces))
        rels.append({"id": "link", "namespace": ns, "labels": _labels("Link")})
    doc: dict[str, Any] = {"slug": slug, "labels": _labels(slug.title()), "fields": fields, "relationships": rels}
    if draw(st.booleans()):
        doc["description"] = draw(st.sampled_from(WORDS))
    return doc


@st.composite
def mutate_field(draw: st.DrawFn, f: dict[str, Any]) -> dict[str, Any]:
    f = {**f}
    if draw(st.integers(0, 3)) == 0:
        f["labels"] = _labels(draw(st.sampled_from(LABELS)))
    if draw(st.integers(0, 3)) == 0:
        f["required"] = not f["required"]
    if draw(st.integers(0, 3)) == 0:
        choice = draw(st.sampled_from([None, *WORDS]))
        f.pop("description", None)
        if choice is not None:
            f["description"] = choice
    if "options" in f and draw(st.booleans()):
        extra = draw(st.lists(st.sampled_from(["new", "old", "more"]), max_size=2, unique=True))
        f["options"] = f["options"] + [{"value": v} for v in extra]
    if "scale" in f and draw(st.integers(0, 3)) == 0:
        f["scale"] = draw(st.integers(0, 3))
    return f


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, list[str]], list[dict[str, Any]], bool]:
    """(live schemas to create, fields to delete afterwards by slug, desired schemas, prune)."""
    live_slugs = draw(st.lists(st.sampled_from(SLUGS), min_size=1, max_size=3, unique=True))
    live = [draw(a_schema(slug, NAMESPACES)) for slug in live_slugs]
    deleted: dict[str, list[str]] = {}
    for doc in live:
        ids = [f["id"] for f in doc["fields"]]
        gone = draw(st.lists(st.sampled_from(ids), max_size=len(ids) - 1, unique=True)) if len(ids) > 1 else []
        if gone:
            deleted[doc["slug"]] = gone

    new_slugs = draw(st.lists(st.sampled_from([s for s in SLUGS if s not in live_slugs]), max_size=2, unique=True))
    desired: list[dict[str, Any]] = []
    for doc in live:
        if draw(st.integers(0, 4)) == 0:
            continue  # removed from the files: deleted with prune, unmanaged without
        d = {**doc}
        gone = set(deleted.get(doc["slug"], ()))
        active = [f for f in doc["fields"] if f["id"] not in gone]
        fields = [draw(mutate_field(f)) for f in active if draw(st.integers(0, 4)) != 0]
        free = [i for i in FIELD_IDS if i not in {f["id"] for f in doc["fields"]}]
        for fid in draw(st.lists(st.sampled_from(free), max_size=2, unique=True)) if free else []:
            fields.append(draw(a_field(fid)))
        d["fields"] = fields
        if draw(st.integers(0, 3)) == 0:
            d["labels"] = _labels(draw(st.sampled_from(WORDS)).title())
        if draw(st.integers(0, 3)) == 0:
            d.pop("description", None)
            choice = draw(st.sampled_from([None, *WORDS]))
            if choice is not None:
                d["description"] = choice
        if not d["relationships"] and draw(st.integers(0, 3)) == 0:
            ns = draw(st.sampled_from(NAMESPACES + tuple(new_slugs)))
            d["relationships"] = [{"id": "link", "namespace": ns, "labels": _labels("Link")}]
        desired.append(d)
    for slug in new_slugs:
        # a new schema may point at another new one (either way round: cycles too) or at itself
        desired.append(draw(a_schema(slug, NAMESPACES + tuple(new_slugs))))
    return live, deleted, desired, draw(st.booleans())


def _schemas(docs: list[dict[str, Any]]) -> dict[str, Schema]:
    return {d["slug"]: Schema.model_validate(d) for d in docs}


async def _scenario(live_docs: list[dict[str, Any]], deleted: dict[str, list[str]], desired_docs: list[dict[str, Any]],
                    prune: bool) -> None:
    app = create_app(SandboxSettings(rate_limit=0))
    async with asgi_client(app) as c:
        for s in _schemas(live_docs).values():
            made = await c.create_schema(s)
            assert made.id is not None
            for fid in deleted.get(s.slug, ()):
                await c.delete_field(made.id, fid)
        desired = _schemas(desired_docs)
        options = PlanOptions(prune=prune)
        first = await plan_against(c, desired, options)
        assume(not first.has_errors)
        for kind in sorted({c.kind for c in first.changes}):
            event(kind)  # --hypothesis-show-statistics: how often each change kind was applied
        _plan, result = await apply_desired(c, desired, options)
        assert result.ok, [(r.step.label, r.status, r.error) for r in result.results] + [
            c.describe for c in (result.remaining.changes if result.remaining else ())]
        again = await plan_against(c, desired, options)
        assert not again.has_changes and not again.has_errors, [c.describe for c in again.changes]


@settings(max_examples=int(os.environ.get("APPLY_PROPERTY_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(worlds())
def test_apply_then_plan_is_empty(world: tuple[list[dict[str, Any]], dict[str, list[str]],
                                               list[dict[str, Any]], bool]) -> None:
    live_docs, deleted, desired_docs, prune = world
    problems = check_schemas(_schemas(desired_docs).values())
    assume(not any(problems.values()))  # the files layer would refuse them
    assume(desired_docs or not prune)  # prune with no files is refused (RefusingEmptyDesired)
    asyncio.run(_scenario(live_docs, deleted, desired_docs, prune))


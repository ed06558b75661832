"""ER diagrams of schemas: what the files or the account hold, or what a plan touches. Pure: no I/O.

A :class:`Diagram` is built from schemas (:func:`diagram`, desired or live, the same model) or from a
plan (:func:`plan_diagram`: only the schemas it changes, each created, deleted or changed part
marked), then drawn as Mermaid ``erDiagram`` source (:func:`to_mermaid`) or Graphviz DOT
(:func:`to_dot`). SVG is Graphviz's job: :func:`reconciler.graphviz.to_svg` runs ``dot``.

Each schema is an entity listing its active fields (id, type, ``required``); each relationship is an
edge from the schema to ``contacts``, ``accounts``, ``deals`` or another schema, drawn as "each
record points at zero or one of them" (``hasMany`` as zero or more).

Escaping. Labels, ids and slugs come from user files or the account and may hold anything, so
neither renderer copies them into the syntax as they are:

- Mermaid has no escape sequence inside a quoted string, preprocesses the whole source (``%%``
  comments, ``#name;`` entities) before parsing, and renders entity labels as markdown (``**``,
  ``_``) that lets HTML through. So :func:`mermaid_text` shows control characters as escapes
  (``\\n``) and replaces every character that means something there with a look-alike
  (``"`` → ``”``, ``<`` → ``‹``, ``{`` → ``⦃``, …): what was typed stays readable and can make nothing.
  Entity names are generated (``s_online_order``), never the slug itself: a slug such as ``one`` or
  ``end`` is a keyword. An attribute name is the field id when it is a plain token, else a generated
  one with the real id in its comment.
- DOT: every label is an HTML-like label, its text HTML-escaped (:func:`html.escape`); node names
  are generated and quoted.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from reconciler import changes as ops
from reconciler.model import KNOWN_NAMESPACES, Field, OpaqueField, Relationship, Schema
from reconciler.plan import Plan
from reconciler.render.text import inert

__all__ = [
    "Attribute",
    "Diagram",
    "Edge",
    "Entity",
    "Mark",
    "diagram",
    "mermaid_text",
    "plan_diagram",
    "to_dot",
    "to_mermaid",
]


class Mark(StrEnum):
    """What a plan does to a part of the diagram."""

    ADDED = "added"
    CHANGED = "changed"
    DELETED = "deleted"


#: The words an entity's mark is shown with: the plan's own verbs (``+ create``, ``- destroy``).
_ENTITY_WORDS = {Mark.ADDED: "create", Mark.CHANGED: "update", Mark.DELETED: "destroy"}


@dataclass(frozen=True)
class Attribute:
    """A field of an entity. ``type`` is the API's type name (an opaque field's raw one)."""

    id: str
    type: str
    required: bool = False
    label: str | None = None
    mark: Mark | None = None
    blocked: bool = False


@dataclass(frozen=True)
class Entity:
    """A box: a schema (``schema``, keyed by slug) or a namespace a relationship points at
    (``contacts``, ``accounts``, ``deals``, or a schema that is not in the diagram)."""

    key: str
    label: str | None = None
    schema: bool = True
    attributes: tuple[Attribute, ...] = ()
    mark: Mark | None = None
    blocked: bool = False
    #: Parts of a schema left out (a plan's unchanged fields and relationships), e.g. ``3 fields``.
    hidden: str | None = None


@dataclass(frozen=True)
class Edge:
    """A relationship: the records of schema ``source`` point at ``target`` (an entity's key)."""

    source: str
    target: str
    target_schema: bool
    id: str
    label: str | None = None
    has_many: bool = False
    mark: Mark | None = None
    blocked: bool = False


@dataclass(frozen=True)
class Diagram:
    entities: tuple[Entity, ...] = ()
    edges: tuple[Edge, ...] = ()

    @property
    def schema_count(self) -> int:
        return sum(1 for e in self.entities if e.schema)


# ---------------------------------------------------------------------------------------------
# Building


def _attribute(f: Field | OpaqueField, mark: Mark | None = None, blocked: bool = False) -> Attribute:
    kind = f.type.value if isinstance(f, Field) else f.type
    label = f.labels.singular if f.labels is not None else None
    return Attribute(f.id, kind, f.required, label, mark, blocked)


def _target(namespace: str, slugs: Collection[str]) -> tuple[str, bool]:
    """``(entity key, is a schema of the diagram)``. The API's own namespaces win over a schema
    that happens to be slugged ``contacts`` (as in :func:`reconciler.model.namespace_problems`)."""
    if namespace in KNOWN_NAMESPACES:
        return namespace, False
    return namespace, namespace in slugs


def _edge(slug: str, r: Relationship, slugs: Collection[str], mark: Mark | None = None,
          blocked: bool = False) -> Edge:
    target, is_schema = _target(r.namespace, slugs)
    return Edge(slug, target, is_schema, r.id, r.labels.singular, r.has_many, mark, blocked)


def _assemble(entities: Iterable[Entity], edges: Iterable[Edge]) -> Diagram:
    """Schemas in slug order, then the namespaces the edges point at that are not schemas here."""
    schemas = sorted(entities, key=lambda e: e.key)
    edge_list = list(edges)
    outside = sorted({e.target for e in edge_list if not e.target_schema})
    return Diagram((*schemas, *(Entity(key, key, schema=False) for key in outside)), tuple(edge_list))


def diagram(schemas: Iterable[Schema] | Mapping[str, Schema]) -> Diagram:
    """The diagram of ``schemas`` (a list, or ``load_dir(...).schemas``, or the client's list):
    each schema's active fields (opaque ones too) and every relationship."""
    items = list(schemas.values() if isinstance(schemas, Mapping) else schemas)
    slugs = {s.slug for s in items}
    entities = [
        Entity(s.slug, s.labels.singular,
               attributes=tuple(_attribute(f) for f in (*s.active_fields, *s.active_opaque_fields)))
        for s in items
    ]
    edges = [_edge(s.slug, r, slugs) for s in sorted(items, key=lambda s: s.slug) for r in s.relationships]
    return _assemble(entities, edges)


_CHANGE_MARKS = {ops.Action.ADD: Mark.ADDED, ops.Action.UPDATE: Mark.CHANGED, ops.Action.DELETE: Mark.DELETED}


def _hidden(plan: Plan, slug: str) -> str | None:
    counts = plan.unchanged.get(slug)
    if counts is None:
        return None
    parts = []
    if counts.fields:
        parts.append(f"{counts.fields} field" + ("s" if counts.fields != 1 else ""))
    if counts.relationships:
        parts.append(f"{counts.relationships} relationship" + ("s" if counts.relationships != 1 else ""))
    return ", ".join(parts) or None


def plan_diagram(plan: Plan) -> Diagram:
    """The schemas ``plan`` changes (not those with only errors), each part marked.

    A created or deleted schema is drawn whole, marked as such (its fields and relationships go with
    it); a changed one shows the fields and relationships the plan adds, changes or deletes, and how
    many unchanged ones are left out (:attr:`Entity.hidden`). A blocked change keeps its mark and is
    flagged ``blocked``.
    """
    by_slug: dict[str, list[ops.Change]] = {}
    for c in plan.changes:
        by_slug.setdefault(c.slug, []).append(c)
    slugs = set(by_slug)
    entities: list[Entity] = []
    edges: list[Edge] = []
    for slug in sorted(by_slug):
        changes = by_slug[slug]
        whole = next((c for c in changes if isinstance(c, ops.CreateSchema | ops.DeleteSchema)), None)
        if whole is not None:
            schema = whole.after if isinstance(whole, ops.CreateSchema) else whole.before
            mark = _CHANGE_MARKS[whole.act]
            entities.append(Entity(slug, schema.labels.singular, mark=mark, blocked=whole.blocked,
                                   attributes=tuple(_attribute(f) for f in schema.active_fields)))
            edges += [_edge(slug, r, slugs, mark, whole.blocked) for r in schema.relationships]
            continue
        update = next((c for c in changes if isinstance(c, ops.UpdateSchema)), None)
        attributes: list[Attribute] = []
        for c in changes:
            if c.act not in _CHANGE_MARKS:  # a copy of records (``»``) changes no part of the schema
                continue
            mark = _CHANGE_MARKS[c.act]
            match c:
                case ops.AddField(after=f) | ops.UpdateField(after=f) | ops.DeleteField(before=f):
                    attributes.append(_attribute(f, mark, c.blocked))
                case ops.AddRelationship(after=r) | ops.UpdateRelationship(after=r):
                    edges.append(_edge(slug, r, slugs, mark, c.blocked))
        entities.append(Entity(
            slug, update.after.labels.singular if update is not None else None,
            attributes=tuple(attributes), mark=Mark.CHANGED,
            blocked=update is not None and update.blocked, hidden=_hidden(plan, slug),
        ))
    return _assemble(entities, edges)


def _as_diagram(d: Diagram | Iterable[Schema] | Mapping[str, Schema]) -> Diagram:
    return d if isinstance(d, Diagram) else diagram(d)


def _mark_words(mark: Mark | None, blocked: bool, words: Mapping[Mark, str] | None = None) -> str | None:
    if mark is None:
        return None
    word = (words or {}).get(mark, mark.value)
    return f"{word} (blocked)" if blocked else word


def _entity_title(e: Entity) -> str:
    """``Online Order (online-order)``; a namespace is its own name."""
    if not e.schema:
        return e.key
    return f"{e.label} ({e.key})" if e.label and e.label != e.key else e.key


def _names(d: Diagram) -> dict[tuple[bool, str], str]:
    """A generated name for each entity: ``s_online_order`` for a schema, ``n_contacts`` for a
    namespace; only ASCII letters, digits and ``_``, distinct (``_2`` … on a clash)."""
    names: dict[tuple[bool, str], str] = {}
    used: set[str] = set()
    for e in d.entities:
        base = ("s_" if e.schema else "n_") + (re.sub(r"[^A-Za-z0-9]", "_", e.key) or "_")
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        names[(e.schema, e.key)] = name
    return names


# ---------------------------------------------------------------------------------------------
# Mermaid

#: Characters that mean something to Mermaid (quotes, ``%%`` comments, ``#…;`` entities, ``~``
#: generics, blocks, aliases) or to the markdown it renders labels with (emphasis, code, HTML,
#: escapes, links), and the look-alike each is shown as: glyphs that common fonts (DejaVu, the
#: system fonts of browsers) have, so the text stays readable.
_MERMAID_SUBST = str.maketrans({
    '"': "\u201d",  # ”
    "`": "\u02cb",  # ˋ
    "<": "\u2039",  # ‹
    ">": "\u203a",  # ›
    "&": "\u214b",  # ⅋
    "#": "\u266f",  # ♯
    "%": "\u066a",  # ٪
    "\\": "\u2216",  # ∖
    "*": "\u2217",  # ∗
    "_": "\u02cd",  # ˍ
    "~": "\u223c",  # ∼
    "{": "\u2983",  # ⦃
    "}": "\u2984",  # ⦄
    "[": "\u2045",  # ⁅
    "]": "\u2046",  # ⁆
})


def mermaid_text(text: str) -> str:
    """``text`` safe inside a quoted Mermaid string and its markdown rendering: one line, controls
    shown escaped, syntax characters replaced by look-alikes (see the module's docstring)."""
    return inert(text).translate(_MERMAID_SUBST).strip() or "\u2013"


#: A Mermaid attribute name token: starts with a letter or ``_``; ``PK``/``FK``/``UK`` followed by a
#: non-word character is a keyword and cannot start one.
_MERMAID_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_MERMAID_KEY = re.compile(r"(?i)(pk|fk|uk)(?![A-Za-z0-9_])")


def _mermaid_attr(a: Attribute, index: int) -> str:
    name = a.id if _MERMAID_NAME.fullmatch(a.id) and not _MERMAID_KEY.match(a.id) else f"field_{index}"
    kind = re.sub(r"[^A-Za-z0-9_]", "_", a.type)
    kind = kind if re.match(r"[A-Za-z_]", kind) else f"t_{kind}"
    notes = [] if name == a.id else [f"id {a.id}"]
    notes += [a.label] if a.label else []
    notes += ["required"] if a.required else []
    word = _mark_words(a.mark, a.blocked)
    notes += [word] if word else []
    comment = f' "{mermaid_text(", ".join(notes))}"' if notes else ""
    return f"{kind} {name}{comment}"


def to_mermaid(d: Diagram | Iterable[Schema] | Mapping[str, Schema]) -> str:
    """Mermaid ``erDiagram`` source (ends with a newline). Marks show as words: an entity's title
    ends with ``· create``/``· update``/``· destroy``, an attribute's comment and an edge's label
    with ``added``/``changed``/``deleted`` (text, which every Mermaid version with ``erDiagram``
    draws; see :func:`reconciler.render.markdown.render_markdown`)."""
    d = _as_diagram(d)
    names = _names(d)
    lines = ["erDiagram"]
    for e in d.entities:
        title = _entity_title(e)
        word = _mark_words(e.mark, e.blocked, _ENTITY_WORDS)
        if word:
            title += f" \u00b7 {word}"
        head = f'    {names[(e.schema, e.key)]}["{mermaid_text(title)}"]'
        attrs = [_mermaid_attr(a, i) for i, a in enumerate(e.attributes, 1)]
        if e.hidden:
            attrs.append(f'unchanged hidden "{mermaid_text(e.hidden)}"')
        if attrs:
            lines.append(head + " {")
            lines += [f"        {a}" for a in attrs]
            lines.append("    }")
        else:
            lines.append(head)
    for edge in d.edges:
        source, target = names[(True, edge.source)], names[(edge.target_schema, edge.target)]
        text = f"{edge.label} ({edge.id})" if edge.label else edge.id
        word = _mark_words(edge.mark, edge.blocked)
        if word:
            text += f", {word}"
        many = "o{" if edge.has_many else "o|"
        lines.append(f'    {source} }}o--{many} {target} : "{mermaid_text(text)}"')
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Graphviz DOT

#: Fill colours of marked entities, in DOT (also readable without colour: the words are written).
_DOT_COLORS = {Mark.ADDED: "#d7f5dd", Mark.CHANGED: "#fff3c4", Mark.DELETED: "#fadbd8"}


def _h(text: str) -> str:
    """``text`` as the content of a DOT HTML-like label."""
    return html.escape(inert(text), quote=True)


def _dot_entity(e: Entity) -> str:
    title = f"<B>{_h(e.key)}</B>"
    if e.schema and e.label and e.label != e.key:
        title += f"<BR/>{_h(e.label)}"
    word = _mark_words(e.mark, e.blocked, _ENTITY_WORDS)
    if word:
        title += f"<BR/><I>{_h(word)}</I>"
    fill = _DOT_COLORS.get(e.mark, "#e8eef7") if e.mark else ("#e8eef7" if e.schema else "#f2f2f2")
    rows = [f'<TR><TD COLSPAN="3" BGCOLOR="{fill}">{title}</TD></TR>']
    for a in e.attributes:
        notes = ["required"] if a.required else []
        word = _mark_words(a.mark, a.blocked)
        notes += [word] if word else []
        rows.append(f'<TR><TD ALIGN="LEFT">{_h(a.id)}</TD><TD ALIGN="LEFT">{_h(a.type)}</TD>'
                    f'<TD ALIGN="LEFT">{_h(", ".join(notes))}</TD></TR>')
    if e.hidden:
        rows.append(f'<TR><TD COLSPAN="3" ALIGN="LEFT"><I>{_h(e.hidden + " unchanged")}</I></TD></TR>')
    table = '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">' + "".join(rows) + "</TABLE>"
    return f"label=<{table}>"


def _dot_id(name: str) -> str:
    # names are generated (letters, digits, ``_``); quoted all the same
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(d: Diagram | Iterable[Schema] | Mapping[str, Schema]) -> str:
    """Graphviz DOT source (ends with a newline): one node per entity, an HTML-like table of its
    fields, one edge per relationship labelled with its id (and mark)."""
    d = _as_diagram(d)
    names = _names(d)
    lines = [
        "digraph schemas {",
        '    graph [rankdir=LR, fontname="Helvetica"];',
        '    node [shape=plaintext, fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica", fontsize=10, arrowhead=teeodot, arrowtail=crowodot, dir=both];',
    ]
    for e in d.entities:
        lines.append(f"    {_dot_id(names[(e.schema, e.key)])} [{_dot_entity(e)}];")
    for edge in d.edges:
        text = _h(edge.id)
        word = _mark_words(edge.mark, edge.blocked)
        if word:
            text += f"<BR/><I>{_h(word)}</I>"
        head = ", arrowhead=crowodot" if edge.has_many else ""
        lines.append(f"    {_dot_id(names[(True, edge.source)])} -> "
                     f"{_dot_id(names[(edge.target_schema, edge.target)])} [label=<{text}>{head}];")
    lines.append("}")
    return "\n".join(lines) + "\n"

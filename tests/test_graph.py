"""Diagrams (issue 15): ER diagrams of schemas as Mermaid and DOT, SVG from Graphviz, and the
markdown plan's diagram of the schemas it changes.

The Mermaid CLI (tests/node) and Graphviz parse what is produced: a diagram that only looks right
to a regular expression is not enough.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from reconciler.client import Client
from reconciler.files import load_dir
from reconciler.graphviz import GraphvizFailed, GraphvizMissing, run_dot, to_svg
from reconciler.model import Schema
from reconciler.planner import PlanOptions, plan
from reconciler.render import render
from reconciler.render.graph import Diagram, diagram, mermaid_text, plan_diagram, to_dot, to_mermaid
from reconciler.render.markdown import DIAGRAM_MAX_CHARS, DIAGRAM_MAX_SCHEMAS
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import ROOT, TOKEN, Cli, honours_required
from tests.support.apply import apply_desired, field, schema
from tests.support.golden import CASES, build_case, load_desired
from tests.support.tools import node_tool, tool

SEED = ROOT / "schemas"
SVG = "{http://www.w3.org/2000/svg}"

#: What a label could try: close the quotes, open a block, HTML, a Mermaid comment and entity, a
#: generic type, markdown emphasis, code and a link, a fence.
HOSTILE = ('Evil "quote" {brace} <script>alert(1)</script> `tick` ```fence %% c #quot; ~a~ **b** _i_ '
           "[l](https://evil.example) <img src=x onerror=alert(1)>")


def seed() -> dict[str, Schema]:
    return dict(load_dir(SEED).schemas)


def hostile_schemas() -> list[Schema]:
    """Hostile text wherever a schema holds text; slugs, ids and namespaces as the account could
    return them (it is not bound by the files' rules): keywords, quotes, newlines, a leading digit."""
    evil = {"singular": HOSTILE, "plural": HOSTILE + "s"}
    return [
        Schema.model_validate({
            "slug": "end", "labels": evil,
            "fields": [
                {"id": "pk-code", "type": "text", "labels": evil, "required": True},
                {"id": "1st", "type": "number", "labels": {"singular": "First", "plural": "Firsts"}},
                {"id": 'x"}\n%%', "type": "date", "labels": {"singular": "X", "plural": "Xs"}},
            ],
            "opaque_fields": [{"id": "flag", "type": 'bool"~T~ {', "labels": {"singular": "F", "plural": "Fs"}}],
            "relationships": [
                {"id": 'rel"}', "namespace": 'x"}\n<b>', "labels": evil},
                {"id": "owner", "namespace": "contacts", "labels": evil},
            ],
        }),
        Schema.model_validate({
            "slug": 'one "x"\n', "labels": evil,
            "relationships": [{"id": "to-end", "namespace": "end", "labels": evil}],
        }),
    ]


# ---------------------------------------------------------------------------------------------
# Mermaid and DOT source


SEED_MERMAID = """\
erDiagram
    s_online_order["Online Order (online-order)"] {
        number order-number "Order Number, required"
        datetime order-date "Order Date, required"
        textarea order-instructions "Special Instructions"
        currency order-total "Order Total"
        text order-link "Receipt Link"
        dropdown order-ship-status "Shipping Status, required"
    }
    n_contacts["contacts"]
    s_online_order }o--o| n_contacts : "Primary Contact (primary-contact)"
"""


def test_mermaid_of_the_seed() -> None:
    assert to_mermaid(seed()) == SEED_MERMAID
    # the list the client returns and load_dir's mapping are the same input
    assert to_mermaid(list(seed().values())) == SEED_MERMAID


def test_dot_of_the_seed() -> None:
    dot = to_dot(seed())
    assert dot.startswith("digraph schemas {\n") and dot.endswith("}\n")
    node = next(line for line in dot.splitlines() if line.startswith('    "s_online_order" ['))
    rows = re.findall(r"<TR><TD ALIGN=\"LEFT\">([^<]*)</TD><TD ALIGN=\"LEFT\">([^<]*)</TD>"
                      r"<TD ALIGN=\"LEFT\">([^<]*)</TD></TR>", node)
    assert rows == [("order-number", "number", "required"), ("order-date", "datetime", "required"),
                    ("order-instructions", "textarea", ""), ("order-total", "currency", ""),
                    ("order-link", "text", ""), ("order-ship-status", "dropdown", "required")]
    assert '    "s_online_order" -> "n_contacts" [label=<primary-contact>];' in dot.splitlines()


def test_relationships_to_namespaces_and_schemas() -> None:
    rel = [{"id": "primary-contact", "namespace": "contacts", "labels": {"singular": "C", "plural": "Cs"}},
           {"id": "account", "namespace": "accounts", "labels": {"singular": "A", "plural": "As"}},
           {"id": "deal", "namespace": "deals", "labels": {"singular": "D", "plural": "Ds"}},
           {"id": "order", "namespace": "orders", "labels": {"singular": "O", "plural": "Os"}},
           {"id": "elsewhere", "namespace": "not-here", "labels": {"singular": "N", "plural": "Ns"}}]
    items = [schema("lines", [field("qty", "number")], relationships=rel),
             schema("orders", [field("total", "currency")], relationships=[rel[0]]),
             # a schema slugged like a namespace: a relationship to "contacts" still means contacts
             schema("contacts", [field("x")])]
    d = diagram(items)
    assert [(e.key, e.schema) for e in d.entities] == [
        ("contacts", True), ("lines", True), ("orders", True),
        ("accounts", False), ("contacts", False), ("deals", False), ("not-here", False)]
    assert d.schema_count == 3
    edges = [line.strip() for line in to_mermaid(d).splitlines() if "--" in line]
    assert edges == [
        's_lines }o--o| n_contacts : "C (primary-contact)"',
        's_lines }o--o| n_accounts : "A (account)"',
        's_lines }o--o| n_deals : "D (deal)"',
        's_lines }o--o| s_orders : "O (order)"',
        's_lines }o--o| n_not_here : "N (elsewhere)"',
        's_orders }o--o| n_contacts : "C (primary-contact)"',
    ]
    # hasMany (refused by the API, but an account could hold one) draws "zero or more"
    many = schema("a", [], relationships=[{**rel[0], "hasMany": True}])
    assert 's_a }o--o{ n_contacts : "C (primary-contact)"' in to_mermaid([many])
    assert "arrowhead=crowodot" in to_dot([many])
    # the schema entity and the namespace entity get distinct names, each declared once
    names = re.findall(r"^    (\w+)\[", to_mermaid(d), re.M)
    assert names == ["s_contacts", "s_lines", "s_orders", "n_accounts", "n_contacts", "n_deals", "n_not_here"]


def test_deleted_fields_left_out_and_opaque_fields_kept() -> None:
    live = Schema.model_validate({
        "slug": "s", "labels": {"singular": "S", "plural": "Ss"},
        "fields": [field("kept"), field("gone", status="marked_for_deletion")],
        "opaque_fields": [{"id": "flag", "type": "boolean"}],
    })
    attrs = [a.id for a in diagram([live]).entities[0].attributes]
    assert attrs == ["kept", "flag"]
    assert "        boolean flag\n" in to_mermaid([live])


def test_generated_names_never_clash() -> None:
    items = [schema("a-b", []), Schema.model_validate({"slug": "a_b", "labels": {"singular": "U", "plural": "Us"}})]
    assert re.findall(r"^    (\w+)\[", to_mermaid(items), re.M) == ["s_a_b", "s_a_b_2"]


# ---------------------------------------------------------------------------------------------
# Escaping

#: Every line a Mermaid diagram of ours may hold: generated names, tokens, and quoted strings with
#: no quote inside.
_Q = r'"[^"\n]+"'
_MERMAID_LINE = re.compile(
    r"erDiagram"
    rf"|    [sn]_\w+\[{_Q}\]( \{{)?"
    rf"|        [A-Za-z_]\w* [A-Za-z_][\w-]*( {_Q})?"
    r"|    \}"
    rf"|    [sn]_\w+ \}}o--o[|{{] [sn]_\w+ : {_Q}"
)


def test_mermaid_escapes_hostile_labels() -> None:
    source = to_mermaid(hostile_schemas())
    for line in source.splitlines():
        assert _MERMAID_LINE.fullmatch(line), line
    # nothing Mermaid or its markdown could act on survives inside the strings
    strings = re.findall(r'"([^"\n]*)"', source)
    assert len(strings) == 11
    for s in strings:
        assert not set(s) & set("\"`<>&#%\\*_~{}[]"), s
    # what was typed is still there, readable
    assert "\u2039script\u203aalert(1)\u2039/script\u203a" in source and "\u201dquote\u201d" in source
    # a field id that is not a plain token (leading digit, PK keyword, quotes) is named field_N and
    # keeps its id in the comment
    assert '        text field_1 "id pk-code, ' in source
    assert '        number field_2 "id 1st, First"' in source
    assert '        date field_3 "id x\u201d\u2984\u2216n\u066a\u066a, X"' in source
    assert mermaid_text("a\x1b[31mb\u202e") == "a\u2216x1b\u2045" + "31mb\u2216u202e"


def test_dot_escapes_hostile_labels() -> None:
    source = to_dot(hostile_schemas())
    assert "<script>" not in source and "&lt;script&gt;alert(1)&lt;/script&gt;" in source
    assert '&quot;quote&quot;' in source and "\n%%" not in source
    # one statement per line: no value carried a line break into the source
    assert all(line.startswith(("digraph", "    ", "}")) for line in source.splitlines())


# ---------------------------------------------------------------------------------------------
# The markdown plan


def _mermaid_blocks(markdown: str) -> list[str]:
    return [t.content for t in MarkdownIt("commonmark").parse(markdown) if t.type == "fence" and t.info == "mermaid"]


def test_mixed_plan_markdown_holds_a_marked_diagram() -> None:
    p = build_case("mixed")
    md = render(p, "markdown")
    blocks = _mermaid_blocks(md)
    assert blocks == [to_mermaid(plan_diagram(p))]
    diagram_source = blocks[0]
    assert '    s_gift_card["Gift Card (gift-card) \u00b7 create"] {' in diagram_source
    assert '    s_legacy_ticket["Legacy Ticket (legacy-ticket) \u00b7 destroy"] {' in diagram_source
    assert '    s_online_order["Web Order (online-order) \u00b7 update"] {' in diagram_source
    assert '        text order-coupon "Coupon, added"' in diagram_source
    assert '        text order-link "Receipt Link, deleted"' in diagram_source
    assert '        dropdown order-ship-status "Shipping Status, required, changed"' in diagram_source
    assert '        unchanged hidden "3 fields, 1 relationship"' in diagram_source
    assert 's_gift_card }o--o| n_contacts : "Owner (primary-contact), added"' in diagram_source
    # after the schemas' sections, under its own heading
    assert md.index("#### Diagram") > md.rindex("</details>")


def test_markdown_diagram_only_of_changed_schemas() -> None:
    assert "#### Diagram" not in render(build_case("trap-field-order"), "markdown")  # no changes
    assert "#### Diagram" not in render(build_case("na301-type-change"), "markdown")  # only an error
    blocked = _mermaid_blocks(render(build_case("protect-environment"), "markdown"))[0]
    assert "deleted (blocked)" in blocked and "destroy (blocked)" in blocked


def _plan_creating(count: int, fields: int = 1) -> str:
    desired = {f"s{i:03d}": schema(f"s{i:03d}", [field(f"f{j}") for j in range(fields)]) for i in range(count)}
    return render(plan(desired, {}, PlanOptions()), "markdown")


def test_markdown_diagram_left_out_past_the_limits() -> None:
    assert len(_mermaid_blocks(_plan_creating(DIAGRAM_MAX_SCHEMAS))) == 1
    md = _plan_creating(DIAGRAM_MAX_SCHEMAS + 1)
    assert _mermaid_blocks(md) == []
    assert f"Diagram left out: the plan changes {DIAGRAM_MAX_SCHEMAS + 1} schemas, more than the 30 drawn here." in md
    md = _plan_creating(3, fields=400)
    assert _mermaid_blocks(md) == []
    line = next(line for line in md.splitlines() if line.startswith("Diagram left out"))
    size = int(re.search(r"it is ([\d,]+) characters", line).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert size > DIAGRAM_MAX_CHARS and line.endswith(f"more than the {DIAGRAM_MAX_CHARS:,} drawn here.")


def test_markdown_hostile_plan_keeps_one_closed_fence() -> None:
    desired = {"end": hostile_schemas()[0]}
    md = render(plan(desired, {}, PlanOptions()), "markdown")
    blocks = _mermaid_blocks(md)
    assert blocks == [to_mermaid(plan_diagram(plan(desired, {}, PlanOptions())))]
    assert md.rstrip().endswith("```")


# ---------------------------------------------------------------------------------------------
# Parsed by the real tools


def _mmdc(tmp_path: Path, name: str, source: str) -> ET.Element:
    """The Mermaid CLI renders ``source`` to SVG (headless Chromium): it must parse it."""
    config = tmp_path / "puppeteer.json"
    config.write_text(json.dumps({"executablePath": tool("chromium"), "args": ["--no-sandbox"]}), encoding="utf-8")
    src, out = tmp_path / f"{name}.mmd", tmp_path / f"{name}.svg"
    src.write_text(source, encoding="utf-8")
    done = subprocess.run([node_tool("mmdc"), "-q", "-p", str(config), "-i", str(src), "-o", str(out)],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.stat().st_size > 0
    root = ET.fromstring(out.read_bytes())
    assert root.tag == f"{SVG}svg"
    assert "Syntax error" not in out.read_text(encoding="utf-8")
    return root


def _svg_text(root: ET.Element) -> str:
    return " ".join(t.strip() for t in root.itertext() if t.strip())


def test_mermaid_cli_parses_the_seed(tmp_path: Path) -> None:
    root = _mmdc(tmp_path, "seed", to_mermaid(seed()))
    text = _svg_text(root)
    assert "Online Order (online-order)" in text and "order-ship-status" in text and "contacts" in text


def test_mermaid_cli_parses_the_mixed_plan(tmp_path: Path) -> None:
    (block,) = _mermaid_blocks(render(build_case("mixed"), "markdown"))
    text = _svg_text(_mmdc(tmp_path, "mixed", block))
    assert "Gift Card (gift-card) \u00b7 create" in text and "Receipt Link, deleted" in text


def test_mermaid_cli_shows_hostile_labels_as_text(tmp_path: Path) -> None:
    root = _mmdc(tmp_path, "hostile", to_mermaid(hostile_schemas()))
    assert not [e for e in root.iter() if e.tag.rsplit("}", 1)[-1].lower() in ("script", "img", "b", "strong", "em")]
    assert not [e for e in root.iter() for a in e.attrib if a.lower().startswith("on")]
    text = _svg_text(root)
    assert "\u2039script\u203aalert(1)\u2039/script\u203a" in text
    # every entity was drawn: none was swallowed by a broken string
    assert text.count("(end)") >= 1 and "one \u201dx\u201d" in text and "contacts" in text


def _dot_svg(source: str) -> ET.Element:
    tool("dot")
    return ET.fromstring(run_dot(source))


def _node_titles(root: ET.Element) -> list[str]:
    return sorted(g.findtext(f"{SVG}title") or "" for g in root.iter(f"{SVG}g") if g.get("class") == "node")


def test_dot_svg_is_xml_with_one_node_per_schema() -> None:
    gift = {"id": "card", "namespace": "gift-card", "labels": {"singular": "Card", "plural": "Cards"}}
    items = [*load_desired(CASES / "mixed" / "desired").values(), schema("lines", [field("qty")], relationships=[gift])]
    root = _dot_svg(to_dot(items))
    titles = _node_titles(root)
    assert [t for t in titles if t.startswith("s_")] == ["s_gift_card", "s_lines", "s_online_order"]
    assert [t for t in titles if t.startswith("n_")] == ["n_contacts"]
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]) == 3


def test_dot_svg_shows_hostile_labels_as_text() -> None:
    root = _dot_svg(to_dot(hostile_schemas()))
    assert not [e for e in root.iter() if e.tag.rsplit("}", 1)[-1].lower() in ("script", "img")]
    assert [t for t in _node_titles(root) if t.startswith("s_")] == ["s_end", "s_one__x__"]
    assert "<script>alert(1)</script>" in _svg_text(root)


def test_to_svg_needs_graphviz(tmp_path: Path) -> None:
    with pytest.raises(GraphvizMissing, match=r"the svg format needs Graphviz .*install the graphviz package"):
        to_svg(seed(), dot=str(tmp_path / "no-such-dot"))
    tool("dot")
    svg = to_svg(seed())
    assert ET.fromstring(svg).tag == f"{SVG}svg"
    with pytest.raises(GraphvizFailed, match=r"dot -Tsvg failed \(exit code 1\): .*syntax error"):
        run_dot("digraph { a -> }")


def test_live_schemas_draw_the_same_diagram() -> None:
    """``graph --live``: the account's schemas, read by the client over HTTP, draw what the files do."""
    desired = seed()

    async def scenario() -> list[Schema]:
        with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
            async with Client(sb.url, TOKEN, rate=None) as client:
                _, result = await apply_desired(client, desired, PlanOptions())
                assert result.verified
                return await client.list_schemas()

    live = asyncio.run(scenario())
    assert to_mermaid(live) == SEED_MERMAID
    assert to_dot(live) == to_dot(desired)
    assert isinstance(diagram(live), Diagram)


# ---------------------------------------------------------------------------------------------
# The command


def test_graph_command_prints_and_writes_the_files_diagram(seed_files: Cli, tmp_path: Path) -> None:
    shown = seed_files("graph")
    assert (shown.code, shown.out) == (0, SEED_MERMAID)
    out = tmp_path / "seed.dot"
    written = seed_files("graph", "--format", "dot", "--out", str(out))
    assert written.code == 0 and written.out == ""
    assert "Wrote the dot diagram of 1 schema to" in written.err
    assert out.read_text() == to_dot(seed())


def test_graph_command_live_draws_the_account(seed_files: Cli, sandbox: object) -> None:
    """What the account holds: under a profile that ignores ``required``, no field is required there."""
    assert seed_files("apply", "--auto-approve").code == 0
    live = seed_files("graph", "--live")
    expected = SEED_MERMAID if honours_required(sandbox) else SEED_MERMAID.replace(", required", "")
    assert (live.code, live.out) == (0, expected)
    assert "Target:" in live.err and TOKEN not in live.err + live.out


def test_graph_command_svg(seed_files: Cli) -> None:
    tool("dot")
    drawn = seed_files("graph", "--format", "svg")
    assert drawn.code == 0
    assert ET.fromstring(drawn.out).tag == f"{SVG}svg"


def test_graph_command_bad_setup_is_one_line(seed_files: Cli, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    missing_dir = seed_files("graph", "--out", str(tmp_path / "nowhere" / "g.mmd"))
    assert missing_dir.code == 1 and missing_dir.err.count("\n") == 1 and "does not exist" in missing_dir.err
    monkeypatch.setenv("PATH", str(tmp_path))
    no_dot = seed_files("graph", "--format", "svg")
    assert no_dot.code == 1 and no_dot.out == ""
    assert no_dot.err.strip().startswith("Error: the svg format needs Graphviz")

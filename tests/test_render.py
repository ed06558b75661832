"""Renderers: markdown structure, colour only on request, JSON is the plan file."""

from __future__ import annotations

import re

import pytest

from reconciler.plan import Impact, Plan
from reconciler.render import render
from tests.support.golden import build_case


def _table(md: str) -> dict[str, int]:
    rows = {}
    for line in md.splitlines():
        m = re.fullmatch(r"\| (\w+) \| ([\d,]+) \|", line)
        if m:
            rows[m.group(1)] = int(m.group(2).replace(",", ""))
    return rows


def test_markdown_table_and_one_details_block_per_schema() -> None:
    p = build_case("mixed")
    md = render(p, "markdown")
    assert md.startswith("### Reconciler plan\n")
    assert "| Action | Count |" in md
    assert _table(md) == {"Add": 2, "Change": 3, "Destroy": 2}
    summaries = re.findall(r"<details><summary>(.*?)</summary>", md)
    assert len(summaries) == 3 == md.count("</details>")
    slugs = [re.search(r"<b>(.*?)</b>", s).group(1) for s in summaries]  # type: ignore[union-attr]
    assert slugs == ["gift-card", "legacy-ticket", "online-order"]
    # GitHub needs a blank line after <summary> for the fenced block inside to render
    assert all(block.startswith("\n\n```diff\n") for block in re.findall(r"</summary>(.*?)</details>", md, re.S))
    assert "**DL102**" in md and "**137 of 500 records hold a value that will be lost**" in md
    assert "**DL101**" in md and "1,204" in md


def test_markdown_errors_blocked_and_notes() -> None:
    md = render(build_case("na304-option-renamed"), "markdown")
    assert "#### Errors: not allowed by the API" in md and "**NA304**" in md and "Hint:" in md
    assert _table(md)["Errors"] == 1
    md = render(build_case("protect-environment"), "markdown")
    assert _table(md)["Blocked"] == 2 and "blocked:" in md
    md = render(build_case("trap-field-order"), "markdown")
    assert "No changes. The account matches the files." in md and "<details>" not in md
    assert "#### Notes" in md and "cannot reorder" in md


def test_markdown_narrowed_and_target() -> None:
    md = render(build_case("target").stamped(target="https://acme.api-us1.com"), "markdown")
    assert "Narrowed by `--target online-order`" in md and "`https://acme.api-us1.com`" in md


def test_text_colour_only_on_request() -> None:
    p = build_case("mixed")
    plain = render(p, "text")
    coloured = render(p, "text", color=True)
    assert "\033[" not in plain
    assert "\033[32m+ schema" in coloured and "\033[31m" in coloured
    assert re.sub(r"\033\[[\d;]*m", "", coloured) == plain


def test_text_has_legend_and_exactly_one_summary_line() -> None:
    text = render(build_case("mixed"), "text")
    assert "+ create  ~ update in-place  - destroy  ! blocked" in text
    summary = [line for line in text.splitlines() if line.startswith(("Plan:", "No changes."))]
    assert summary == ["Plan: 2 to add, 3 to change, 2 to destroy."]
    assert text.endswith("Plan: 2 to add, 3 to change, 2 to destroy.\n")


def test_unknown_impact_is_never_zero() -> None:
    p = build_case("delete-field-not-counted")
    assert "(impact not counted)" in render(p, "text")
    unknown = p.with_impacts({c.key: Impact(None, None) for c in p.changes})
    text = render(unknown, "text")
    assert "unknown number of records" in text and " 0 of" not in text
    partial = p.with_impacts({c.key: Impact(None, 500) for c in p.changes})
    assert "an unknown number of 500 records" in render(partial, "text")


def test_json_is_the_plan_file() -> None:
    p = build_case("mixed")
    assert Plan.from_json(render(p, "json")) == p


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(build_case("seed-create"), "yaml")  # type: ignore[arg-type]

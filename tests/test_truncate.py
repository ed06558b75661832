"""truncate_markdown (issue 17): a plan comment cut to the platform's limit at a line boundary, with
open code fences and <details> sections closed and a note linking to the full plan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from reconciler.render.truncate import GITHUB_COMMENT_LIMIT, GITLAB_NOTE_LIMIT, main, truncate_markdown

LINK = "https://github.com/o/r/actions/runs/1/artifacts/2"


def _md(text: str) -> list[str]:
    return [t.type for t in MarkdownIt("commonmark").parse(text)]


def test_short_text_is_unchanged() -> None:
    text = "# Plan\n\n```\nx\n```\n"
    assert truncate_markdown(text, len(text), LINK) == text
    assert GITHUB_COMMENT_LIMIT == 65_536 and GITLAB_NOTE_LIMIT == 1_000_000


def test_cut_at_a_line_boundary_with_the_note_and_link() -> None:
    text = "".join(f"line {i:04d} of the plan\n" for i in range(1000))
    out = truncate_markdown(text, 2000, LINK)
    assert len(out) <= 2000
    body, note = out.split("\n---\n", 1)
    assert text.startswith(body) and body.endswith("of the plan\n")
    assert f"(<{LINK}>)" in note and "22,000 characters, more than the 2,000" in note
    assert len(out) > 2000 - 40, "the budget is used, not wasted"


def test_an_open_code_fence_is_closed_before_the_note() -> None:
    text = "intro\n\n````diff\n" + "".join(f"+ added {i}\n" for i in range(500)) + "````\nafter\n"
    out = truncate_markdown(text, 1000, LINK)
    assert len(out) <= 1000
    assert out.count("````") == 2
    tokens = MarkdownIt("commonmark").parse(out)
    fences = [t for t in tokens if t.type == "fence"]
    assert len(fences) == 1 and "Truncated" not in fences[0].content
    assert any(t.type == "inline" and "Truncated" in t.content for t in tokens), "the note is a paragraph"


def test_tilde_fence_and_inner_backticks_are_not_confused() -> None:
    text = "~~~\n```\nnot a close\n" + "x\n" * 400 + "~~~\n"
    out = truncate_markdown(text, 300, LINK)
    assert out.split("\n---\n")[0].rstrip().endswith("~~~")
    assert "fence" in _md(out) and any("Truncated" in t.content for t in MarkdownIt().parse(out) if t.type == "inline")


def test_open_details_sections_are_closed() -> None:
    block = "<details><summary>orders</summary>\n\n" + "".join(f"- change {i}\n" for i in range(50)) + "\n</details>\n"
    text = "# Plan\n\n" + block * 40
    out = truncate_markdown(text, 3000, LINK)
    assert len(out) <= 3000
    assert out.count("<details>") == out.count("</details>")
    assert out.rstrip().endswith(f"(<{LINK}>).")
    assert out.index("Truncated") > out.rindex("</details>")


def test_bytes_unit_counts_utf8() -> None:
    text = "é" * 10 + "\n" + "ü" * 3000 + "\n"
    out = truncate_markdown(text, 1000, LINK, unit="bytes")
    assert len(out.encode()) <= 1000 and "bytes, more than the 1,000" in out
    assert truncate_markdown(text, 3100, LINK) == text, "3,012 characters fit in 3,100"


def test_a_hostile_link_cannot_break_out() -> None:
    out = truncate_markdown("x\n" * 100, 190, "https://e/a> <b>\n[x](y)")
    assert "<b>" not in out and "\n[x]" not in out and "%3E%20%3Cb%3E%0A" in out


def test_a_limit_below_the_note_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        truncate_markdown("x" * 100, 20, LINK)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["text", "```", "````", "~~~", "<details>", "</details>", "- item", "", "é"]),
                max_size=60), st.integers(min_value=200, max_value=400))
def test_never_over_the_limit_and_always_a_prefix(lines: list[str], limit: int) -> None:
    text = "".join(f"{line} {i}\n" if line in ("text", "- item", "é") else f"{line}\n" for i, line in enumerate(lines))
    out = truncate_markdown(text, limit, LINK)
    assert len(out) <= limit
    if out != text:
        cut = out[:out.index("\n---\n**Truncated:**")].splitlines(keepends=True)
        while cut and cut[-1].strip() in ("", "```", "````", "~~~", "</details>") and not text.startswith("".join(cut)):
            cut.pop()  # what the cut added: a closing fence, </details>, blank lines
        assert text.startswith("".join(cut))
        # the note is outside any code block
        tokens = MarkdownIt("commonmark").parse(out)
        assert all("Truncated" not in t.content for t in tokens if t.type in ("fence", "code_block"))


def test_script_reads_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("a line\n" * 100))
    assert main(["--limit", "300", "--link", LINK]) == 0
    assert len(capsys.readouterr().out) <= 300
    monkeypatch.setattr(sys, "stdin", io.StringIO("a line\n" * 100))
    assert main(["--limit", "10", "--link", LINK]) == 1
    assert capsys.readouterr().err.startswith("Error: a limit of 10")


def test_a_250_schema_bootstrap_plan_fits_a_github_comment(tmp_path: Path) -> None:
    """The issue's case: a bootstrap plan of 250 schemas is far over 65,536 characters."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    for i in range(250):
        fields = "".join(f"  - {{id: field-{j}, type: text, labels: {{singular: Field {j}, plural: Fields {j}}}}}\n"
                         for j in range(8))
        (schemas / f"s{i:03d}.yaml").write_text(
            f"apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: s{i:03d}\n"
            f"labels: {{singular: Thing {i}, plural: Things {i}}}\nfields:\n{fields}", encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AC_", "GITHUB_"))}
    r = subprocess.run([sys.executable, "-m", "reconciler", "plan", "--sandbox", "--format", "markdown"],
                       cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    plan = r.stdout
    assert len(plan) > GITHUB_COMMENT_LIMIT
    out = truncate_markdown(plan, GITHUB_COMMENT_LIMIT, LINK)
    assert GITHUB_COMMENT_LIMIT - 2000 < len(out) <= GITHUB_COMMENT_LIMIT
    assert out.count("<details>") == out.count("</details>")
    assert out.startswith(plan.splitlines()[0])
    assert f"{len(plan):,} characters" in out

"""Output hygiene (issue 11, acceptance 5): account data cannot take over a terminal or a markdown page.

The account is the sandbox over real HTTP, seeded through its API with what the real API accepts in
labels, descriptions and option values (any non-blank string). The files are clean. The real CLI runs
as a subprocess: on a pseudo-terminal (so colour is on) for the text output, piped for markdown,
which markdown-it-py (CommonMark, GFM tables, strikethrough, linkify) then parses as GitHub would.
"""

from __future__ import annotations

import html.parser
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from reconciler.render.markdown import md_code, md_fence, md_html, md_text
from reconciler.render.text import inert
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import TOKEN

SCHEMAS = "/api/3/customObjects/schemas"

#: What a terminal would act on: erase the line and write a fake one, a carriage return, conceal,
#: an OSC 8 hyperlink closed by BEL, a one-byte C1 CSI, and a right-to-left override.
TERMINAL = ('\x1b[2K\r~ schema "legacy" (harmless relabel)\x1b[8m'
            "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x07\x9b31m\u202eevil\u2028")
#: What markdown would act on.
MARKDOWN = ("[click](https://evil.example) ![x](https://evil.example/p.png) <img src=x onerror=alert(1)> "
            "@acme/security https://evil.example www.evil.com ``` </details> | #12 *em* ~~s~~")

ORDERS_FILE = """\
apiVersion: reconciler/v1
kind: CustomObjectSchema
slug: orders
labels: {singular: Order, plural: Orders}
description: Orders from the shop
fields:
  - id: note
    type: text
    labels: {singular: Note, plural: Notes}
  - id: status
    type: dropdown
    labels: {singular: Status, plural: Statuses}
    options: [Open]
"""


def seed(url: str, payload: str) -> None:
    """The account: ``orders`` edited in the web UI with ``payload`` everywhere it can go, and an
    unmanaged ``legacy`` schema (a delete, with ``prune: true``) labelled with it."""
    def post(body: dict[str, Any]) -> None:
        r = httpx.post(url + SCHEMAS, json={"schema": body}, headers={"Api-Token": TOKEN}, timeout=10)
        assert r.status_code == 201, r.text

    post({"slug": "orders", "labels": {"singular": f"{payload} 1", "plural": f"{payload} 2"},
          "description": f"{payload} 3",
          "fields": [{"id": "note", "type": "text", "labels": {"singular": f"{payload} 4", "plural": f"{payload} 5"},
                      "description": f"{payload} 6"},
                     {"id": "status", "type": "dropdown", "labels": {"singular": "Status", "plural": "Statuses"},
                      "options": [{"value": "Open"}, {"value": f"{payload} 7"}]}]})
    post({"slug": "legacy", "labels": {"singular": f"{payload} 8", "plural": f"{payload} 9"}, "fields": []})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "orders.yaml").write_text(ORDERS_FILE, encoding="utf-8")
    (tmp_path / "reconciler.yaml").write_text("prune: true\n", encoding="utf-8")
    return tmp_path


@pytest.fixture
def account() -> Iterator[str]:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
        yield sb.url


def environ(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "CI", "RECONCILER_DEBUG") and not k.startswith("GITHUB_")}
    env.update(AC_API_URL=url, AC_API_TOKEN=TOKEN, TERM="xterm-256color", **extra)
    return env


def on_a_terminal(cwd: Path, env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its stdin, stdout and stderr; what the terminal received."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=env,
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8")


def piped(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, encoding="utf-8")


#: Our colour codes: SGR sequences only.
_SGR = re.compile(r"\x1b\[[0-9;]*m")
#: Every character a terminal acts on except the line ends the pty itself writes (\r\n for \n).
_CONTROL = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def assert_inert_on_terminal(received: str) -> str:
    """Only SGR colour escapes, no other control character; returns the text without colour."""
    plain = _SGR.sub("", received)
    assert "\x1b" not in plain, [line for line in plain.splitlines() if "\x1b" in line]
    assert not _CONTROL.findall(plain.replace("\r\n", "\n")), sorted(set(_CONTROL.findall(plain)))
    return plain.replace("\r\n", "\n")


# ---------------------------------------------------------------------------------------------
# (a) the terminal


def test_hostile_live_labels_on_a_terminal_show_escaped(project: Path, account: str) -> None:
    seed(account, TERMINAL)
    env = environ(account)

    code, received = on_a_terminal(project, env, "plan")
    assert "Traceback" not in received and "Internal error" not in received, received
    assert _SGR.search(received), "colour is on, on a terminal"
    plain = assert_inert_on_terminal(received)
    # the delete is shown as a delete, its labels escaped on the same line
    delete = next(line for line in plain.splitlines() if line.lstrip().startswith('- schema "legacy"'))
    assert "\\x1b[2K" in delete and "\\x1b]8;;https://evil.example" in delete and "\\x07" in delete and "\\x9b31m" in delete and "\\u202e" in delete
    assert re.search(r'\x1b\[31m- schema "legacy"', received), "painted red by us"
    # label values shown as JSON: controls escaped, C1 and bidi too
    relabel = next(line for line in plain.splitlines() if "labels.singular" in line and "Order" in line)
    assert "\\u001b[2K" in relabel and "\\x9b31m" in relabel and "\\u202e" in relabel
    assert code == 1  # the NA304 error (an option added in the account) makes the plan fail

    code, received = on_a_terminal(project, env, "drift")
    assert code == 2, received
    plain = assert_inert_on_terminal(received)
    assert "orders: labels.singular differs" in plain and "\\u001b]8;;https://evil.example\\u0007" in plain

    # piped: no colour, and nothing of the payload's escapes survives either (OSC included)
    for args in (("plan",), ("drift",), ("plan", "--format", "markdown"), ("drift", "--format", "markdown")):
        p = piped(project, env, *args)
        assert p.returncode in (1, 2), p.stderr
        assert not _CONTROL.findall(p.stdout + p.stderr), (args, sorted(set(_CONTROL.findall(p.stdout))))


# ---------------------------------------------------------------------------------------------
# (b) markdown


def parser() -> MarkdownIt:
    return MarkdownIt("gfm-like")  # CommonMark + tables, strikethrough, linkify, raw HTML allowed


def walk(tokens: list[Token]) -> Iterator[Token]:
    for t in tokens:
        yield t
        if t.children:
            yield from walk(t.children)


class _Tags(html.parser.HTMLParser):
    """The tags of a raw HTML block, and its text as a browser shows it (entities decoded)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


#: The HTML we write ourselves: the collapsible block per schema.
OUR_TAGS = {"details", "summary", "code", "b"}
#: ``@name`` or ``#123`` where GitHub would see a mention or a reference.
_MENTION = re.compile(r"(?<![\w])[@#][A-Za-z0-9]")


def assert_inert_markdown(document: str) -> dict[str, int]:
    """No link, image, autolink, mention or foreign HTML; returns the document's structure counts."""
    tokens = parser().parse(document)
    structure: dict[str, int] = {}
    for t in walk(tokens):
        structure[t.type] = structure.get(t.type, 0) + 1
        assert t.type not in ("link_open", "image", "html_inline"), (t.type, t.content, t.attrs)
        if t.type == "html_block":
            tags = _Tags()
            tags.feed(t.content)
            assert {tag for tag, _ in tags.tags} <= OUR_TAGS and all(not a for _, a in tags.tags), t.content
            assert not _MENTION.search("".join(tags.text)), t.content
        if t.type == "text":
            assert not _MENTION.search(t.content), t.content
    return structure


def markdown_outputs(project: Path, url: str, summary: Path) -> dict[str, str]:
    env = environ(url, GITHUB_STEP_SUMMARY=str(summary))
    plan = piped(project, env, "plan", "--format", "markdown")
    drift = piped(project, env, "drift", "--format", "markdown")
    for p in (plan, drift):
        assert p.returncode in (1, 2) and "Traceback" not in p.stderr and "Internal error" not in p.stderr, p.stderr
    return {"plan": plan.stdout, "drift": drift.stdout, "step summary": summary.read_text(encoding="utf-8")}


def test_markdown_payload_makes_no_link_image_mention_or_html(project: Path, tmp_path: Path) -> None:
    outputs = {}
    for name, payload in (("clean", "Plain words"), ("hostile", MARKDOWN)):
        with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb:
            seed(sb.url, payload)
            outputs[name] = markdown_outputs(project, sb.url, tmp_path / f"summary-{name}.md")
    for kind, document in outputs["hostile"].items():
        structure = assert_inert_markdown(document)
        # the same tables, rows, cells, lists and blocks as with ordinary labels
        clean = assert_inert_markdown(outputs["clean"][kind])
        assert structure.get("tr_open", 0) > 0 if kind == "drift" else True
        for part in ("table_open", "tr_open", "td_open", "th_open", "list_item_open", "fence", "html_block",
                     "heading_open", "paragraph_open"):
            assert structure.get(part, 0) == clean.get(part, 0), (kind, part, structure, clean)
        # and the payload is still shown, as text
        shown = " ".join(t.content for t in walk(parser().parse(document)) if t.type in ("text", "fence", "code_inline"))
        assert "evil.example" in shown and "onerror" in shown and "acme/security" in shown, kind
    assert "[click](https://evil.example)" in outputs["hostile"]["plan"]  # in the diff block, verbatim


# ---------------------------------------------------------------------------------------------
# The escaping functions themselves


@pytest.mark.parametrize("value", [MARKDOWN, TERMINAL, "`", "``a``", " x ", "a\\|b", "\\", "1. item", "- item",
                                   "    code", "# heading", "> quote", "<https://x.example>", "a@b.example",
                                   "&amp;", "line\nbreak", "---", "www.x.com", "| a | b |"])
def test_every_escape_renders_the_value_and_nothing_else(value: str) -> None:
    md = parser()
    shown = inert(value)  # what the reader sees: controls escaped, one line

    def texts(src: str) -> str:
        tokens = md.parse(src)
        assert_inert_markdown(src)
        return "".join(t.content for t in walk(tokens) if t.type in ("text", "code_inline", "softbreak"))

    # running text after a list marker and in a table cell
    assert texts(f"- {md_text(value)}\n").replace("\u2060", "").strip() == shown.strip()
    rows = md.parse(f"| a | b |\n| - | - |\n| {md_text(value)} | {md_code(value, table=True)} |\n")
    cells = [t for t in walk(rows) if t.type == "td_open"]
    assert len(cells) == 2
    inline = [t for t in walk(rows) if t.type == "inline"][2:]
    cell = "".join(c.content for c in walk(inline[0].children or []) if c.type == "text")
    assert cell.replace("\u2060", "").strip() == shown.strip()
    assert [c.content for c in inline[1].children or [] if c.type == "code_inline"] == [shown]
    # a code span, a fenced block
    spans = [t.content for t in walk(md.parse(f"x {md_code(value)} y\n")) if t.type == "code_inline"]
    assert spans == [shown]
    fences = [t for t in md.parse("\n".join(md_fence([value, "after"], "diff")) + "\n\nnext\n") if t.type == "fence"]
    assert len(fences) == 1 and fences[0].content == f"{shown}\nafter\n"
    # HTML text of ours
    summary = md.parse(f"<details><summary>{md_html(value)}</summary>\n\nbody\n")
    assert_inert_markdown(f"<details><summary>{md_html(value)}</summary>\n\nbody\n")
    assert summary[0].type == "html_block"

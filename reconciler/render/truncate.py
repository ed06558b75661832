"""A markdown document cut to fit a comment: GitHub refuses a comment body over 65,536 characters,
GitLab a note over 1,000,000 (characters in its model validation; its API docs say 1 MB, so the GitLab
examples count UTF-8 bytes, the stricter reading).

:func:`truncate_markdown` keeps whole lines, closes a code fence and ``<details>`` sections left open
by the cut (so the note after them is not swallowed by a code block or a collapsed section), and
appends a note with a link to the full document (the plan artefact). The result never exceeds the
limit. As a script, for CI steps (``python -m reconciler.render.truncate --limit 65536 --link URL
< plan.md > comment.md``).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Literal

__all__ = ["GITHUB_COMMENT_LIMIT", "GITLAB_NOTE_LIMIT", "truncate_markdown"]

GITHUB_COMMENT_LIMIT = 65_536
GITLAB_NOTE_LIMIT = 1_000_000

Unit = Literal["chars", "bytes"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_DETAILS_OPEN = re.compile(r"<details\b", re.I)
_DETAILS_CLOSE = re.compile(r"</details\s*>", re.I)


def _size(text: str, unit: Unit) -> int:
    return len(text.encode("utf-8")) if unit == "bytes" else len(text)


def _link(url: str) -> str:
    """``url`` as a link destination that cannot break out of the link (CommonMark ``<…>`` form)."""
    safe = re.sub(r"[<>\s]", lambda m: f"%{ord(m.group()):02X}", url)
    return f"[the full plan](<{safe}>)"


def _note(total: int, limit: int, unit: Unit, link: str) -> str:
    what = "bytes" if unit == "bytes" else "characters"
    return (f"\n---\n**Truncated:** this document is {total:,} {what}, more than the {limit:,} a comment "
            f"can hold. Read {_link(link)}.\n")


class _State:
    """What is open after a line: the fence that opened a code block, and ``<details>`` depth."""

    def __init__(self) -> None:
        self.fence: str | None = None
        self.details = 0

    def feed(self, line: str) -> None:
        m = _FENCE.match(line)
        if self.fence is not None:
            # a closing fence: the same character, at least as long, nothing after it but spaces
            if m and m.group(1)[0] == self.fence[0] and len(m.group(1)) >= len(self.fence) and not m.group(2).strip():
                self.fence = None
            return
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            self.fence = m.group(1)
            return
        self.details += len(_DETAILS_OPEN.findall(line)) - len(_DETAILS_CLOSE.findall(line))
        self.details = max(self.details, 0)

    def closing(self) -> str:
        parts = [f"{self.fence}\n"] if self.fence is not None else []
        if self.details:
            parts.append("\n" + "</details>\n" * self.details)
        return "".join(parts)


def truncate_markdown(text: str, limit: int, link: str, *, unit: Unit = "chars") -> str:
    """``text`` unchanged when it fits in ``limit``; else its first whole lines, what they left open
    closed, and a note linking to ``link``. Raises ``ValueError`` when even the note does not fit."""
    total = _size(text, unit)
    if total <= limit:
        return text
    note = _note(total, limit, unit, link)
    budget = limit - _size(note, unit)
    if budget < 0:
        raise ValueError(f"a limit of {limit} is too small for the truncation note")
    lines = text.splitlines(keepends=True)
    state = _State()
    kept: list[str] = []
    used = 0
    for line in lines:
        if not line.endswith("\n"):
            line += "\n"
        after = _State()
        after.fence, after.details = state.fence, state.details
        after.feed(line)
        if used + _size(line, unit) + _size(after.closing(), unit) > budget:
            break
        kept.append(line)
        used += _size(line, unit)
        state = after
    return "".join(kept) + state.closing() + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reconciler.render.truncate",
                                     description="Cut markdown on standard input to fit a comment.")
    parser.add_argument("--limit", type=int, default=GITHUB_COMMENT_LIMIT)
    parser.add_argument("--link", required=True, help="where the full document is (the plan artefact)")
    parser.add_argument("--unit", choices=["chars", "bytes"], default="chars")
    args = parser.parse_args(argv)
    text = sys.stdin.read()
    try:
        out = truncate_markdown(text, args.limit, args.link, unit=args.unit)
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

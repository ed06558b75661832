"""Terminal rendering, Terraform style: legend, one block per schema, notes, one summary line (then
what applying the plan costs, when the plan states it at a rate).

```
  + schema "online-order" (Online Order / Online Orders)
      + field "order-number" (number scale 0, required)
  ~ schema "customer"
      ~ field "tier": labels.singular "Tier" -> "Level"
      - field "legacy-code" (text)
          ! DL102 delete field customer.legacy-code: 137 of 500 records hold a value that will be lost
      # (3 unchanged fields hidden)
```

ANSI colour only when asked (the CLI decides: a TTY and no ``NO_COLOR``). Every line is written by
:meth:`_Out.add`, which makes the text inert (:func:`inert`) and only then adds the colour codes: the
escape sequences in the output are ours, whatever the account's labels hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from reconciler.plan import Change, CopyField, CreateSchema, Finding, Plan, PlanError
from reconciler.render import (
    DRIFT_LEGEND,
    LEGEND,
    SchemaBlock,
    change_text,
    drift_groups,
    field_brief,
    schema_blocks,
)
from reconciler.render.words import (
    drift_message,
    drift_summary_line,
    estimate_line,
    finding_line,
    hidden_text,
    summary_line,
)

if TYPE_CHECKING:
    from reconciler.drift import DriftReport

__all__ = ["inert", "render_drift_text", "render_text"]

#: What a terminal may act on: C0 controls (ESC, BEL, CR, backspace …) but not newline or tab
#: (kept only where ``keep_newlines``), DEL, C1 controls (U+0080-U+009F, e.g. the one-byte CSI),
#: the bidirectional overrides and isolates that reorder what is shown (Trojan Source), and the
#: Unicode line and paragraph separators (a line break to anything that splits lines by Unicode).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\n\t]")


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def inert(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` safe to print on a terminal: every control character shown escaped (``\\x1b``).

    The one escaping function of terminal output: account data, API error texts and file names
    pass through it before they are printed. With ``keep_newlines``, ``\\n`` and tabs stay as they are
    (multi-line output built by reconciler itself); otherwise they are escaped too, so a value can
    never start a fake line of its own.
    """
    pattern = _UNSAFE if keep_newlines else _UNSAFE_LINES
    return pattern.sub(_escape_char, text) if pattern.search(text) else text


_RESET = "\033[0m"
#: Our colours (SGR codes only), by style: the change symbols, finding severities and a few more.
_COLORS = {"+": "\033[32m", "~": "\033[33m", "»": "\033[36m", "-": "\033[31m", "!": "\033[31m",
           "danger": "\033[31m", "warning": "\033[33m", "error": "\033[1;31m", "dim": "\033[2m", "bold": "\033[1m",
           "info": "\033[36m"}

#: A piece of a line: its text (any origin) and its style (None: not coloured).
Span = tuple[str, str | None]


class _Out:
    """The lines of a text document. :meth:`add` is the only way in: inert first, then colour."""

    def __init__(self, color: bool):
        self.color = color
        self.lines: list[str] = []

    def add(self, text: str = "", style: str | None = None, *, indent: str = "") -> None:
        """One line: ``indent`` then ``text``, made inert and painted in ``style``."""
        self.spans([(text, style)], indent=indent)

    def spans(self, parts: Iterable[Span], *, indent: str = "") -> None:
        """One line of several differently painted pieces."""
        self.lines.append(indent + "".join(self._paint(inert(text), style) for text, style in parts))

    def _paint(self, text: str, style: str | None) -> str:
        if not self.color or style not in _COLORS or not text:
            return text
        return f"{_COLORS[style]}{text}{_RESET}"

    def text(self) -> str:
        return "\n".join(self.lines)


def _finding(out: _Out, f: Finding, indent: str) -> None:
    out.add(f"! {finding_line(f)}", f.severity, indent=indent)


def _change(out: _Out, c: Change, indent: str) -> None:
    head, props = change_text(c)
    sym = c.symbol
    if len(props) == 1 and not isinstance(c, CopyField):
        out.add(f"{sym} {head}: {props[0].replace(': ', ' ', 1)}", sym, indent=indent)
    else:
        out.add(f"{sym} {head}", sym, indent=indent)
        for p in props:
            out.add(p, indent=indent + "    ")
    if c.blocked:
        out.add(f"# blocked: {c.blocked_reason}", "dim", indent=indent + "    ")
    for f in c.findings:
        _finding(out, f, indent + "    ")


def _error(out: _Out, e: PlanError, indent: str) -> None:
    out.add(f"! {e.code} {e.message}", "error", indent=indent)
    out.add(f"hint: {e.hint}", indent=indent + "    ")


def _block(out: _Out, b: SchemaBlock) -> None:
    sc = b.schema_change
    if sc is not None and not isinstance(sc, CreateSchema):
        head, props = change_text(sc)
        out.add(f"{b.symbol} {head}", b.symbol, indent="  ")
        if sc.blocked:
            out.add(f"# blocked: {sc.blocked_reason}", "dim", indent="      ")
        for p in props:
            out.add(f"~ {p}", "~", indent="      ")
        for f in sc.findings:
            _finding(out, f, "      ")
    elif isinstance(sc, CreateSchema):
        head, _ = change_text(sc)
        out.add(f"+ {head}", "+", indent="  ")
        schema = sc.after
        if schema is not None:
            for fld in schema.active_fields:
                out.add(f'+ field "{fld.id}" {field_brief(fld)}', "+", indent="      ")
            for rel in schema.relationships:
                out.add(f'+ relationship "{rel.id}" ({rel.namespace})', "+", indent="      ")
        for f in sc.findings:
            _finding(out, f, "      ")
    else:
        out.add(f'{b.symbol} schema "{b.slug}"', b.symbol, indent="  ")
    for item in b.items:
        if isinstance(item, PlanError):
            _error(out, item, "      ")
        else:
            _change(out, item, "      ")
    hidden = hidden_text(b.hidden_fields, b.hidden_relationships)
    if hidden:
        out.add(hidden, "dim", indent="      ")


def render_text(plan: Plan, color: bool = False) -> str:
    """The plan for a terminal. Ends with exactly one summary line (and a newline), then what
    applying it costs when the plan states that at a rate (:meth:`~reconciler.plan.Estimate.line`).

    The target is not repeated here: every command prints it as its first line.
    """
    out = _Out(color)
    blocks = schema_blocks(plan)
    if blocks:
        legend: list[Span] = [("Symbols: ", None)]
        for n, part in enumerate(LEGEND.split("  ")):
            legend += [("  " if n else "", None), (part, part[0])]
        out.spans(legend)
        out.add()
        out.add("Reconciler will perform the following actions:")
        out.add()
        for b in blocks:
            _block(out, b)
            out.add()
    if plan.notes:
        out.add("Notes:")
        for note in plan.notes:
            out.add(f"- {note.message}", indent="  ")
        out.add()
    out.add(summary_line(plan), "bold")
    cost = estimate_line(plan.estimate)
    if cost:
        out.add(cost)
    return out.text() + "\n"


#: The style of a drift item's symbol where it is not the symbol itself.
_DRIFT_STYLES = {"!": "error", "i": "info", "#": "dim"}


def render_drift_text(report: DriftReport, color: bool = False) -> str:
    """A drift report for a terminal: the legend, one block per schema, the summary line (no newline)."""
    out = _Out(color)
    if report.items:
        out.add(DRIFT_LEGEND, indent="  ")
        out.add()
    for slug, ts, items in drift_groups(report):
        when = f" (account updated {ts})" if ts else " (not in the account)"
        out.add(f'schema "{slug}"{when}')
        for i in items:
            stamp = i.updated or "n/a"
            if i.ignored_by is not None:
                out.add(f"# {drift_message(i)} [{stamp}] (ignored by {i.ignored_by!r})", "dim", indent="    ")
            else:
                out.add(f"{i.symbol} {drift_message(i)} [{stamp}]", _DRIFT_STYLES.get(i.symbol, i.symbol), indent="    ")
        out.add()
    out.add(drift_summary_line(report))
    return out.text()

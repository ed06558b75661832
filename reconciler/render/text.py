"""Terminal rendering, Terraform style: legend, one block per schema, notes, one summary line.

```
  + schema "online-order" (Online Order / Online Orders)
      + field "order-number" (number scale 0, required)
  ~ schema "customer"
      ~ field "tier": labels.singular "Tier" -> "Level"
      - field "legacy-code" (text)
          ! DL102 delete field customer.legacy-code: 137 of 500 records hold a value that will be lost
      # (3 unchanged fields hidden)
```

ANSI colour only when asked (the CLI decides: a TTY and no ``NO_COLOR``).
"""

from __future__ import annotations

import re

from reconciler.plan import Change, CreateSchema, Finding, Plan, PlanError
from reconciler.render import LEGEND, SchemaBlock, change_text, field_brief, plural, schema_blocks

__all__ = ["inert", "render_text"]

#: What a terminal may act on: C0 controls (ESC, BEL, CR, backspace …) but not newline or tab
#: (kept only where ``keep_newlines``), DEL, C1 controls (U+0080-U+009F, e.g. the one-byte CSI),
#: and the bidirectional overrides and isolates that reorder what is shown (Trojan Source).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\n\t]")


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
_COLORS = {"+": "\033[32m", "~": "\033[33m", "-": "\033[31m", "!": "\033[31m",
           "danger": "\033[31m", "warning": "\033[33m", "error": "\033[1;31m", "dim": "\033[2m", "bold": "\033[1m"}


class _Out:
    def __init__(self, color: bool):
        self.color = color
        self.lines: list[str] = []

    def paint(self, text: str, style: str) -> str:
        if not self.color or style not in _COLORS:
            return text
        return f"{_COLORS[style]}{text}{_RESET}"

    def add(self, text: str = "") -> None:
        self.lines.append(text)


def _finding(out: _Out, f: Finding, indent: str) -> None:
    text = f"! {f.line()}"
    out.add(indent + out.paint(text, f.severity))


def _change(out: _Out, c: Change, indent: str) -> None:
    head, props = change_text(c)
    sym = c.symbol
    if len(props) == 1:
        out.add(indent + out.paint(f"{sym} {head}: {props[0].replace(': ', ' ', 1)}", sym))
    else:
        out.add(indent + out.paint(f"{sym} {head}", sym))
        for p in props:
            out.add(indent + "    " + p)
    if c.blocked:
        out.add(indent + "    " + out.paint(f"# blocked: {c.blocked_reason}", "dim"))
    for f in c.findings:
        _finding(out, f, indent + "    ")


def _error(out: _Out, e: PlanError, indent: str) -> None:
    out.add(indent + out.paint(f"! {e.code} {e.message}", "error"))
    out.add(indent + "    " + f"hint: {e.hint}")


def _block(out: _Out, b: SchemaBlock) -> None:
    sc = b.schema_change
    if sc is not None and not isinstance(sc, CreateSchema):
        head, props = change_text(sc)
        out.add("  " + out.paint(f"{b.symbol} {head}", b.symbol))
        if sc.blocked:
            out.add("      " + out.paint(f"# blocked: {sc.blocked_reason}", "dim"))
        for p in props:
            out.add("      " + out.paint(f"~ {p}", "~"))
        for f in sc.findings:
            _finding(out, f, "      ")
    elif isinstance(sc, CreateSchema):
        head, _ = change_text(sc)
        out.add("  " + out.paint(f"+ {head}", "+"))
        schema = sc.after
        if schema is not None:
            for fld in schema.active_fields:
                out.add("      " + out.paint(f'+ field "{fld.id}" {field_brief(fld)}', "+"))
            for rel in schema.relationships:
                out.add("      " + out.paint(f'+ relationship "{rel.id}" ({rel.namespace})', "+"))
        for f in sc.findings:
            _finding(out, f, "      ")
    else:
        out.add("  " + out.paint(f'{b.symbol} schema "{b.slug}"', b.symbol))
    for item in b.items:
        if isinstance(item, PlanError):
            _error(out, item, "      ")
        else:
            _change(out, item, "      ")
    hidden = []
    if b.hidden_fields:
        hidden.append(plural(b.hidden_fields, "unchanged field"))
    if b.hidden_relationships:
        hidden.append(plural(b.hidden_relationships, "unchanged relationship"))
    if hidden:
        out.add("      " + out.paint(f"# ({', '.join(hidden)} hidden)", "dim"))


def render_text(plan: Plan, color: bool = False) -> str:
    """The plan for a terminal. Ends with exactly one summary line (and a newline).

    The target is not repeated here: every command prints it as its first line.
    """
    out = _Out(color)
    blocks = schema_blocks(plan)
    if blocks:
        out.add("Symbols: " + "  ".join(out.paint(part, part[0]) for part in LEGEND.split("  ")))
        out.add()
        out.add("Reconciler will perform the following actions:")
        out.add()
        for b in blocks:
            _block(out, b)
            out.add()
    if plan.notes:
        out.add("Notes:")
        for n in plan.notes:
            out.add(f"  - {n.message}")
        out.add()
    out.add(out.paint(plan.summary_line(), "bold"))
    return "\n".join(out.lines) + "\n"

"""``apply --json``: every line of standard output one event, in order, the outcome in the last."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.render.events import EVENT_TYPES, EventStream
from tests.conftest import TOKEN, Cli


def events(out: str) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in out.splitlines()]
    for e in parsed:
        assert e["type"] in EVENT_TYPES and isinstance(e["@message"], str) and e["@timestamp"].endswith("Z")
    return parsed


def test_applied_then_no_changes(seed_files: Cli) -> None:
    r = seed_files("apply", "--json", "--auto-approve")
    assert r.code == 0, r.err
    got = events(r.out)
    assert [e["type"] for e in got] == ["version", "target", "planned", "step", "summary"]
    assert got[2]["summary"]["add"] == 1
    assert got[2]["changes"] == [{"key": "online-order:create-schema", "kind": "create-schema", "action": "add",
                                  "describe": "create schema online-order"}]
    assert got[3]["status"] == "done" and got[3]["slug"] == "online-order"
    assert got[-1] | {"@timestamp": ""} == {
        "@message": "Apply complete! Resources: 1 added, 0 changed, 0 destroyed.", "@timestamp": "",
        "type": "summary", "outcome": "applied", "added": 1, "changed": 0, "destroyed": 0, "exit_code": 0}
    assert TOKEN not in r.out + r.err
    assert r.err.startswith("Target: ")  # the people's lines go to standard error, or nowhere

    again = seed_files("apply", "--json", "--auto-approve")
    assert again.code == 0
    assert [(e["type"], e.get("outcome")) for e in events(again.out)][-1] == ("summary", "no_changes")


def test_refused_data_loss(seed_files: Cli) -> None:
    assert seed_files("apply", "--auto-approve").code == 0
    path = seed_files.schemas / "orders.yaml"
    text = path.read_text()
    start = text.index("  - id: order-link\n")
    path.write_text(text[:start] + text[text.index("  - id: ", start + 1):])
    r = seed_files("apply", "--json", "--auto-approve")
    assert r.code == 3
    got = events(r.out)
    refused = next(e for e in got if e["type"] == "refused")
    assert any("DL102" in reason for reason in refused["reasons"])
    assert (got[-1]["outcome"], got[-1]["exit_code"]) == ("refused", 3)
    assert "step" not in {e["type"] for e in got}


def test_saved_plan(seed_files: Cli) -> None:
    assert seed_files("plan", "--out", "plan.json").code == 0
    r = seed_files("apply", "plan.json", "--json")
    assert r.code == 0, r.err
    assert [e["type"] for e in events(r.out)] == ["version", "target", "planned", "step", "summary"]


def test_needs_approval_in_advance(seed_files: Cli) -> None:
    r = seed_files("apply", "--json")
    assert (r.code, r.out) == (1, "")
    assert r.err.strip() == ("Error: apply --json needs --auto-approve or a saved PLANFILE: it cannot ask for "
                             "confirmation")


def test_an_error_is_the_last_event(seed_files: Cli) -> None:
    r = seed_files("apply", "--json", "--auto-approve", "--url", "http://127.0.0.1:9")
    assert r.code == 1
    last = events(r.out)[-1]
    assert (last["type"], last["outcome"], last["exit_code"]) == ("summary", "error", 1)
    assert "127.0.0.1:9" in last["@message"] and TOKEN not in r.out


def test_event_stream_escapes_and_knows_its_types() -> None:
    lines: list[str] = []
    stream = EventStream(lines.append, now=lambda: "2026-01-01T00:00:00.000Z")
    stream.emit("step", "a\x1b[2Jb\u202e", slug="x")
    assert lines == ['{"@message":"a\\u001b[2Jb\\u202e","@timestamp":"2026-01-01T00:00:00.000Z",'
                     '"type":"step","slug":"x"}']
    with pytest.raises(ValueError, match="unknown event type 'nope'"):
        stream.emit("nope", "")


def test_the_readme_lists_every_event_type() -> None:
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    start = readme.index("### Machine-readable progress")
    table = readme[start:readme.index("```", start)]
    assert {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")} == set(EVENT_TYPES)

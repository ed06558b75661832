"""``apply --json``: every line of standard output one event, in order, the outcome in the last."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler.json_schema import json_schema
from reconciler.render.events import EVENT_TYPES, EventStream
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import ROOT, TOKEN, Cli, profile_settings

VALIDATOR = jsonschema.Draft202012Validator(json_schema("events"))


def events(out: str) -> list[dict[str, Any]]:
    """Each line of ``out`` as an event, validated against the published schema."""
    parsed = [json.loads(line) for line in out.splitlines()]
    for e in parsed:
        errors = [err.message for err in VALIDATOR.iter_errors(e)]
        assert not errors, (e, errors)
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
    _drop(seed_files, "order-link")
    r = seed_files("apply", "--json", "--auto-approve")
    assert r.code == 3
    got = events(r.out)
    refused = next(e for e in got if e["type"] == "refused")
    assert any("DL102" in reason for reason in refused["reasons"])
    assert (got[-1]["outcome"], got[-1]["exit_code"]) == ("refused", 3)
    assert "step" not in {e["type"] for e in got}


def test_a_retry_and_a_refusal_in_the_event_sequence(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a sandbox answering 429 to some requests with a Retry-After long enough to be told
    (over 2 s): the waits are events between the others; then a plan that deletes a field is
    refused, in events too."""
    settings = profile_settings("documented", faults="429=0.4", fault_seed=1, retry_after_s=2.1)
    seed_files = Cli(tmp_path, capsys, monkeypatch)
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "schemas" / "orders.yaml", seed_files.schemas.parent / "orders.yaml")
    seed_files.schemas.mkdir()
    shutil.move(tmp_path / "orders.yaml", seed_files.schemas / "orders.yaml")
    with running_sandbox(settings) as sb:
        monkeypatch.setenv("AC_API_URL", sb.url)
        monkeypatch.setenv("AC_API_TOKEN", TOKEN)
        r = seed_files("apply", "--json", "--auto-approve")
        assert r.code == 0, r.err
        got = events(r.out)
        kinds = [e["type"] for e in got]
        assert "wait" in kinds, kinds
        assert [k for k in kinds if k != "wait"] == ["version", "target", "planned", "step", "summary"]
        assert kinds.index("wait") > kinds.index("planned")
        assert got[-1]["outcome"] == "applied"
        assert sb.traffic.log and any(e.status == 429 for e in sb.traffic.log)

        _drop(seed_files, "order-link")
        refused = seed_files("apply", "--json", "--auto-approve")
        assert refused.code == 3
        kinds = [e["type"] for e in events(refused.out) if e["type"] != "wait"]
        assert kinds == ["version", "target", "planned", "refused", "summary"]


def test_the_events_schema_is_published(seed_files: Cli) -> None:
    r = seed_files("json-schema", "--kind", "events")
    assert r.code == 0
    doc = json.loads(r.out)
    assert set(doc["discriminator"]["mapping"]) == set(EVENT_TYPES)
    assert not VALIDATOR.is_valid({"@message": "", "@timestamp": "2026-01-01T00:00:00.000Z", "type": "summary",
                                   "outcome": "fine"})


def _drop(cli: Cli, field_id: str) -> None:
    path = cli.schemas / "orders.yaml"
    text = path.read_text()
    start = text.index(f"  - id: {field_id}\n")
    path.write_text(text[:start] + text[text.index("  - id: ", start + 1):])


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
    stream.emit("wait", "a\x1b[2Jb\u202e")
    assert lines == ['{"@message":"a\\u001b[2Jb\\u202e","@timestamp":"2026-01-01T00:00:00.000Z","type":"wait"}']
    with pytest.raises(ValueError, match="unknown event type 'nope'"):
        stream.emit("nope", "")
    with pytest.raises(ValueError):  # a key its model does not have is refused, not written
        stream.emit("wait", "", slug="x")
    assert len(lines) == 1


def test_the_readme_lists_every_event_type() -> None:
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    start = readme.index("### Machine-readable progress")
    table = readme[start:readme.index("```", start)]
    assert {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")} == set(EVENT_TYPES)

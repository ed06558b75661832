"""Backups before destructive applies (issue 16), end to end through the CLI against a served sandbox:
the values a field delete loses are saved first, exactly as many as the plan counted, and
``records restore`` puts them back into a re-created field."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from tests.conftest import TOKEN, Cli
from tests.support.records import seed_orders

BACKUP_LINE = re.compile(r"^Backup: ([\d,]+) records? of (\S+) in (.+)/$", re.M)
NOTES = """  - id: order-notes
    type: textarea
    labels: {singular: Notes, plural: Notes}
"""


def _api(sandbox: Any, path: str, **params: Any) -> Any:
    r = httpx.get(f"{sandbox.url}/api/3{path}", headers={"Api-Token": TOKEN}, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _schema(sandbox: Any) -> SimpleNamespace:
    (doc,) = _api(sandbox, "/customObjects/schemas", showFields="all")["schemas"]
    return SimpleNamespace(id=doc["id"], slug=doc["slug"])


def _values(sandbox: Any, schema_id: str, field_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    offset = 0
    while True:
        page = _api(sandbox, f"/customObjects/records/{schema_id}", limit=100, offset=offset,
                    **{"orders[createdTimestamp]": "ASC"})  # a stable order to page through
        for r in page["records"]:
            for f in r["fields"]:
                if f["id"] == field_id and f.get("value") not in (None, ""):
                    out[r["id"]] = f["value"]
        offset += len(page["records"])
        if len(page["records"]) < 100:
            return out


def _drop_field(cli: Cli, field_id: str) -> str:
    path = cli.schemas / "orders.yaml"
    text = path.read_text()
    start = text.index(f"  - id: {field_id}\n")
    end = text.index("  - id: ", start + 1)
    path.write_text(text[:start] + text[end:])
    return path.read_text()


def _seeded(cli: Cli, sandbox: Any, count: int, holding: int) -> str:
    assert cli("apply", "--auto-approve").code == 0
    schema = _schema(sandbox)
    seed_orders(sandbox, schema, count, holding, contacts=3)
    return str(schema.id)


def _writes(sandbox: Any) -> int:
    return sum(1 for e in sandbox.traffic.log if e.method in ("PUT", "DELETE", "POST"))


def test_backup_then_restore_into_a_recreated_field(seed_files: Cli, sandbox: Any) -> None:
    """Acceptance 1: 500 records, 137 holding order-instructions; the delete writes a backup of
    exactly 137; re-created as order-notes (a new id), restore brings all 137 back, identical."""
    cli = seed_files
    schema_id = _seeded(cli, sandbox, 500, 137)
    before = _values(sandbox, schema_id, "order-instructions")
    assert len(before) == 137

    text = _drop_field(cli, "order-instructions")
    planned = cli("plan", "--out", "plan.json")
    assert "137 of 500 records hold a value that will be lost" in planned.out
    assert json.loads((cli.workdir / "plan.json").read_text())["estimate"]["backup"] == 2  # two pages of 100

    applied = cli("apply", "plan.json", "--allow-data-loss")
    assert applied.code == 0, applied.out + applied.err
    (line,) = BACKUP_LINE.findall(applied.out)
    assert line[:2] == ("137", "online-order.order-instructions")
    folder = Path(line[2])
    assert folder.parent.parent == cli.workdir / ".reconciler" / "backups"
    data = folder / "online-order.order-instructions.ndjson"
    lines = data.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 137
    assert {json.loads(x)["id"] for x in lines} == set(before)
    assert stat.S_IMODE(data.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["complete"], manifest["total"]) == (True, 137)
    assert applied.out.index("Backup: ") < applied.out.index("delete field online-order.order-instructions …")
    assert TOKEN not in "".join(p.read_text() for p in folder.iterdir())

    cli.write("orders.yaml", text.replace("  - id: order-total\n", NOTES + "  - id: order-total\n"))
    assert cli("apply", "--auto-approve").code == 0
    restored = cli("records", "restore", str(folder), "--field", "order-instructions", "--into", "order-notes")
    assert restored.code == 0, restored.err
    assert _values(sandbox, schema_id, "order-notes") == before  # every value back, byte for byte
    assert cli("plan", "--detailed-exitcode").code == 0


def test_a_count_that_changed_since_the_plan_stops_everything(seed_files: Cli, sandbox: Any) -> None:
    cli = seed_files
    schema_id = _seeded(cli, sandbox, 40, 10)
    _drop_field(cli, "order-instructions")
    assert cli("plan", "--out", "plan.json").code == 0
    httpx.post(f"{sandbox.url}/api/3/customObjects/records/{schema_id}", headers={"Api-Token": TOKEN},
               json={"record": {"externalId": "late", "fields": [
                   {"id": "order-number", "value": 9}, {"id": "order-date", "value": "2026-01-01T00:00:00Z"},
                   {"id": "order-ship-status", "value": "Received"},
                   {"id": "order-instructions", "value": "written after the plan"}]}}).raise_for_status()
    writes = _writes(sandbox)
    r = cli("apply", "plan.json", "--allow-data-loss")
    assert r.code == 1
    assert "11 records read, the plan counted 10" in r.err and r.err.rstrip().endswith("Nothing was changed.")
    assert r.err.count("\n") == 1
    assert _writes(sandbox) == writes
    fields = {f["id"]: f for f in _api(sandbox, "/customObjects/schemas", showFields="all")["schemas"][0]["fields"]}
    assert fields["order-instructions"].get("status") != "marked_for_deletion"


def test_no_backup_is_said_and_writes_nothing(seed_files: Cli, sandbox: Any) -> None:
    cli = seed_files
    _seeded(cli, sandbox, 20, 5)
    _drop_field(cli, "order-instructions")
    r = cli("apply", "--auto-approve", "--allow-data-loss", "--no-backup", "--json")
    assert r.code == 0, r.err
    events = [json.loads(x) for x in r.out.splitlines()]
    backup = next(e for e in events if e["type"] == "backup")
    assert backup["skipped"] is True and "--no-backup" in backup["@message"]
    assert not (cli.workdir / ".reconciler" / "backups").exists()
    clash = cli("apply", "--no-backup", "--backup-dir", "b")
    assert clash.code == 1 and "contradict" in clash.err


def test_a_schema_delete_saves_every_record(seed_files: Cli, sandbox: Any, tmp_path: Path) -> None:
    cli = seed_files
    _seeded(cli, sandbox, 130, 0)
    (cli.workdir / "reconciler.yaml").write_text("prune: true\n")
    orders = cli.schemas / "orders.yaml"
    cli.write("gift.yaml", orders.read_text().replace("slug: online-order", "slug: gift-card"))
    orders.unlink()
    out = tmp_path / "saved"
    r = cli("apply", "--auto-approve", "--allow-data-loss", "--backup-dir", str(out))
    assert r.code == 0, r.out + r.err
    assert "Backup: 130 records of online-order in" in r.out
    assert len((out / "online-order" / "online-order.ndjson").read_text().splitlines()) == 130


def test_applies_without_deletes_make_no_backup_folder(seed_files: Cli) -> None:
    assert seed_files("apply", "--auto-approve").code == 0
    assert not (seed_files.workdir / ".reconciler" / "backups").exists()


def test_two_applies_in_one_second_get_two_folders(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from reconciler.records.backup import default_backup_dir

    now = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    first = default_backup_dir(tmp_path, "prod/eu", now)
    assert first == tmp_path / ".reconciler" / "backups" / "20260501T120000Z-prod-eu"
    first.mkdir(parents=True)
    assert default_backup_dir(tmp_path, "prod/eu", now).name == "20260501T120000Z-prod-eu-2"

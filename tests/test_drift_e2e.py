"""`reconciler drift` end to end against the sandbox over real HTTP (issue 6, acceptance 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TOKEN, Cli, honours_required

SEED = (Path(__file__).resolve().parent.parent / "schemas" / "orders.yaml").read_text()
SCHEMAS = "/customObjects/schemas"


def _notes(sandbox: Any) -> str:
    """Where the account ignores required, drift carries one note saying it is not managed."""
    return "" if honours_required(sandbox) else ", 1 note"


def _info(sandbox: Any) -> int:
    return 0 if honours_required(sandbox) else 1


def in_sync_line(sandbox: Any) -> str:
    return "No drift. The account matches the files" + ("." if honours_required(sandbox) else " (1 note).")


def api(sandbox: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    r = httpx.request(method, f"{sandbox.url}/api/3{path}", headers={"Api-Token": TOKEN}, timeout=10, **kw)
    assert r.status_code < 300, r.text
    return r


def live(sandbox: Any) -> dict[str, Any]:
    (schema,) = api(sandbox, "GET", SCHEMAS, params={"showFields": "all"}).json()["schemas"]
    return schema


def change_in_the_account(sandbox: Any) -> str:
    """What a colleague does in the web UI: a label edit, a field and an option added, a field deleted."""
    sid = live(sandbox)["id"]
    api(sandbox, "PUT", f"{SCHEMAS}/{sid}",
        json={"schema": {"labels": {"singular": "Web Order", "plural": "Online Orders"}}})
    api(sandbox, "PUT", f"{SCHEMAS}/{sid}", json={"schema": {"fields": [
        {"id": "coupon", "type": "text", "labels": {"singular": "Coupon", "plural": "Coupons"}}]}})
    api(sandbox, "PUT", f"{SCHEMAS}/{sid}", json={"schema": {"fields": [
        {"id": "order-ship-status", "type": "dropdown", "required": True,
         "labels": {"singular": "Shipping Status", "plural": "Shipping Statuses"},
         "options": [{"value": v} for v in ("Received", "Processing", "Shipped", "Returned")]}]}})
    api(sandbox, "DELETE", f"{SCHEMAS}/{sid}/fields/order-link")
    return live(sandbox)["updatedTimestamp"]


EXPECTED = {
    # the project folder is not a git work tree: no evidence of which side changed, neutral wording
    "online-order.labels.singular": ("~", 'labels.singular differs: account "Web Order", files "Online Order"'),
    "online-order.coupon": ("+", "field online-order.coupon is in the account but not in the files"),
    "online-order.order-ship-status.options": ("+", 'option "Returned" is in the account but not in the files'),
    "online-order.order-link": ("-", "field online-order.order-link is marked for deletion in the account"),
}


def test_drift_after_changes_in_the_account(seed_files: Cli, sandbox: Any) -> None:
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    r = cli("drift")
    assert r.code == 0, r.out + r.err
    assert in_sync_line(sandbox) in r.out

    stamp = change_in_the_account(sandbox)
    sandbox.traffic.clear()

    # text: every change named, with the live schema's updatedTimestamp
    r = cli("--no-color", "drift")
    assert r.code == 2, r.out + r.err
    for symbol, words in EXPECTED.values():
        line = next((x for x in r.out.splitlines() if words in x), None)
        assert line is not None, (words, r.out)
        assert line.strip().startswith(symbol) and f"[{stamp}]" in line
    assert f'schema "online-order" (account updated {stamp})' in r.out
    assert ("Drift: 4 differences between the account and the files"
            + ("." if honours_required(sandbox) else " (1 note).")) in r.out

    # json: one item per change, each with its timestamp; never an appliable plan file
    r = cli("drift", "--format", "json")
    assert r.code == 2
    report = json.loads(r.out)
    assert report["format"] == "reconciler-drift/v1" and "format_version" not in report and "digest" not in report
    items = {i["key"]: i for i in report["items"] if i["severity"] == "drift"}  # (not the required note)
    assert set(items) == set(EXPECTED)
    assert all(i["updatedTimestamp"] == stamp and i["severity"] == "drift" for i in items.values())
    assert all(i["changed_in"] is None for i in items.values())  # no git work tree: no evidence
    assert items["online-order.labels.singular"]["account"] == "Web Order"
    assert items["online-order.labels.singular"]["files"] == "Online Order"
    assert items["online-order.order-ship-status.options"]["account"] == ["Returned"]
    assert report["summary"] == {"drift": 4, "ignored": 0, "info": _info(sandbox)}
    (cli.workdir / "drift.json").write_text(r.out)
    refused = cli("apply", "drift.json")
    assert refused.code == 1 and "is a drift report, not a plan file" in refused.err

    # markdown: a table naming each change
    r = cli("drift", "--format", "markdown")
    assert r.code == 2
    assert "### Reconciler drift" in r.out and stamp in r.out and "coupon" in r.out

    # drift made only GET requests (the refused apply above made no request either)
    assert sandbox.traffic.log, "drift read the account"
    assert sandbox.traffic.writes() == []
    assert {e.method for e in sandbox.traffic.log} == {"GET"}


def test_ignore_rules_count_instead_of_hiding(seed_files: Cli, sandbox: Any) -> None:
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    change_in_the_account(sandbox)

    r = cli("--no-color", "drift", "--ignore", "online-order.coupon.*")
    assert r.code == 2
    assert f"Drift: 3 differences between the account and the files (1 ignored{_notes(sandbox)})." in r.out
    assert "# field online-order.coupon is in the account but not in the files" in r.out
    assert "(ignored by 'online-order.coupon.*')" in r.out

    # the same from reconciler.yaml, plus a glob on the property; JSON counts them too
    (cli.workdir / "reconciler.yaml").write_text('ignore: ["*.coupon", "*.labels.*"]\n')
    r = cli("drift", "--format", "json")
    report = json.loads(r.out)
    assert r.code == 2
    assert report["summary"] == {"drift": 2, "ignored": 2, "info": _info(sandbox)}
    ignored = {i["key"]: i["ignored_by"] for i in report["items"] if i["ignored_by"]}
    assert ignored == {"online-order.coupon": "*.coupon", "online-order.labels.singular": "*.labels.*"}

    # everything ignored: in sync as far as drift is concerned, but still counted
    r = cli("drift", "--ignore", "online-order.order-*")
    assert r.code == 0, r.out
    assert f"No drift. The account matches the files (4 ignored{_notes(sandbox)})." in r.out


def test_drift_is_zero_after_reverting(seed_files: Cli, sandbox: Any) -> None:
    """Revert what can be reverted (re-apply the files: the label comes back, the added field goes);
    keep in the files what the API cannot undo (an added option, a deleted field id)."""
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    change_in_the_account(sandbox)
    assert cli("drift").code == 2

    accepted = SEED.replace("[Received, Processing, Shipped]", "[Received, Processing, Shipped, Returned]").replace(
        "  - id: order-link\n    type: text\n    labels: {singular: Receipt Link, plural: Receipt Links}\n", "")
    cli.write("orders.yaml", accepted)
    r = cli("apply", "--auto-approve", "--allow-data-loss")
    assert r.code == 0, r.out + r.err
    sandbox.traffic.clear()
    r = cli("drift")
    assert r.code == 0, r.out
    assert in_sync_line(sandbox) in r.out
    assert sandbox.traffic.writes() == []


def test_unmanaged_schemas_are_information(seed_files: Cli, sandbox: Any) -> None:
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    api(sandbox, "POST", SCHEMAS, json={"schema": {"slug": "tickets", "labels": {"singular": "Ticket", "plural": "Tickets"},
                                                  "fields": []}})
    r = cli("--no-color", "drift")
    assert r.code == 0, r.out
    assert "i schema tickets is in the account but not in the files (unmanaged; prune is off)" in r.out
    assert ("(1 note)" if honours_required(sandbox) else "(2 notes)") in r.out
    # with prune: true the same schema is drift (apply would delete it)
    (cli.workdir / "reconciler.yaml").write_text("prune: true\n")
    r = cli("--no-color", "drift")
    assert r.code == 2
    assert "+ schema tickets is in the account but not in the files (prune would delete it)" in r.out


def test_schema_missing_in_the_account(seed_files: Cli, sandbox: Any) -> None:
    r = seed_files("--no-color", "drift")
    assert r.code == 2
    assert '- schema online-order is not in the account (the files declare it)' in r.out
    assert 'schema "online-order" (not in the account)' in r.out


def test_drift_errors_exit_1(cli: Cli) -> None:
    cli.monkeypatch.setenv("AC_API_URL", "http://127.0.0.1:9")
    cli.write("orders.yaml", SEED)
    r = cli("drift")
    assert r.code == 1 and "Traceback" not in r.err
    cli.write("bad.yaml", "slug: [")
    r = cli("drift")
    assert r.code == 1 and "bad.yaml" in r.err

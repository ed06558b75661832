"""`reconciler apply` end to end against the sandbox over real HTTP (issue: Apply acceptance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TOKEN, Cli, honours_required

SEED = (Path(__file__).resolve().parent.parent / "schemas" / "orders.yaml").read_text()


def api(sandbox: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{sandbox.url}/api/3{path}", headers={"Api-Token": TOKEN}, timeout=10, **kw)


def live_schemas(sandbox: Any) -> list[dict[str, Any]]:
    r = api(sandbox, "GET", "/customObjects/schemas", params={"limit": 100, "showFields": "all"})
    r.raise_for_status()
    return r.json()["schemas"]


def snapshot(sandbox: Any) -> str:
    """Everything the API shows: schemas (with deleted fields) and every record of each."""
    out: dict[str, Any] = {}
    for s in live_schemas(sandbox):
        recs = api(sandbox, "GET", f"/customObjects/records/{s['id']}", params={"limit": 100}).json()
        recs["records"].sort(key=lambda r: r["id"])  # the list order is not specified (shuffled when pessimistic)
        out[s["slug"]] = {"schema": s, "records": recs}
    return json.dumps(out, sort_keys=True)


def seed_records(sandbox: Any, schema_id: str, n: int, with_link: int) -> None:
    r = api(sandbox, "POST", "/contact/sync", json={"contact": {"email": "jane@example.com"}})
    contact = r.json()["contact"]["id"]
    for i in range(n):
        fields = [
            {"id": "order-number", "value": i},
            {"id": "order-date", "value": "2026-05-21T00:00:00Z"},
            {"id": "order-ship-status", "value": "Received"},
        ]
        if i < with_link:
            fields.append({"id": "order-link", "value": f"https://shop.example/r/{i}"})
        body = {"record": {"externalId": f"order-{i}", "fields": fields, "relationships": {"primary-contact": [contact]}}}
        assert api(sandbox, "POST", f"/customObjects/records/{schema_id}", json=body).status_code == 201


def test_seed_end_to_end(seed_files: Cli, sandbox: Any) -> None:
    cli = seed_files
    r = cli("plan", "--detailed-exitcode")
    assert r.code == 2, r.err
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in r.out

    r = cli("apply", "--auto-approve")
    assert r.code == 0, r.out + r.err
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in r.out
    said = [line for line in r.out.splitlines() if line.startswith("the account ignores required: ")]
    if honours_required(sandbox):
        assert said == []
    else:
        assert len(said) == 1 and said[0].endswith("(managed as not required)")
        assert all(f"online-order.{f}" in said[0] for f in ("order-number", "order-date", "order-ship-status"))
    assert (cli.workdir / ".reconciler" / "quirks.json").exists() is not honours_required(sandbox)

    r = cli("plan", "--detailed-exitcode")
    assert r.code == 0, r.out + r.err
    assert "No changes. The account matches the files." in r.out

    (schema,) = live_schemas(sandbox)
    assert schema["slug"] == "online-order"
    fields = {f["id"]: f for f in schema["fields"]}
    assert {k: f["type"] for k, f in fields.items()} == {
        "order-number": "number", "order-date": "datetime", "order-instructions": "textarea",
        "order-total": "currency", "order-link": "text", "order-ship-status": "dropdown",
    }
    required = {"order-number", "order-date", "order-ship-status"} if honours_required(sandbox) else set()
    assert {k for k, f in fields.items() if f["required"]} == required
    assert [o["value"] for o in fields["order-ship-status"]["options"]] == ["Received", "Processing", "Shipped"]
    assert fields["order-total"]["defaultCurrency"] == "USD"
    assert [(x["id"], x["namespace"]) for x in schema["relationships"]] == [("primary-contact", "contacts")]


def test_apply_without_tty_needs_auto_approve(seed_files: Cli, sandbox: Any) -> None:
    r = seed_files("apply")
    assert r.code == 1
    assert "--auto-approve" in r.err
    assert live_schemas(sandbox) == []


def _converged(cli: Cli) -> None:
    r = cli("plan", "--detailed-exitcode")
    assert r.code == 0, r.out + r.err


def test_every_change_kind_end_to_end(seed_files: Cli, sandbox: Any) -> None:
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    steps = [
        # label and description updates
        (SEED.replace("Orders from the web shop", "Orders placed on the web shop")
             .replace("plural: Online Orders}", "plural: Web Orders}"), []),
        # add a field
        (None, [("relationships:", "  - id: coupon\n    type: text\n    labels: {singular: Coupon, plural: Coupons}\n"
                                   "relationships:")]),
        # add options
        (None, [("[Received, Processing, Shipped]", "[Received, Processing, Shipped, Returned]")]),
        # required off, then on
        (None, [("    required: true\n    scale: 0", "    scale: 0")]),
        (None, [("    scale: 0\n", "    required: true\n    scale: 0\n")]),
    ]
    text = SEED
    for replacement, edits in steps:
        text = replacement if replacement is not None else text
        for old, new in edits:
            assert old in text, old
            text = text.replace(old, new, 1)
        cli.write("orders.yaml", text)
        r = cli("apply", "--auto-approve")
        assert r.code == 0, r.out + r.err
        only_required = "required" in str(edits)
        if only_required and not honours_required(sandbox):  # not managed there: nothing to do
            assert "No changes." in r.out and "required is not managed" in r.out
        else:
            assert "Apply complete!" in r.out
        _converged(cli)

    (schema,) = live_schemas(sandbox)
    assert schema["labels"]["plural"] == "Web Orders"
    assert schema["description"] == "Orders placed on the web shop"
    fields = {f["id"]: f for f in schema["fields"]}
    assert "coupon" in fields
    assert [o["value"] for o in fields["order-ship-status"]["options"]][-1] == "Returned"
    assert fields["order-number"]["required"] is honours_required(sandbox)

    # delete a field: refused without the flag, done with it
    text = text.replace("  - id: coupon\n    type: text\n    labels: {singular: Coupon, plural: Coupons}\n", "")
    cli.write("orders.yaml", text)
    r = cli("apply", "--auto-approve")
    assert r.code == 3, r.out + r.err
    assert "DL102" in r.err and "--allow-data-loss" in r.err
    r = cli("apply", "--auto-approve", "--allow-data-loss")
    assert r.code == 0, r.out + r.err
    _converged(cli)
    fields = {f["id"]: f for f in live_schemas(sandbox)[0]["fields"]}
    assert fields["coupon"].get("status") == "marked_for_deletion"

    # delete a schema: only with prune and the flag
    other = text.replace("slug: online-order", "slug: gift-card").replace("Online Order", "Gift Card")
    cli.write("gift.yaml", other)
    assert cli("apply", "--auto-approve").code == 0
    (cli.schemas / "gift.yaml").unlink()
    r = cli("plan", "--detailed-exitcode")
    assert r.code == 0, "without prune an unmanaged schema is left alone"
    (cli.workdir / "reconciler.yaml").write_text("prune: true\n")
    r = cli("apply", "--auto-approve")
    assert r.code == 3 and "DL101" in r.err
    r = cli("apply", "--auto-approve", "--allow-data-loss")
    assert r.code == 0, r.out + r.err
    assert [s["slug"] for s in live_schemas(sandbox)] == ["online-order"]
    _converged(cli)


def test_gates_leave_the_account_untouched(seed_files: Cli, sandbox: Any) -> None:
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    (schema,) = live_schemas(sandbox)
    seed_records(sandbox, schema["id"], 5, with_link=3)
    before = snapshot(sandbox)

    cli.write("orders.yaml", SEED.replace(
        "  - id: order-link\n    type: text\n    labels: {singular: Receipt Link, plural: Receipt Links}\n", ""))
    r = cli("apply", "--auto-approve")
    assert r.code == 3
    assert "DL102" in r.err and "order-link" in r.err and "--allow-data-loss" in r.err
    assert snapshot(sandbox) == before

    # protected in the environment's config: refused even with the flag
    cli.monkeypatch.delenv("AC_API_URL")
    cli.monkeypatch.delenv("AC_API_TOKEN")
    cli.monkeypatch.setenv("SANDBOX_TOKEN", TOKEN)
    (cli.workdir / "reconciler.yaml").write_text(
        "environments:\n"
        f"  test: {{url: '{sandbox.url}', token_env: SANDBOX_TOKEN, protect: [online-order.order-link]}}\n"
    )
    r = cli("apply", "--env", "test", "--auto-approve", "--allow-data-loss")
    assert r.code == 3, r.out + r.err
    assert "order-link" in r.err and "protect" in r.err
    assert snapshot(sandbox) == before


def test_stale_and_tampered_plan_files_are_refused(seed_files: Cli, sandbox: Any) -> None:
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    cli.write("orders.yaml", SEED.replace("Orders from the web shop", "All web shop orders"))
    r = cli("plan", "--out", "plan.json")
    assert r.code == 0, r.err
    plan_text = (cli.workdir / "plan.json").read_text()
    assert TOKEN not in plan_text

    # tampered: refused, nothing written
    before = snapshot(sandbox)
    (cli.workdir / "edited.json").write_text(plan_text.replace("All web shop orders", "Hacked"))
    r = cli("apply", "edited.json")
    assert r.code == 1
    assert "modified" in r.err or "tamper" in r.err.lower()
    assert snapshot(sandbox) == before

    # stale: someone edits the schema in the account after the plan was made
    (schema,) = live_schemas(sandbox)
    body = {"schema": {"labels": {"singular": "Online Order", "plural": "Orders (edited in UI)"}}}
    assert api(sandbox, "PUT", f"/customObjects/schemas/{schema['id']}", json=body).status_code == 200
    before = snapshot(sandbox)
    r = cli("apply", "plan.json")
    assert r.code == 1
    assert 'Saved plan is stale: schema "online-order" changed in the account after the plan was made' in r.err
    assert snapshot(sandbox) == before


def test_saved_plan_applies_exactly(seed_files: Cli, sandbox: Any) -> None:
    cli = seed_files
    r = cli("plan", "--out", "plan.json")
    assert r.code == 0
    r = cli("show", "plan.json")
    assert r.code == 0 and "Plan: 1 to add, 0 to change, 0 to destroy." in r.out
    r = cli("apply", "plan.json")
    assert r.code == 0, r.out + r.err
    assert "Apply complete!" in r.out
    _converged(cli)

"""The records seeder: valid values of every type, the fill rate, determinism, the HTTP version (a
user's script against a served sandbox), and the plan it exists for: a field delete counting ~30 %."""

from __future__ import annotations

import re
import shutil
from typing import Any

import httpx
import pytest

from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.seedrecords import SeedError, seed_records, seed_records_http
from reconciler.sandbox.store import Store
from reconciler.sandbox.testing import running_sandbox
from reconciler.sandbox.values import coerce
from tests.conftest import ROOT, TOKEN, Cli

from .conftest import make_ui
from .helpers import SCHEMAS, create_schema, f

ALL_TYPES = [
    f("t", "text"), f("ta", "textarea"), f("n", "number", scale=0), f("n2", "number", "Scaled", scale=3),
    f("d", "date"), f("dt", "datetime"), f("c", "currency", defaultCurrency="EUR"),
    f("dd", "dropdown", options=[{"value": "A"}, {"value": "B"}]),
    f("ms", "multiselect", options=[{"value": "X"}, {"value": "Y"}, {"value": "Z"}]),
    f("must", "text", "Must", required=True),
]


def _api_records(client: httpx.Client, sid: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        r = client.get(f"/api/3/customObjects/records/{sid}", params={"limit": 100, "offset": len(out)})
        page = r.json()["records"]
        out.extend(page)
        if len(page) < 100:
            return out


def test_values_of_every_type_are_valid_and_fill_is_respected() -> None:
    ui = make_ui()
    schema = create_schema(ui.api, "every-type", ALL_TYPES)
    result = seed_records(ui.state.store, "every-type", 1000, fill=0.3, seed=7)
    assert result.created == 1000 and result.schema_id == schema["id"] and 1 <= result.contacts <= 100
    defs = {d["id"]: d for d in ui.api.get(f"{SCHEMAS}/{schema['id']}").json()["schema"]["fields"]}
    records = _api_records(ui.api, schema["id"])
    assert len(records) == 1000
    seen: dict[str, int] = dict.fromkeys(defs, 0)
    for rec in records:
        for item in rec["fields"]:
            assert coerce(defs[item["id"]], item["value"]) == item["value"]  # already in stored form
            seen[item["id"]] += 1
        assert len(rec["relationships"]["primary-contact"]) == 1
    assert seen == result.filled
    assert seen["must"] == 1000  # a required field always gets a value
    for fid in defs.keys() - {"must"}:
        assert 250 <= seen[fid] <= 350, (fid, seen[fid])
    by_id = {item["id"]: item["value"] for rec in records for item in rec["fields"]}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", by_id["d"]) and by_id["dt"].endswith("Z")
    assert isinstance(by_id["n"], int) and by_id["dd"] in ("A", "B") and set(by_id["ms"]) <= {"X", "Y", "Z"}
    assert len(str(by_id["n2"]).partition(".")[2]) <= 3 and len(str(by_id["c"]).partition(".")[2]) <= 2
    # each record points at a contact the sandbox knows (the contact page lists it)
    cid = records[0]["relationships"]["primary-contact"][0]
    assert ui.page(f"/contacts/{cid}").status_code == 200


def test_same_seed_same_records() -> None:
    values = []
    for _ in range(2):
        ui = make_ui()
        sid = create_schema(ui.api, "every-type", ALL_TYPES)["id"]
        seed_records(ui.state.store, "every-type", 50, fill=0.5, seed=3)
        values.append([(r["fields"], r["relationships"]) for r in _api_records(ui.api, sid)])
    assert values[0] == values[1]
    ui = make_ui()
    sid = create_schema(ui.api, "every-type", ALL_TYPES)["id"]
    seed_records(ui.state.store, "every-type", 50, fill=0.5, seed=4)
    assert [(r["fields"], r["relationships"]) for r in _api_records(ui.api, sid)] != values[0]


@pytest.mark.parametrize(("slug", "count", "fill", "message"), [
    ("nope", 10, 0.3, "no schema with slug 'nope' in the sandbox"),
    ("every-type", 0, 0.3, "count must be a positive whole number, not 0"),
    ("every-type", 10, 1.5, "fill must be between 0 and 1, not 1.5"),
])
def test_bad_input_is_one_error(slug: str, count: int, fill: float, message: str) -> None:
    ui = make_ui()
    create_schema(ui.api, "every-type", ALL_TYPES)
    with pytest.raises(SeedError, match=re.escape(message)):
        seed_records(ui.state.store, slug, count, fill)
    assert ui.state.store.list_records(ui.state.store.list_schemas()[0]["id"], limit=0)[0] == 0


def test_over_http_as_a_user_and_the_token_stays_out_of_errors() -> None:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb, \
            httpx.Client(base_url=sb.url, headers=sb.headers) as client:
        sid = create_schema(client, "every-type", ALL_TYPES)["id"]
        result = seed_records_http(sb.url, TOKEN, "every-type", 120, fill=0.3, seed=7)
        assert result.created == 120
        records = _api_records(client, sid)
        assert len(records) == 120
        assert sum(1 for r in records for i in r["fields"] if i["id"] == "must") == 120
        assert set(result.filled) == {i["id"] for i in ALL_TYPES}
        posts = [e for e in sb.traffic.log if e.method == "POST" and e.path.endswith(sid)]
        assert len(posts) == 120 and all(e.status == 201 for e in posts)
        # the same seed over HTTP gives what the store seeder gives
        store = Store()
        store.put_schema(client.get(f"{SCHEMAS}/{sid}").json()["schema"])
        assert seed_records(store, "every-type", 120, fill=0.3, seed=7).filled == result.filled

        with pytest.raises(SeedError) as refused:
            seed_records_http(sb.url, TOKEN + "-wrong", "every-type", 5)
        assert "403" in str(refused.value) and TOKEN not in str(refused.value)
        with pytest.raises(SeedError, match="no schema with slug 'nope'"):
            seed_records_http(sb.url, TOKEN, "nope", 5)


def test_http_seeding_waits_out_the_rate_limit() -> None:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=50)) as sb, \
            httpx.Client(base_url=sb.url, headers=sb.headers) as client:
        create_schema(client, "small", [f("t", "text")], contacts=False)
        result = seed_records_http(sb.url, TOKEN, "small", 80, fill=1.0)
        assert result.created == 80 and result.filled == {"t": 80}
        assert sb.traffic.count(status=429) > 0  # it was limited, and went on


def test_field_delete_plan_counts_about_fill_of_the_records(cli: Cli, sandbox: Any) -> None:
    """seed-records online-order --count 1000 --fill 0.3, then a plan deleting order-instructions."""
    shutil.copy(ROOT / "schemas" / "orders.yaml", cli.schemas / "orders.yaml")
    assert cli("apply", "--auto-approve").code == 0
    result = seed_records(sandbox.store, "online-order", 1000, fill=0.3)
    text = (cli.schemas / "orders.yaml").read_text()
    block = "  - id: order-instructions\n    type: textarea\n"
    assert block in text
    start = text.index(block)
    end = text.index("  - id:", start + len(block))
    cli.write("orders.yaml", text[:start] + text[end:])
    r = cli("plan")
    assert r.code == 0, r.err
    m = re.search(r"DL102 delete field online-order\.order-instructions: (\d+) of 1,000 records hold a value", r.out)
    assert m, r.out
    assert 250 <= int(m.group(1)) <= 350 and int(m.group(1)) == result.filled["order-instructions"]

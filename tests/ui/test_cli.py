"""The CLI of the sandbox's pictures: ``sandbox seed-records`` (embedded and served) and ``sandbox ui``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import TOKEN, Cli
from tests.support.fakeapi import FakeApi, Request, response

FILLED = re.compile(r"order-instructions ([\d,]+)")


def _without_field(cli: Cli, field_id: str) -> None:
    path = cli.schemas / "orders.yaml"
    text = path.read_text()
    start = text.index(f"  - id: {field_id}\n")
    end = text.index("  - id: ", start + 1)
    path.write_text(text[:start] + text[end:])


def test_seeded_records_are_counted_by_a_data_loss_plan(seed_files: Cli) -> None:
    """Issue 15, acceptance 5: 1,000 records at fill 0.3, then a plan deleting order-instructions
    counts about 300 of 1,000, the number seeding reported."""
    cli = seed_files
    assert cli("apply", "--sandbox", "--auto-approve").code == 0
    seeded = cli("sandbox", "seed-records", "online-order", "--count", "1000", "--fill", "0.3")
    assert seeded.code == 0, seeded.err
    assert seeded.out.startswith("Seeded 1,000 records into online-order in the embedded sandbox")
    match = FILLED.search(seeded.out)
    assert match, seeded.out
    filled = int(match.group(1).replace(",", ""))
    assert 250 <= filled <= 350
    _without_field(cli, "order-instructions")
    plan = cli("plan", "--sandbox", "--detailed-exitcode")
    assert plan.code == 2, plan.err
    assert f"{filled:,} of 1,000 records hold a value that will be lost" in plan.out


def test_seeding_into_a_served_sandbox(seed_files: Cli, sandbox: object) -> None:
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    url = sandbox.url + "/api/3"  # type: ignore[attr-defined]
    seeded = cli("sandbox", "seed-records", "online-order", "--count", "12", "--fill", "1", "--url", url)
    assert seeded.code == 0, seeded.err
    assert f"into online-order in {url}" in seeded.out
    schema_id = next(s["id"] for s in httpx.get(url + "/customObjects/schemas", headers={"Api-Token": TOKEN})
                     .json()["schemas"] if s["slug"] == "online-order")
    listed = httpx.get(f"{url}/customObjects/records/{schema_id}", headers={"Api-Token": TOKEN}).json()
    assert listed["meta"]["total"] == 12
    assert TOKEN not in seeded.out + seeded.err


def test_seeding_refuses_a_server_that_is_not_a_sandbox(cli: Cli) -> None:
    """A real account (here: a server without the sandbox's OpenAPI document) gets no generated records."""
    def handler(req: Request) -> bytes:
        return response(200, {"schemas": [{"id": "1", "slug": "online-order", "fields": []}], "meta": {"total": 1}})

    with FakeApi(handler) as api:
        result = cli("sandbox", "seed-records", "online-order", "--count", "5", "--url", api.url)
    assert result.code == 1
    assert "is not a reconciler sandbox" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert [r.method for r in api.requests] == ["GET"]


@pytest.mark.parametrize("args, words", [
    (("--count", "3"), "no embedded sandbox at"),
    (("--count", "0"), "Invalid value for '--count'"),
    (("--count", "3", "--fill", "1.5"), "Invalid value for '--fill'"),
])
def test_seeding_bad_input_is_one_line(cli: Cli, args: tuple[str, ...], words: str) -> None:
    result = cli("sandbox", "seed-records", "online-order", *args)
    assert result.code != 0 and words in result.err
    assert "Traceback" not in result.err


def test_seeding_an_unknown_slug(seed_files: Cli) -> None:
    cli = seed_files
    assert cli("apply", "--sandbox", "--auto-approve").code == 0
    result = cli("sandbox", "seed-records", "orders", "--count", "3")
    assert (result.code, result.err.strip()) == (1, "Error: no schema with slug 'orders' in the sandbox")


def test_ui_serves_the_embedded_sandbox_without_showing_the_token(seed_files: Cli) -> None:
    cli = seed_files
    assert cli("apply", "--sandbox", "--auto-approve").code == 0
    secret = "ui-SECRET-4d1f"
    env = {k: v for k, v in os.environ.items() if k not in ("AC_API_URL", "AC_API_TOKEN")}
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "ui", "--port", "0", "--token", secret],
                            cwd=cli.workdir, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"Sandbox UI on (http://127\.0\.0\.1:\d+/) \((.*?)\)", line)
        assert match, line
        assert Path(match.group(2)) == cli.workdir / ".reconciler" / "sandbox.sqlite3"
        assert secret not in line
        page = httpx.get(match.group(1), headers={"Api-Token": secret})
        assert page.status_code == 200 and "online-order" in page.text
        assert httpx.get(match.group(1)).status_code == 401
        assert httpx.get(match.group(1), headers={"Api-Token": "sandbox-token"}).status_code == 401
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=20)[1]
    assert secret not in rest

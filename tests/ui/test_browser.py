"""The web interface in a real browser: Debian's headless Chromium driven by Playwright, against the
sandbox served by uvicorn, the seed schemas applied with the real CLI and the guide's record upserted.

Screenshots of every page, desktop and 375 px wide, go to ``.artifacts/ui/``. Pages are checked with
axe-core (no serious or critical violation). The browser contexts bypass the pages' CSP, so that
axe can be injected, and so that the XSS cases prove escaping, not the CSP that would also block them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.seedrecords import seed_records
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import AMBIENT, ROOT, TOKEN
from tests.support.guide import guide_record
from tests.support.tools import node_module, tool

from .helpers import SCHEMAS, XSS_LABEL, XSS_VALUE, create_schema, f, sync_contact, upsert

sync_api = pytest.importorskip("playwright.sync_api")

ARTIFACTS = ROOT / ".artifacts" / "ui"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "mobile": {"width": 375, "height": 812}}
PAGES = ("login", "schemas", "schema", "records", "contact", "requests", "xss-schema", "xss-records",
         "not-found")


@dataclass
class Served:
    url: str
    sandbox: Any
    order_id: str
    ticket_id: str
    xss_id: str
    contact_id: str
    xss_contact_id: str

    def path(self, page: str) -> str:
        return {
            "login": "/login", "schemas": "/", "schema": f"/schemas/{self.order_id}",
            "records": f"/schemas/{self.order_id}/records", "contact": f"/contacts/{self.contact_id}",
            "requests": "/requests", "xss-schema": f"/schemas/{self.xss_id}",
            "xss-records": f"/schemas/{self.xss_id}/records", "not-found": "/schemas/no-such-schema",
        }[page]


def _apply_seed_with_the_cli(url: str, workdir: Path) -> None:
    (workdir / "schemas").mkdir()
    shutil.copy(ROOT / "schemas" / "orders.yaml", workdir / "schemas" / "orders.yaml")
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT}
    env.update({"AC_API_URL": url, "AC_API_TOKEN": TOKEN, "NO_COLOR": "1"})
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--auto-approve"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0)) as sb, \
            httpx.Client(base_url=sb.url, headers=sb.headers) as api:
        _apply_seed_with_the_cli(sb.url, tmp_path_factory.mktemp("project"))
        order = next(s for s in api.get(SCHEMAS).json()["schemas"] if s["slug"] == "online-order")
        contact_id = sync_contact(api, "jane@example.com", "Jane", "Doe")
        r = api.post(f"/api/3/customObjects/records/{order['id']}", json=guide_record(contact_id))
        assert r.status_code == 201, r.text
        seed_records(sb.store, "online-order", 40, fill=0.5, seed=1)  # after the guide's: it stays first
        ticket = create_schema(api, "support-ticket", [f("subject", "text"), f("legacy-code", "text", "Legacy Code")],
                               singular="Support Ticket")
        xss = create_schema(api, "hostile", [f("note", "textarea", "Note")], singular=XSS_LABEL)
        xss_contact = sync_contact(api, "mallory@example.com", XSS_LABEL, XSS_VALUE)
        upsert(api, xss["id"], {"note": XSS_VALUE}, xss_contact, external_id=XSS_VALUE)
        api.get(f"{SCHEMAS}/{order['id']}", params={"showFields": "all"})
        yield Served(sb.url, sb, order["id"], ticket["id"], xss["id"], contact_id, xss_contact)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = tool("chromium")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()


def _context(browser: Any, served: Served, viewport: str = "desktop", login: bool = True, **options: Any) -> Any:
    context = browser.new_context(base_url=served.url, viewport=VIEWPORTS[viewport], bypass_csp=True, **options)
    if login:
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("API token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(served.url + "/")
        page.close()
    return context


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    context = _context(browser, served)
    yield context.new_page()
    context.close()


def test_login_form_sets_an_http_only_cookie(browser: Any, served: Served) -> None:
    context = _context(browser, served, login=False)
    page = context.new_page()
    response = page.goto("/")
    assert response.status == 401
    page.get_by_label("API token").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert "not the sandbox" in page.get_by_role("alert").inner_text()
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(served.url + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "Schemas"
    cookies = context.cookies()
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    assert TOKEN not in cookies[0]["value"]
    context.close()


def test_schema_page_shows_the_six_fields(page: Any, served: Served) -> None:
    page.goto("/")
    page.get_by_role("link", name="online-order", exact=True).click()
    rows = page.locator("table").first.locator("tbody tr")
    assert rows.count() == 6
    ids = [rows.nth(i).locator("th").inner_text() for i in range(6)]
    assert ids == ["order-number", "order-date", "order-instructions", "order-total", "order-link",
                   "order-ship-status"]
    assert "Received" in rows.nth(5).inner_text() and "USD" in rows.nth(3).inner_text()


def test_records_page_shows_the_guides_record_with_its_contact(page: Any, served: Served) -> None:
    page.goto(f"/schemas/{served.order_id}")
    page.get_by_role("link", name="41 records").click()
    row = page.locator("tbody tr", has_text="online-order-1234")
    assert row.count() == 1
    assert "Leave at the door" in row.inner_text() and "Received" in row.inner_text()
    row.get_by_role("link", name=f"Jane Doe #{served.contact_id}").click()
    page.wait_for_url(f"{served.url}/contacts/{served.contact_id}")
    assert page.get_by_role("heading", level=1).inner_text() == "Jane Doe"
    assert page.locator("main table tbody tr", has_text="online-order-1234").count() == 1


def test_a_field_deleted_through_the_api_shows_marked_for_deletion(page: Any, served: Served) -> None:
    page.goto(f"/schemas/{served.ticket_id}")
    assert page.get_by_text("marked_for_deletion").count() == 0
    r = httpx.delete(f"{served.url}{SCHEMAS}/{served.ticket_id}/fields/legacy-code", headers={"Api-Token": TOKEN})
    assert r.status_code < 300, r.text
    page.reload()
    row = page.locator("tbody tr", has_text="legacy-code")
    assert row.locator(".badge").inner_text() == "marked_for_deletion"


def test_stored_markup_is_text_and_no_dialog_opens(page: Any, served: Served) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for name in ("schemas", "xss-schema", "xss-records"):
        page.goto(served.path(name))
    page.goto(f"/contacts/{served.xss_contact_id}")
    assert page.get_by_role("heading", level=1).inner_text() == f"{XSS_LABEL} {XSS_VALUE}"
    page.goto(served.path("xss-schema"))
    assert XSS_LABEL in page.get_by_role("heading", level=1).inner_text()
    page.goto(served.path("xss-records"))
    assert page.locator("tbody tr td", has_text="onerror").first.inner_text() == XSS_VALUE
    assert page.locator("main img, main script").count() == 0
    assert dialogs == []


def test_pages_work_with_javascript_off(browser: Any, served: Served) -> None:
    context = _context(browser, served, login=True, java_script_enabled=False)
    page = context.new_page()
    page.goto(served.path("records"))
    assert "of 41." in page.locator("main").inner_text()
    page.get_by_text("Filters", exact=True).click()  # a <details>: opens without JavaScript
    page.get_by_label("Order Number: operator").select_option("eq")
    page.get_by_label("Order Number (fields.order-number)").fill("1234")
    page.get_by_role("button", name="Apply filters").click()
    assert "Records 1–1 of 1 matching the filters." in page.locator("main").inner_text()
    assert page.locator("tbody tr").count() == 1
    context.close()


def test_tab_reaches_the_first_link_with_visible_focus(page: Any, served: Served) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    focused = page.evaluate("""() => {
        const el = document.activeElement, style = getComputedStyle(el), box = el.getBoundingClientRect();
        const first = document.querySelector('a[href]');
        return {first: el === first, tag: el.tagName, text: el.textContent, outline: style.outlineStyle,
                width: parseFloat(style.outlineWidth), top: box.top, height: box.height};
    }""")
    assert focused["first"] and focused["tag"] == "A" and focused["text"] == "Skip to main content"
    assert focused["outline"] != "none" and focused["width"] >= 2
    assert focused["top"] >= 0 and focused["height"] > 0  # on screen while focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def _axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(node_module("axe-core") / "axe.min.js"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("name", PAGES)
def test_every_page_is_accessible_fits_and_is_photographed(browser: Any, served: Served, name: str,
                                                          viewport: str) -> None:
    context = _context(browser, served, viewport, login=name != "login")
    page = context.new_page()
    response = page.goto(served.path(name))
    assert response.status == {"login": 200, "not-found": 404}.get(name, 200)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{viewport}.png"), full_page=True)
    assert _axe(page) == []
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORTS[viewport]["width"], f"the page scrolls sideways: {width} px"
    context.close()

"""The web interface in process (httpx's ASGI transport): each page, the token guard, the login
cookie, escaping of stored values, paging and filters, and the request log."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from tests.sandbox.helpers import TOKEN

from .conftest import Ui, make_ui
from .helpers import SCHEMAS, XSS_LABEL, XSS_VALUE, create_schema, f, sync_contact, upsert

PAGES = ("/", "/schemas/{sid}", "/schemas/{sid}/records", "/contacts/{cid}", "/requests")


def _orders(ui: Ui, singular: str = "Order") -> tuple[str, str]:
    schema = create_schema(ui.api, "orders", [
        f("order-number", "number", "Order Number", scale=0),
        f("order-note", "textarea", "Note"),
        f("status", "dropdown", "Status", options=[{"value": "Received"}, {"value": "Shipped"}]),
    ], singular=singular)
    cid = sync_contact(ui.api, "jane@example.com")
    return schema["id"], cid


def _rows(page: str) -> int:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return body.count("<tr")


def test_every_page_renders_for_a_script_with_the_header(ui: Ui) -> None:
    sid, cid = _orders(ui)
    upsert(ui.api, sid, {"order-number": 1234, "status": "Shipped"}, cid, "online-order-1234")
    pages = {p: ui.page(p.format(sid=sid, cid=cid)) for p in PAGES}
    for path, r in pages.items():
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"].startswith("text/html")
        assert '<html lang="en">' in r.text and 'href="#main"' in r.text
        assert "default-src 'none'" in r.headers["content-security-policy"]
    home = pages["/"].text
    assert f'href="/schemas/{sid}"' in home and f'href="/schemas/{sid}/records"' in home
    assert "Order / Orders" in home and re.search(r'<td class="num">3</td>', home)  # three fields
    schema = pages["/schemas/{sid}"].text
    for fid in ("order-number", "order-note", "status"):
        assert f"<code>{fid}</code>" in schema
    assert "<li>Received</li><li>Shipped</li>" in schema
    records = pages["/schemas/{sid}/records"].text
    assert "online-order-1234" in records and "1234" in records
    assert f'href="/contacts/{cid}">Jane Doe' in records
    contact = pages["/contacts/{cid}"].text
    assert "jane@example.com" in contact and "online-order-1234" in contact and "Shipped" in contact


@pytest.mark.parametrize("path", PAGES)
def test_without_the_token_every_page_is_the_login_page(ui: Ui, path: str) -> None:
    sid, cid = _orders(ui)
    where = path.format(sid=sid, cid=cid)
    for headers in ({}, {"Api-Token": "not-the-token"}):
        r = ui.browser.get(where, headers=headers)
        assert r.status_code == 401
        assert '<form method="post" action="/login"' in r.text and 'name="token"' in r.text
        assert f'name="next" value="{where}"' in r.text
        assert "Traceback" not in r.text and "orders" not in r.text.replace(where, "")


def test_login_sets_a_cookie_that_is_not_the_token(ui: Ui) -> None:
    r = ui.browser.post("/login", data={"token": "wrong", "next": "/requests"})
    assert r.status_code == 401 and "not the sandbox" in r.text and "set-cookie" not in r.headers
    assert ui.browser.get("/").status_code == 401

    r = ui.browser.post("/login", data={"token": TOKEN, "next": "/requests"})
    assert r.status_code == 303 and r.headers["location"] == "/requests"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert TOKEN not in cookie
    assert ui.browser.get("/").status_code == 200  # the client kept the cookie
    assert ui.browser.get("/requests").status_code == 200

    ui.browser.cookies.set("sandbox_ui", "0" * 64)
    assert ui.browser.get("/").status_code == 401  # a forged cookie is no login


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_only_redirects_to_this_site(ui: Ui, target: str) -> None:
    r = ui.browser.post("/login", data={"token": TOKEN, "next": target})
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_cookie_stops_working_when_the_token_changes(ui: Ui) -> None:
    ui.browser.post("/login", data={"token": TOKEN})
    assert ui.browser.get("/").status_code == 200
    ui.state.settings.token = "another-token"
    assert ui.browser.get("/").status_code == 401


def test_stored_markup_renders_as_text(ui: Ui) -> None:
    sid, cid = _orders(ui, singular=XSS_LABEL)
    ui.api.post("/api/3/contact/sync", json={"contact": {"email": "jane@example.com", "firstName": XSS_LABEL}})
    upsert(ui.api, sid, {"order-number": 1, "order-note": XSS_VALUE}, cid)
    for path in ("/", f"/schemas/{sid}", f"/schemas/{sid}/records", f"/contacts/{cid}"):
        text = ui.page(path).text
        assert "<script>" not in text and "<img" not in text, path
    assert escape(XSS_LABEL) in ui.page(f"/schemas/{sid}").text
    records = ui.page(f"/schemas/{sid}/records").text
    assert escape(XSS_VALUE) in records
    # a filter value is markup too, echoed back into the form
    r = ui.page(f"/schemas/{sid}/records", params={"op.fields.order-note": "contains", "v.fields.order-note": XSS_VALUE})
    assert r.status_code == 200 and "<img" not in r.text and f'value="{escape(XSS_VALUE)}"' in r.text


def test_records_are_paged(ui: Ui) -> None:
    sid, _cid = _orders(ui)
    ui.state.store.seed_records(sid, [{"fields": {"order-number": i}} for i in range(60)])
    first = ui.page(f"/schemas/{sid}/records").text
    assert _rows(first) == 25 and "Records 1–25 of 60." in first
    assert 'rel="next"' in first and 'rel="prev"' not in first and "Page 1 of 3" in first
    last = ui.page(f"/schemas/{sid}/records", params={"page": 3}).text
    assert _rows(last) == 10 and "Records 51–60 of 60." in last
    assert 'rel="next"' not in last and 'href="?page=2" rel="prev"' in last
    small = ui.page(f"/schemas/{sid}/records", params={"limit": 7, "page": 2}).text
    assert _rows(small) == 7 and "Records 8–14 of 60." in small and "limit=7" in small


def test_filters_are_the_apis_filters(ui: Ui) -> None:
    sid, _cid = _orders(ui)
    ui.state.store.seed_records(sid, [{"fields": {"order-number": i, **({"status": "Shipped"} if i % 3 else {})}}
                                      for i in range(90)])
    cases = [("fields.order-number", "gt", "70"), ("fields.status", "eq", "Shipped"), ("fields.status", "blank", ""),
             ("fields.order-number", "in", "1,2,3,500")]
    for prop, op, value in cases:
        page = ui.page(f"/schemas/{sid}/records", params={f"op.{prop}": op, f"v.{prop}": value, "limit": 100})
        api = ui.api.get(f"/api/3/customObjects/records/{sid}", params={f"filters[{prop}][{op}]": value})
        total = api.json()["meta"]["total"]
        assert 0 < total < 90, (prop, op)
        assert page.status_code == 200 and _rows(page.text) == total, (prop, op)
        assert "matching the filters" in page.text
    both = ui.page(f"/schemas/{sid}/records", params={"op.fields.order-number": "lt", "v.fields.order-number": "30",
                                                      "op.fields.status": "not_blank"}).text
    assert "of 20 matching" in both  # 0..29 with status: i % 3 != 0


def test_a_filter_the_api_refuses_is_one_message(ui: Ui) -> None:
    sid, _cid = _orders(ui)
    r = ui.page(f"/schemas/{sid}/records", params={"op.fields.order-number": "gt", "v.fields.order-number": "many"})
    assert r.status_code == 400 and escape("Order Number: 'many' is not a value the gt filter takes") in r.text
    r = ui.page(f"/schemas/{sid}/records", params={"op.fields.order-number": "like", "v.fields.order-number": "1"})
    assert r.status_code == 400 and "is not one of the API&#39;s filter operators" in r.text


def test_unknown_things_are_a_404_page(ui: Ui) -> None:
    for path in ("/schemas/nope", "/schemas/nope/records", "/contacts/999", "/contacts/abc"):
        r = ui.page(path)
        assert r.status_code == 404 and "There is nothing at this address." in r.text, path


def test_deleted_field_is_shown_marked_for_deletion(ui: Ui) -> None:
    sid, cid = _orders(ui)
    upsert(ui.api, sid, {"order-number": 7, "order-note": "secret-note"}, cid)
    assert ui.api.delete(f"{SCHEMAS}/{sid}/fields/order-note").status_code in (200, 202, 204)
    schema = ui.page(f"/schemas/{sid}").text
    row = schema.split("<code>order-note</code>", 1)[1].split("</tr>", 1)[0]
    assert '<span class="badge">marked_for_deletion</span>' in row
    assert schema.count("marked_for_deletion") == 1
    assert "+1 marked for deletion" in ui.page("/").text
    records = ui.page(f"/schemas/{sid}/records").text
    assert "secret-note" not in records and "order-note" not in records  # hidden, as the API hides it


def test_request_log_lists_api_requests_only_and_never_the_token(ui: Ui) -> None:
    sid, _cid = _orders(ui)
    ui.api.get(f"{SCHEMAS}/{sid}", params={"api_token": TOKEN, "x": "1"})
    ui.browser.get(SCHEMAS)  # refused: no token
    before = ui.state.traffic.total
    for path in ("/", f"/schemas/{sid}", "/requests", "/login", "/ui-static/style.css", "/favicon.ico"):
        ui.page(path)
    ui.browser.post("/login", data={"token": TOKEN})
    assert ui.state.traffic.total == before  # page views are not API requests
    text = ui.page("/requests").text
    assert TOKEN not in text and "api_token=[token]&amp;x=1" in text
    assert re.search(r"<th scope=\"row\">GET</th>\s*<td class=\"path\"><code>/api/3/customObjects/schemas</code>"
                     r"</td>\s*<td class=\"num\">403</td>", text)
    assert "<code>/requests</code>" not in text and "<code>/</code>" not in text
    assert f"of {before} API requests" in text


def test_pages_are_outside_the_rate_limit_and_faults() -> None:
    ui = make_ui(rate_limit=1, faults="500=1.0,drop=0.0", fault_seed=1)
    try:
        assert ui.api.get(SCHEMAS).status_code == 500  # every API request fails
        for _ in range(20):
            assert ui.page("/").status_code == 200
            assert ui.page("/requests").status_code == 200
        assert ui.state.traffic.total == 1
    finally:
        ui.api.close()
        ui.browser.close()


def test_openapi_document_lists_no_page(ui: Ui) -> None:
    doc = ui.browser.get("/api/3/openapi.json").json()
    assert doc["paths"] and all(p.startswith("/api/") for p in doc["paths"])


def test_pages_only_read(ui: Ui) -> None:
    sid, _cid = _orders(ui)
    for path in ("/", f"/schemas/{sid}", f"/schemas/{sid}/records"):
        r = ui.browser.post(path, headers={"Api-Token": TOKEN})
        assert r.status_code == 405 and "read-only" in r.text
    assert ui.state.store.get_schema(sid) is not None

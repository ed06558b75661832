"""Envelopes, content types, auth, the rate limiter, the request log and persistence."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from reconciler.sandbox import SandboxSettings, running_sandbox

from .helpers import SCHEMAS, asgi_client, create_schema, quiet_settings, schema_body


def test_envelopes_and_content_types() -> None:
    with asgi_client() as c:
        s = create_schema(c)
        r = c.get(f"{SCHEMAS}/{s['id']}")
        assert r.headers["content-type"] == "application/json" and list(r.json()) == ["schema"]
        r = c.get(SCHEMAS)
        assert list(r.json()) == ["schemas", "meta"]
        for path in (f"{SCHEMAS}/nope", "/api/3/unknown", "/nothing/here", f"{SCHEMAS}/nope/fields/x"):
            r = c.get(path) if "fields" not in path else c.delete(path)
            assert r.status_code == 404 and r.json() == {"message": "Not Found"}
            assert r.headers["content-type"] == "application/json"
        assert c.put(f"{SCHEMAS}/nope", json=schema_body()).json() == {"message": "Not Found"}
        r = c.post(SCHEMAS, content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.headers["content-type"] == "application/json"
        assert r.json()["errors"][0]["title"] == "Bad Request"
        for bad in (b"[1, 2]", b"", b'"text"', b"\xff\xfe"):
            assert c.post(SCHEMAS, content=bad).status_code == 400
        r = c.post(SCHEMAS, json={"nothing": 1})
        assert r.status_code == 422 and r.json()["errors"][0]["source"]["value"] == "/data/attributes/schema"
        r = c.delete(SCHEMAS)
        assert r.status_code == 405 and r.json() == {"message": "Method Not Allowed"}


def test_auth() -> None:
    with asgi_client() as c:
        for headers in ({"Api-Token": "wrong"}, {"Api-Token": ""}):
            r = c.get(SCHEMAS, headers=headers)
            assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
        del c.headers["Api-Token"]
        assert c.get(SCHEMAS).status_code == 403


def test_rate_limit_burst_gets_429_with_retry_after() -> None:
    with running_sandbox(SandboxSettings()) as sb, httpx.Client(base_url=sb.url, headers=sb.headers) as c:
        responses = [c.get(SCHEMAS) for _ in range(20)]
        statuses = [r.status_code for r in responses]
        assert statuses[:5] == [200] * 5 and statuses.count(429) >= 10
        ok, limited = responses[0], next(r for r in responses if r.status_code == 429)
        assert ok.headers["RateLimit-Limit"] == "5" and ok.headers["RateLimit-Remaining"] == "4"
        assert limited.json() == {"message": "Too Many Requests"}
        assert int(limited.headers["Retry-After"]) >= 1 and limited.headers["RateLimit-Remaining"] == "0"
        assert sb.state.limiter.limited == statuses.count(429)
        assert sb.traffic.total == 20 and sb.traffic.count(status=429) == statuses.count(429)


def test_paced_requests_are_never_limited() -> None:
    with running_sandbox(SandboxSettings(rate_limit=5)) as sb, httpx.Client(base_url=sb.url, headers=sb.headers) as c:
        statuses = []
        for _ in range(8):
            statuses.append(c.get(SCHEMAS).status_code)
            time.sleep(0.22)
        assert set(statuses) == {200} and sb.state.limiter.limited == 0


def test_rate_limit_status_503_switch() -> None:
    with asgi_client(SandboxSettings(rate_limit=1, rate_limit_status=503)) as c:
        assert [c.get(SCHEMAS).status_code for _ in range(3)] == [200, 503, 503]


def test_request_log() -> None:
    with asgi_client() as c:
        create_schema(c)
        c.get(SCHEMAS, params={"limit": 5})
        log = c.app.state.sandbox.traffic.log
        assert [(e.method, e.path, e.query, e.status) for e in log] == [
            ("POST", SCHEMAS, "", 201), ("GET", SCHEMAS, "limit=5", 200)]
        assert [e.method for e in c.app.state.sandbox.traffic.writes()] == ["POST"]


def test_data_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "sandbox.sqlite3")
    with running_sandbox(quiet_settings(), db=db) as sb, httpx.Client(base_url=sb.url, headers=sb.headers) as c:
        s = c.post(SCHEMAS, json=schema_body("kept")).json()["schema"]
        rec = c.post(f"/api/3/customObjects/records/{s['id']}",
                     json={"record": {"externalId": "x", "fields": [{"id": "name", "value": "v"}]}}).json()["record"]
        c.post("/api/3/contact/sync", json={"contact": {"email": "k@x.io"}})
    with running_sandbox(quiet_settings(), db=db) as sb, httpx.Client(base_url=sb.url, headers=sb.headers) as c:
        assert c.get(f"{SCHEMAS}/{s['id']}").json()["schema"] == s
        assert c.get(f"/api/3/customObjects/records/{s['id']}/{rec['id']}").json()["record"] == rec
        assert c.post("/api/3/contact/sync", json={"contact": {"email": "k@x.io"}}).status_code == 200


def test_concurrent_writes_are_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with running_sandbox(quiet_settings()) as sb, httpx.Client(base_url=sb.url, headers=sb.headers) as c:
        s = c.post(SCHEMAS, json=schema_body("busy")).json()["schema"]
        base = f"/api/3/customObjects/records/{s['id']}"

        def write(i: int) -> int:
            body = {"record": {"externalId": f"x{i % 10}", "fields": [{"id": "name", "value": str(i)}]}}
            return httpx.post(sb.url + base, json=body, headers=sb.headers).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(write, range(40))) == {201}
        assert c.get(base).json()["meta"]["total"] == 10

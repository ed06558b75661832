"""Fault injection (DESIGN §4): parsing, reproducibility, ``drop`` vs ``lost`` over real HTTP and
in process."""

from __future__ import annotations

import httpx
import pytest

from reconciler.sandbox import Faults, SandboxSettings, running_sandbox
from reconciler.sandbox.faults import ConnectionDropped

from .helpers import SCHEMAS, asgi_client, quiet_settings, schema_body


def test_parse_spec() -> None:
    f = Faults.parse("429=0.2,500=0.1,502=0.05,503=0.05,drop=0.05,lost=0.05,latency=100ms", seed=1)
    assert f.probabilities == {"429": 0.2, "500": 0.1, "502": 0.05, "503": 0.05, "drop": 0.05, "lost": 0.05}
    assert f.latency_s == pytest.approx(0.1)
    assert Faults.parse("latency=0.5s").latency_s == pytest.approx(0.5)
    assert not Faults.parse("").active


@pytest.mark.parametrize("spec", ["429", "404=0.1", "500=2", "500=x", "latency=fast", "429=0.7,500=0.7"])
def test_bad_spec_is_a_one_line_value_error(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        Faults.parse(spec)
    assert "\n" not in str(info.value) and str(info.value).startswith("fault spec:")


def test_same_seed_same_decisions() -> None:
    spec = "429=0.2,500=0.1,503=0.1,drop=0.1,lost=0.1"

    def run(seed: int, method: str = "POST", the_spec: str = spec) -> list[str | None]:
        faults = Faults.parse(the_spec, seed=seed)
        return [faults.decide(method) for _ in range(200)]

    assert run(7) == run(7)
    assert set(run(7)) == {None, "429", "500", "503", "drop", "lost"}
    assert run(8) != run(7)
    assert set(run(1, "GET", "lost=1")) == {None}


def _statuses(seed: int) -> list[int | None]:
    settings = quiet_settings(faults="429=0.3,500=0.2,502=0.1,503=0.1", fault_seed=seed)
    with running_sandbox(settings) as sb, httpx.Client(base_url=sb.url, headers=sb.headers) as c:
        return [c.get(SCHEMAS).status_code for _ in range(25)]


def test_same_seed_same_status_sequence_over_http() -> None:
    first = _statuses(42)
    assert first == _statuses(42)
    assert {429, 500, 502, 503, 200} <= set(first)


def test_fault_bodies_are_json_with_retry_after_on_429() -> None:
    with running_sandbox(quiet_settings(faults="429=1")) as sb:
        r = httpx.get(sb.url + SCHEMAS, headers=sb.headers)
        assert r.status_code == 429 and r.json() == {"message": "Too Many Requests"}
        assert r.headers["Retry-After"] == "1"
        assert sb.traffic.log[-1].fault == "429"


def test_drop_closes_without_a_response_and_writes_nothing() -> None:
    with running_sandbox(quiet_settings()) as sb:
        sb.state.set_faults("drop=1")
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            httpx.post(sb.url + SCHEMAS, json=schema_body("dropped"), headers=sb.headers)
        sb.state.set_faults(None)
        assert sb.store.list_schemas() == []
        assert sb.traffic.log[-1].fault == "drop" and sb.traffic.log[-1].status is None
        assert httpx.get(sb.url + SCHEMAS, headers=sb.headers).json()["meta"]["total"] == 0  # still serving


def test_lost_commits_the_write_but_loses_the_response() -> None:
    with running_sandbox(quiet_settings()) as sb:
        sb.state.set_faults("lost=1")
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            httpx.post(sb.url + SCHEMAS, json=schema_body("lost"), headers=sb.headers)
        assert [s["slug"] for s in sb.store.list_schemas()] == ["lost"]
        r = httpx.get(sb.url + SCHEMAS, headers=sb.headers)  # reads are not "lost"
        assert r.status_code == 200 and r.json()["schemas"][0]["slug"] == "lost"


def test_in_process_drop_and_lost_raise_out_of_the_transport() -> None:
    with asgi_client(quiet_settings(faults="drop=1")) as c:
        with pytest.raises(ConnectionDropped):
            c.post(SCHEMAS, json=schema_body("a"))
        assert c.app.state.sandbox.store.list_schemas() == []
        c.app.state.sandbox.set_faults("lost=1")
        with pytest.raises(ConnectionDropped):
            c.post(SCHEMAS, json=schema_body("b"))
        assert [s["slug"] for s in c.app.state.sandbox.store.list_schemas()] == ["b"]


def test_latency_is_added() -> None:
    with running_sandbox(SandboxSettings(rate_limit=0, faults="latency=150ms")) as sb:
        httpx.get(sb.url + SCHEMAS, headers=sb.headers)
        (exchange,) = sb.traffic.log
        assert exchange.elapsed is not None and exchange.elapsed >= 0.15  # the sandbox's own record

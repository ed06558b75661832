"""Interrupts mid-apply (issue 10, acceptance 4): real SIGTERM/SIGINT sent to the real CLI.

A sandbox over HTTP answers every request 400 ms late, so an apply of many new schemas is still
writing when the signal arrives. The first signal must be acknowledged at once (within 0.5 s) and
end with the stopped-apply report; a second one cancels what is in flight; a re-run converges.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import TOKEN

N_SCHEMAS = 20


def _write_schemas(root: Path) -> None:
    (root / "schemas").mkdir()
    for i in range(N_SCHEMAS):
        (root / "schemas" / f"s{i:02d}.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: CustomObjectSchema\n"
            f"slug: s{i:02d}\nlabels: {{singular: Thing {i}, plural: Things {i}}}\n"
            "fields:\n  - {id: name, type: text, labels: {singular: Name, plural: Names}}\n",
            encoding="utf-8")


class Lines:
    """A stream read on a thread; each line with the moment it arrived."""

    def __init__(self, stream: object) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, text: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, line in list(self.lines):
                if text in line:
                    return t
            time.sleep(0.01)
        raise AssertionError(f"{text!r} did not appear within {timeout} s: {self.text}")

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def join(self) -> None:
        self._thread.join(10)


def _apply(root: Path, url: str) -> subprocess.Popen[str]:
    env = dict(os.environ, AC_API_URL=url, AC_API_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--rate", "100"],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_one_signal_finishes_in_flight_then_reports(tmp_path: Path, sig: signal.Signals) -> None:
    _write_schemas(tmp_path)
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0, faults="latency=400ms")) as sb:
        proc = _apply(tmp_path, sb.url)
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        out.wait_for("… done", timeout=30)  # the writes are under way
        sent = time.monotonic()
        proc.send_signal(sig)
        seen = err.wait_for("Interrupt received: finishing", timeout=5)
        assert seen - sent < 0.5, f"acknowledged after {seen - sent:.2f} s"
        code = proc.wait(30)
        out.join()
        err.join()
        assert code == 1
        assert "Apply stopped (interrupted):" in out.text
        assert "not started" in out.text, "the signal must stop new steps"
        assert "Apply complete!" not in out.text
        created = {line.split(":")[0] for _, line in out.lines if line.endswith("s") and "… done" in line}
        assert 0 < len(created) < N_SCHEMAS

        again = _apply(tmp_path, sb.url)
        stdout, stderr = again.communicate(timeout=60)
        assert again.returncode == 0, stderr
        assert "Apply complete!" in stdout
        assert f"{N_SCHEMAS - len(created)} added" in stdout


def test_second_signal_cancels_in_flight_at_once(tmp_path: Path) -> None:
    _write_schemas(tmp_path)
    with running_sandbox(SandboxSettings(token=TOKEN, rate_limit=0, faults="latency=2s")) as sb:
        proc = _apply(tmp_path, sb.url)
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        out.wait_for("Plan: 20 to add", timeout=30)
        time.sleep(0.5)  # the first creates are in flight, each for 2 s
        proc.send_signal(signal.SIGINT)
        err.wait_for("Interrupt received", timeout=5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
        ended = time.monotonic()
        out.join()
        err.join()
        assert ended - sent < 1.5, f"the second interrupt took {ended - sent:.2f} s to end the run"
        assert code == 1
        assert "Second interrupt: cancelling" in err.text
        assert "unknown" in out.text and "re-plan to see" in out.text
        assert "Apply complete!" not in out.text

        # what the cancelled requests did is unknown to the client: a fresh apply finds out and converges
        sb.state.set_faults(None)
        again = _apply(tmp_path, sb.url)
        stdout, stderr = again.communicate(timeout=60)
        assert again.returncode == 0, stderr
        assert "Apply complete!" in stdout
        slugs = [s["slug"] for s in httpx.get(
            f"{sb.url}/api/3/customObjects/schemas", params={"limit": 100}, headers=sb.headers).json()["schemas"]]
        assert sorted(slugs) == [f"s{i:02d}" for i in range(N_SCHEMAS)], "nothing may be created twice"

"""Field migration under a kill and under faults (issue 16, acceptance 3 and the migration part of 4).

* SIGKILL: ``reconciler apply`` in a subprocess against ``reconciler sandbox serve`` on a file
  database, killed at a random point of the copy (5 seeds); a second apply completes it. The served
  sandbox's request log (``--log-requests``) shows one answered upsert per converted record over
  both runs: no record written again after its value was copied.
* Faults: 20% 429, 20% 503, drops and lost responses; the copy completes (apply re-run while it
  reports a failure), no record is created, and no record's other fields or relationships change.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from reconciler.applier import apply_plan
from reconciler.loading import load_file
from reconciler.pipeline import plan_account
from reconciler.sandbox.testing import running_sandbox
from tests.conftest import TOKEN, profile_settings
from tests.support.migrate import (
    EXPAND,
    MALFORMED,
    OLD,
    RECORDS_PATH,
    amount_text,
    check_copied,
    create_invoice,
    read_all,
    seed_invoices,
)
from tests.support.records import client_of
from tests.support.soak import fault_seeds

COUNT = 300
CONVERTIBLE = sum(amount_text(i) not in MALFORMED for i in range(COUNT))
ENV_DROP = ("CI", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "NO_COLOR", "RECONCILER_DEBUG")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seeded_db(tmp: Path, count: int = COUNT, profile: str = "documented") -> tuple[Path, str]:
    db = tmp / "sandbox.sqlite3"
    with running_sandbox(profile_settings(profile), db=str(db)) as sb:
        async def go() -> str:
            async with client_of(sb) as c:
                schema = await create_invoice(c, tmp)
                contact = sb.store.save_contact({"email": "c@example.com"})["id"]
                seed_invoices(sb.store, schema, count, contact=str(contact))
                assert schema.id is not None
                return schema.id

        schema_id = asyncio.run(go())
    return db, schema_id


def _posts(log: Path) -> list[str]:
    """The statuses of the record upserts in the served sandbox's request log."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    return [line.split()[2] for line in lines if line.startswith("POST " + RECORDS_PATH)]


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    env.update({"AC_API_URL": url, "AC_API_TOKEN": TOKEN})
    return env


@pytest.mark.parametrize("seed", range(5))
def test_sigkill_mid_copy_then_rerun_completes_writing_each_record_once(tmp_path: Path, seed: int) -> None:
    db, schema_id = _seeded_db(tmp_path)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "requests.log"
    project = tmp_path / "project"
    (project / "schemas").mkdir(parents=True)
    (project / "schemas" / "invoice.yaml").write_text(EXPAND, encoding="utf-8")
    with open(log, "w", encoding="utf-8") as log_fh:
        server = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "serve", "--db", str(db), "--port",
                                   str(port), "--token", TOKEN, "--rate-limit", "0", "--log-requests"],
                                  stdout=subprocess.DEVNULL, stderr=log_fh, env=_env(url))
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(url + "/api/3/customObjects/schemas", headers={"Api-Token": TOKEN}, timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the served sandbox did not start"
                    time.sleep(0.05)
            before = read_all(url, TOKEN, schema_id)
            kill_at = random.Random(seed).randint(1, CONVERTIBLE - 10)
            cmd = [sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--allow-data-loss", "--rate", "100"]
            first = subprocess.Popen(cmd, cwd=project, env=_env(url), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            while len(_posts(log)) < kill_at and first.poll() is None:
                time.sleep(0.005)
            first.send_signal(signal.SIGKILL)
            first.wait(30)
            assert first.returncode == -signal.SIGKILL, "the apply ended before it was killed"
            killed_after = len(_posts(log))
            assert 0 < killed_after < CONVERTIBLE
            second = subprocess.run(cmd, cwd=project, env=_env(url), capture_output=True, text=True, timeout=300)
            assert second.returncode == 0, second.stdout + second.stderr
            assert "Apply complete!" in second.stdout
            after = read_all(url, TOKEN, schema_id)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    assert check_copied(before, after) == CONVERTIBLE
    statuses = _posts(log)
    # one answered upsert per converted record, over both runs: none was written again after its
    # value was copied (an upsert cut off by the kill before the sandbox answered is not a write)
    assert statuses.count("201") == CONVERTIBLE, (kill_at, killed_after, len(statuses))
    assert len(statuses) - statuses.count("201") <= 1
    journal = next((project / ".reconciler" / "migrations").glob("*/invoice.amount.journal"))
    assert '"complete":true' in journal.read_text(encoding="utf-8").splitlines()[-1]


@pytest.mark.parametrize("seed", fault_seeds())
def test_copy_under_faults_completes_and_changes_nothing_else(tmp_path: Path, seed: int) -> None:
    profile = ("documented", "pessimistic")[seed % 2]
    faults = "429=0.2,503=0.2,drop=0.05,lost=0.05"
    (tmp_path / "invoice.yaml").write_text(EXPAND, encoding="utf-8")
    desired = {"invoice": load_file(tmp_path / "invoice.yaml")}
    db, schema_id = _seeded_db(tmp_path, 200, profile)
    with running_sandbox(profile_settings(profile), db=str(db)) as sb:
        before = read_all(sb.url, TOKEN, schema_id)
    with running_sandbox(profile_settings(profile, faults=faults, fault_seed=seed), db=str(db)) as sb:
        async def migrate() -> int:
            runs = 0
            async with client_of(sb) as c:
                for runs in range(1, 6):
                    try:
                        plan = await plan_account(c, desired)
                    except Exception:  # a read that failed after the client's retries: plan again
                        continue
                    if not plan.has_changes:
                        return runs
                    result = await apply_plan(plan, c, desired=desired, allow_data_loss=True,
                                              migrations_dir=tmp_path / "migrations")
                    if result.ok:
                        return runs
            return runs

        runs = asyncio.run(migrate())
        injected = {e.fault for e in sb.traffic.log if e.fault}
    with running_sandbox(profile_settings(profile), db=str(db)) as sb:
        after = read_all(sb.url, TOKEN, schema_id)
    assert {"lost", "drop"} <= injected, injected
    assert runs < 5, "the copy did not complete in 4 applies"
    converted = sum(amount_text(i) not in MALFORMED for i in range(200))
    assert check_copied(before, after) == converted  # no record created, none's other fields changed
    assert all(r.value_of(OLD) == before[rid].value_of(OLD) for rid, r in after.items())

"""Issue 12 acceptance 3 and 4: an account holding a field of a type reconciler does not know, and a
token of a user who is not an admin.

The sandbox runs the pessimistic profile over real HTTP: at startup it holds the public schema
``app-42-event-ticket`` with a ``boolean`` field, and ``member-token`` is a non-admin user's token
(403 on field deletes and on records lists without a filter). The schema-list lag is 0 here, so the
CLI runs need no waits; the lag has its own tests (``test_converge_pessimistic``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.applier import NeedsAdmin, apply_plan
from reconciler.client import Client
from reconciler.files import export_schemas, load_dir
from reconciler.impact import count_impacts
from reconciler.plan import Impact
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.sandbox import SandboxSettings
from reconciler.sandbox.seed import UNKNOWN_TYPE_SLUG
from reconciler.sandbox.testing import RunningSandbox, running_sandbox
from tests.conftest import TOKEN, Cli

MEMBER = "member-token"
APP = UNKNOWN_TYPE_SLUG
NOTE = f'field "{APP}.vip" (boolean): a type reconciler does not manage; left alone'

NOTES_YAML = """\
apiVersion: reconciler/v1
kind: CustomObjectSchema
slug: notes
labels: {singular: Note, plural: Notes}
fields:
  - id: body
    type: textarea
    labels: {singular: Body, plural: Bodies}
  - id: link
    type: text
    labels: {singular: Link, plural: Links}
"""


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """Overrides conftest's: the pessimistic profile (unknown-type schema, member token), no lag."""
    st = SandboxSettings.from_profile("pessimistic", token=TOKEN, rate_limit=0, schema_list_lag_s=0,
                                      list_visibility_delay_s=0, list_seed=11)
    with running_sandbox(st) as sb:
        yield sb


def api(sb: RunningSandbox, method: str, path: str, token: str = TOKEN, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{sb.url}/api/3{path}", headers={"Api-Token": token}, timeout=10, **kw)


def writes(sb: RunningSandbox) -> list[tuple[str, str]]:
    return [(e.method, e.path) for e in sb.traffic.log if e.method in ("POST", "PUT", "DELETE")]


def app_doc(sb: RunningSandbox) -> dict[str, Any]:
    return next(d for d in sb.store.list_schemas() if d["slug"] == APP)


# ---------------------------------------------------------------------------------------------
# Unknown field types


def test_plan_apply_drift_and_export_work_beside_an_unknown_type(cli: Cli, sandbox: RunningSandbox) -> None:
    before = app_doc(sandbox)
    cli.write("notes.yaml", NOTES_YAML)

    r = cli("plan", "--detailed-exitcode")
    assert r.code == 2, r.out + r.err
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in r.out
    assert NOTE in r.out

    r = cli("apply", "--auto-approve")
    assert r.code == 0, r.out + r.err
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in r.out

    r = cli("plan", "--detailed-exitcode")
    assert r.code == 0, r.out + r.err
    assert NOTE in r.out and "No changes. The account matches the files." in r.out

    r = cli("drift")
    assert r.code == 0, r.out + r.err
    assert f"i {NOTE}" in r.out

    r = cli("export", "--slug", APP, "--out-dir", "exported")
    assert r.code == 0, r.out + r.err
    text = (cli.workdir / "exported" / f"{APP}.yaml").read_text()
    assert '# not exported: field "vip" (boolean), a type reconciler does not manage' in text
    assert "id: vip" not in text and "id: ticket-code" in text
    exported = load_dir(cli.workdir / "exported")[APP]
    assert [f.id for f in exported.fields] == ["ticket-code", "event-date", "price"]

    assert app_doc(sandbox) == before  # nothing of the app's schema was written
    assert all(APP not in path and before["id"] not in path for _, path in writes(sandbox))


def test_the_exported_file_plans_nothing_for_the_opaque_field(cli: Cli, sandbox: RunningSandbox) -> None:
    assert cli("export", "--slug", APP).code == 0
    r = cli("plan", "--detailed-exitcode")
    assert r.code == 0, r.out + r.err  # no DL102 for the field the file lacks, no change at all
    assert NOTE in r.out and "DL102" not in r.out


def test_a_file_that_declares_the_opaque_field_is_warned_not_planned(cli: Cli, sandbox: RunningSandbox) -> None:
    assert cli("export", "--slug", APP).code == 0
    path = cli.schemas / f"{APP}.yaml"
    path.write_text(path.read_text().replace("fields:\n", "fields:\n  - id: vip\n    type: text\n"
                                             "    labels: {singular: VIP, plural: VIPs}\n", 1))
    r = cli("plan", "--detailed-exitcode")
    assert r.code == 0, r.out + r.err
    assert "NA301" not in r.out
    assert (f'field "{APP}.vip" is declared in the files as text, but the account\'s field is boolean, a type '
            "reconciler does not manage; left alone, nothing planned for it (remove it from the file)") in r.out
    r = cli("drift")
    assert r.code == 0 and f'! field "{APP}.vip" is declared in the files as text' in r.out


def test_validate_still_refuses_unknown_types_in_files(cli: Cli) -> None:
    cli.write("flags.yaml", NOTES_YAML.replace("slug: notes", "slug: flags").replace("type: text", "type: boolean"))
    r = cli("validate")
    assert r.code == 1
    assert 'unknown field type "boolean"' in r.err or "unknown field type 'boolean'" in r.err
    assert "valid types: text, textarea, number, date, datetime, currency, dropdown, multiselect" in r.err


def test_an_unknown_type_in_a_managed_schema_is_left_alone(sandbox: RunningSandbox, tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text(NOTES_YAML)
    desired = load_dir(tmp_path)

    async def go() -> tuple[Any, Any, Any]:
        async with Client(sandbox.url, TOKEN, rate=None) as c:
            created = await c.create_schema(desired["notes"])
            assert created.id
            flag = {"id": "is-member", "type": "boolean", "labels": {"singular": "Member", "plural": "Members"}}
            await c.update_schema(created.id, {"fields": [flag]})
            live = {s.slug: s for s in await c.list_schemas()}
            options = PlanOptions(prune=True, targets=("notes",))
            first = make_plan(desired.schemas, live, options)
            # a change beside it: the PUT carries only the changed field, the opaque one is untouched
            want = {"notes": desired["notes"].model_copy(update={"description": "Free notes"})}
            second = make_plan(want, live, options)
            result = await apply_plan(second, c, desired=want, options=options)
            return first, second, result

    first, second, result = asyncio.run(go())
    assert not first.has_changes and not first.has_errors
    assert [n.message for n in first.notes if n.kind == "opaque"] == [
        'field "notes.is-member" (boolean): a type reconciler does not manage; left alone']
    assert [c.kind for c in second.changes] == ["update-schema"]
    assert result.ok
    doc = next(d for d in sandbox.store.list_schemas() if d["slug"] == "notes")
    assert [f["id"] for f in doc["fields"]] == ["body", "link", "is-member"]


def test_a_deleted_opaque_field_id_is_not_reused(sandbox: RunningSandbox, tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text(NOTES_YAML)
    desired = load_dir(tmp_path)

    async def go() -> Any:
        async with Client(sandbox.url, TOKEN, rate=None) as c:
            created = await c.create_schema(desired["notes"])
            assert created.id
            flag = {"id": "flag", "type": "boolean", "labels": {"singular": "Flag", "plural": "Flags"}}
            await c.update_schema(created.id, {"fields": [flag]})
            await c.delete_field(created.id, "flag")
            live = {s.slug: s for s in await c.list_schemas()}
            with_flag = NOTES_YAML + "  - id: flag\n    type: text\n    labels: {singular: Flag, plural: Flags}\n"
            (tmp_path / "notes.yaml").write_text(with_flag)
            return make_plan(load_dir(tmp_path).schemas, live, PlanOptions())

    p = asyncio.run(go())
    assert [e.code for e in p.errors] == ["NA302"]


def test_export_names_the_opaque_field_and_round_trips(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async def go() -> Any:
        async with Client(sandbox.url, TOKEN, rate=None) as c:
            return {s.slug: s for s in await c.list_schemas()}

    live = asyncio.run(go())
    (written,) = export_schemas([live[APP]], tmp_path)
    again = load_dir(tmp_path)
    p = make_plan(again.schemas, live, PlanOptions())
    assert not p.has_changes and not p.has_errors
    assert written.read_text().startswith('# not exported: field "vip" (boolean)')


# ---------------------------------------------------------------------------------------------
# A token that is not an admin user's


def _member(cli: Cli, sandbox: RunningSandbox) -> str:
    """A ``notes`` schema made by the admin, two records; the CLI then runs with the member token."""
    cli.write("notes.yaml", NOTES_YAML)
    assert cli("apply", "--auto-approve").code == 0
    sid = next(d["id"] for d in sandbox.store.list_schemas() if d["slug"] == "notes")
    for i in range(2):
        body = {"record": {"externalId": f"n{i}", "fields": [{"id": "body", "value": "x"},
                                                              {"id": "link", "value": f"https://x/{i}"}]}}
        assert api(sandbox, "POST", f"/customObjects/records/{sid}", json=body).status_code == 201
    cli.monkeypatch.setenv("AC_API_TOKEN", MEMBER)
    sandbox.traffic.clear()
    return sid


def test_a_member_token_cannot_delete_a_field_and_nothing_is_written(cli: Cli, sandbox: RunningSandbox) -> None:
    _member(cli, sandbox)
    before = [d for d in sandbox.store.list_schemas()]
    # the file drops "link" (DL102) and changes a label (an update that would come first)
    cli.write("notes.yaml", NOTES_YAML.split("  - id: link")[0].replace("{singular: Body,", "{singular: Text,"))

    r = cli("plan", "--detailed-exitcode")
    assert r.code == 2, r.out + r.err
    # the field-filtered count is allowed, the schema's total (an unfiltered list) is not
    assert "DL102 delete field notes.link: 2 of an unknown number of records hold a value that will be lost" in r.out
    assert ("schema notes: records not counted (impact unknown): the account refused the API token for listing "
            "records without a filter, which only admin users may do") in r.out

    r = cli("apply", "--auto-approve", "--allow-data-loss")
    assert r.code == 1, r.out + r.err
    (err,) = r.err.strip().splitlines()
    assert err.startswith("Error: ")
    assert "deleting field notes.link needs an admin user's API token" in err
    assert "only admin users may do" in err and err.endswith("Nothing was changed.")
    assert MEMBER not in r.out + r.err
    assert writes(sandbox) == []
    assert sandbox.store.list_schemas() == before


def _member_plan(sandbox: RunningSandbox, tmp_path: Path) -> tuple[dict[str, Any], Any]:
    """``notes`` made by the admin; the files drop its field ``link``."""
    (tmp_path / "notes.yaml").write_text(NOTES_YAML)

    async def go() -> None:
        async with Client(sandbox.url, TOKEN, rate=None) as admin:
            await admin.create_schema(load_dir(tmp_path)["notes"])

    asyncio.run(go())
    (tmp_path / "notes.yaml").write_text(NOTES_YAML.split("  - id: link")[0])
    return dict(load_dir(tmp_path).schemas), PlanOptions()


def test_apply_refuses_field_deletes_for_a_member_token_before_writing(sandbox: RunningSandbox,
                                                                      tmp_path: Path) -> None:
    want, options = _member_plan(sandbox, tmp_path)

    async def go() -> Any:
        async with Client(sandbox.url, MEMBER, rate=None, token_source="$AC_API_TOKEN") as c:
            live = {s.slug: s for s in await c.list_schemas()}
            p = make_plan(want, live, options)
            counted = await count_impacts(p, c)
            with pytest.raises(NeedsAdmin) as info:
                await apply_plan(counted, c, desired=want, options=options, allow_data_loss=True)
            return p, counted, info.value

    p, counted, exc = asyncio.run(go())
    assert [c.kind for c in p.changes] == ["delete-field"]
    (finding,) = counted.changes[0].findings
    assert finding.impact is not None and finding.impact.total is None  # unknown, not a failed plan
    assert [n.kind for n in counted.notes if n.kind == "impact"] == ["impact"]
    assert str(exc).startswith("deleting field notes.link needs an admin user's API token, and the account "
                               "refused this one an admin-only read (GET /customObjects/records/")
    assert "check that $AC_API_TOKEN holds an admin user's API token" in str(exc)
    assert [m for m, _ in writes(sandbox) if m != "POST"] == []


def test_a_refused_delete_step_names_the_admin_permission(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """A plan whose counts were had (by an admin) is not checked again: the delete's own 403 is then
    reported by its step, with the permission it needs."""
    want, options = _member_plan(sandbox, tmp_path)

    async def go() -> Any:
        async with Client(sandbox.url, MEMBER, rate=None) as c:
            live = {s.slug: s for s in await c.list_schemas()}
            p = make_plan(want, live, options)
            p = p.with_impacts({p.changes[0].key: Impact(affected=0, total=0)})
            return await apply_plan(p, c, desired=want, options=options, allow_data_loss=True)

    result = asyncio.run(go())
    (r,) = result.results
    assert r.status == "failed" and not result.ok
    assert r.error is not None and "permission denied" in r.error
    assert "refused the API token for deleting a field, which only admin users may do" in r.error
    assert next(f for f in sandbox.store.list_schemas() if f["slug"] == "notes")["fields"][1]["id"] == "link"

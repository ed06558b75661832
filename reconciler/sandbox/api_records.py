"""Record routes (§7): upsert (§7.2 matrix, U13, U16), get by id / externalId (U11), delete, list
(U20 order and visibility delay; admin-only without filters)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from reconciler.sandbox import clock, openapi, query, rules
from reconciler.sandbox.state import SandboxState, is_member, state_of
from reconciler.sandbox.store import RecordRow
from reconciler.sandbox.values import to_number
from reconciler.sandbox.wire import (
    BadRequest,
    NotFound,
    empty,
    json_response,
    message,
    read_json_object,
    render_record,
)

router = APIRouter()
BASE = "/api/3/customObjects/records/{schema_id}"


def _schema(state: SandboxState, schema_id: str) -> dict[str, Any]:
    doc = state.store.get_schema(schema_id)
    if doc is None:
        raise NotFound(schema_id)
    return doc


def _check_uuid(record_id: str) -> None:
    """U17: a malformed record id is a 400, an unknown one a 404."""
    try:
        uuid.UUID(record_id)
    except ValueError:
        raise BadRequest(record_id) from None


def _target_exists(state: SandboxState):
    def exists(rel: Mapping[str, Any], target: str) -> bool:
        """U14 (guess): contacts must be known to /contact/sync (unless lenient); accounts and deals
        are not emulated, any positive integer is accepted; custom namespaces need the record id."""
        ns = rel["namespace"]
        if ns in ("contacts", "accounts", "deals"):
            num = to_number(target)
            if not isinstance(num, int) or num <= 0:  # to_number: at most MAX_INT, what SQLite holds
                return False
            return ns != "contacts" or state.settings.lenient_contacts or state.store.contact_exists(num)
        other = next((s for s in state.store.list_schemas() if ns in (s["slug"], s["id"])), None)
        return other is not None and state.store.record_exists(other["id"], target)

    return exists


@router.post(BASE, openapi_extra=openapi.operation(body="record"))
async def upsert_record(request: Request, schema_id: str) -> Response:
    """The body is read first; the matching, the checks and the write are one transaction."""
    state = state_of(request)
    raw = rules.body_part(await read_json_object(request), "record")
    with state.store.transaction():
        row, schema = _upsert(state, schema_id, raw)
    body = render_record(row, schema, guide=state.settings.upsert_response == "guide")
    return json_response({"record": body}, 201)  # U13: 201 for create and update


def _upsert(state: SandboxState, schema_id: str, raw: Mapping[str, Any]) -> tuple[RecordRow, dict[str, Any]]:
    schema = _schema(state, schema_id)
    rec_id, ext = raw.get("id"), raw.get("externalId")
    if ext is not None and (isinstance(ext, bool) or not isinstance(ext, (str, int)) or str(ext) == ""):
        raise rules.Unprocessable([rules.error("externalId", "externalId must be a non-empty string")])
    ext = None if ext is None else str(ext)
    fields, rels = rules.check_record(schema, raw, state.settings, _target_exists(state))
    by_id = state.store.get_record(schema_id, rec_id) if isinstance(rec_id, str) and rec_id else None
    by_ext = state.store.get_record_by_external(schema_id, ext) if ext is not None else None
    # §7.2: id+ext match -> update; id match, ext omitted -> update; id match, other ext -> new record
    # (or the record holding that ext, keeping externalIds unique); ext match -> update; else create.
    row = by_id if by_id is not None and (ext is None or by_id.external_id == ext) else by_ext
    ts = clock.now()
    if row is None:
        row = RecordRow(0, str(uuid.uuid4()), schema_id, ext, ts, ts, fields, rels or {})
    else:
        row.fields = fields  # verified live: a full replacement
        if rels is not None:  # U16 (guess): relationships replaced when the key is present ...
            row.relationships = rels
        elif not state.settings.upsert_keeps_relationships:  # ... and, in the other reading, cleared
            row.relationships = {}
        row.updated = ts
    types = {f["id"]: f["type"] for f in schema["fields"]}
    state.store.save_record(row, types)
    return row, schema


@router.get(BASE, openapi_extra=openapi.operation(openapi.RECORD_LIST_QUERY))
async def list_records(request: Request, schema_id: str) -> Response:
    """Admin users only without ``filters[...]`` (S11): a member token gets 403 (the body is a guess).
    U20: shuffled per request (``list_order``) unless ``orders[...]``; new records hidden for
    ``list_visibility_delay_s``."""
    state = state_of(request)
    schema = _schema(state, schema_id)
    filters, orders = query.parse(request.query_params.multi_items())
    if is_member(request) and not filters:
        return message(403)
    page = query.paging(request.query_params, state.settings)
    created_before = None
    if state.settings.list_visibility_delay_s > 0:  # U20
        delay_ns = int(state.settings.list_visibility_delay_s * 1e9)
        created_before = clock.format_ns(time.time_ns() - delay_ns)
    shuffle = state.shuffle_key() if state.settings.list_order == "shuffled" and not orders else None
    total, rows = state.store.list_records(
        schema_id, query.record_conds(filters, schema), query.record_orders(orders, schema),
        page.limit, page.offset, created_before, shuffle,
    )
    return json_response({
        "records": [render_record(r, schema) for r in rows],
        "meta": {"total": total, "count": len(rows), "limit": page.limit, "offset": page.offset},
    })


def _by_id(request: Request, schema_id: str, record_id: str) -> tuple[dict[str, Any], RecordRow]:
    state = state_of(request)
    schema = _schema(state, schema_id)
    _check_uuid(record_id)
    row = state.store.get_record(schema_id, record_id)
    if row is None:
        raise NotFound(record_id)
    return schema, row


def _by_external(request: Request, schema_id: str, external_id: str) -> tuple[dict[str, Any], RecordRow]:
    state = state_of(request)
    schema = _schema(state, schema_id)
    row = state.store.get_record_by_external(schema_id, external_id)
    if row is None:
        raise NotFound(external_id)
    return schema, row


@router.get(BASE + "/external/{external_id}")
@router.get("/api/3/records/{schema_id}/external/{external_id}")  # U11: the documented path, too
async def get_record_by_external(request: Request, schema_id: str, external_id: str) -> Response:
    schema, row = _by_external(request, schema_id, external_id)
    return json_response({"record": render_record(row, schema)})


@router.delete(BASE + "/external/{external_id}")
async def delete_record_by_external(request: Request, schema_id: str, external_id: str) -> Response:
    _schema_doc, row = _by_external(request, schema_id, external_id)
    state_of(request).store.delete_record(row.rid)
    return empty(202)


@router.get(BASE + "/{record_id}")
async def get_record(request: Request, schema_id: str, record_id: str) -> Response:
    schema, row = _by_id(request, schema_id, record_id)
    return json_response({"record": render_record(row, schema)})


@router.delete(BASE + "/{record_id}")
async def delete_record(request: Request, schema_id: str, record_id: str) -> Response:
    _schema_doc, row = _by_id(request, schema_id, record_id)
    state_of(request).store.delete_record(row.rid)
    return empty(202)

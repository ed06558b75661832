"""``POST /api/3/contact/sync`` (§8): upsert by email; 201 created, 200 updated; §8 error bodies."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from reconciler.sandbox import openapi
from reconciler.sandbox.state import state_of
from reconciler.sandbox.wire import json_response, read_json_object

router = APIRouter()
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")  # a guess at "valid"
MISSING = {"errors": [{"status": 400, "title": "Bad Request", "detail": "Contact email must be provided for sync"}]}
INVALID = {"errors": [{"title": "Contact Email Address is not valid.", "code": "email_invalid",
                       "error": "must_be_valid_email_address", "source": {"pointer": "/data/attributes/email"}}]}
KEPT = ("firstName", "lastName", "phone")


@router.post("/api/3/contact/sync", openapi_extra=openapi.operation(body="contact"))
async def sync_contact(request: Request) -> Response:
    store = state_of(request).store
    body = await read_json_object(request)
    raw = body.get("contact")
    if not isinstance(raw, dict):
        return json_response(MISSING, 400)
    email = raw.get("email")
    if email is None or email == "":
        return json_response(MISSING, 400)
    if not isinstance(email, str) or not EMAIL_RE.match(email.strip()):
        return json_response(INVALID, 422)
    email = email.strip()
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    with store.transaction():  # the look-up by email and the write against the same state
        doc = store.get_contact_by_email(email)
        created = doc is None
        if doc is None:
            doc = {"email": email, "firstName": "", "lastName": "", "phone": "", "cdate": now,
                   "hash": hashlib.md5(email.lower().encode()).hexdigest(), "fieldValues": []}
        for key in KEPT:  # keys left out are kept (live)
            value = raw.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                doc[key] = str(value)
        doc["udate"] = now
        doc = store.save_contact(doc)
    contact = {"id": doc["id"], **{k: v for k, v in doc.items() if k != "id"},
               "links": {"fieldValues": f"/api/3/contacts/{doc['id']}/fieldValues"}}
    return json_response({"contact": contact, "fieldValues": []}, 201 if created else 200)

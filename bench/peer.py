"""The naive peer: the same job as ``reconciler plan`` / ``apply``, written as a user's first script would.

``AC_API_TOKEN=… python -m bench.peer {plan,apply} --url URL --dir schemas [--rate 5]``

It uses the third-party ``activecampaign-python`` client (``activecampaign.client.Client(url,
token).customobjects``), reads the YAML files with PyYAML's ``yaml.safe_load``, lists the schemas
(100 a page), GETs each schema the files name, compares them as dicts and, for ``apply``, writes one
request at a time: a POST for each new schema, a PUT for each changed one (its changed labels and
fields, nothing else), a DELETE for each field the files no longer have. Every request is paced to
``--rate`` requests a second with a plain ``time.sleep``. No safety: no preflight, no check that the
account did not move between its read and its writes, no verification, no data-loss gate.

Its last line on stdout is a JSON summary (counts of changes and of requests by method, wall time),
which ``bench/commands.py`` reads. The token is read from ``AC_API_TOKEN``, never from the command line.

The file -> API mapping here is the peer's own (``file_to_body``); the benchmark also seeds its
accounts through it, and checks the peer's end state with ``reconciler plan`` (an empty plan means the
peer did the same job).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Pacer", "compare", "file_to_body", "main", "read_files"]

_FIELD_KEYS = ("description", "scale", "defaultCurrency")


def _options(values: Any) -> list[dict[str, str]] | None:
    if values is None:
        return None
    return [{"value": str(v["value"] if isinstance(v, dict) else v)} for v in values]


def _field_body(f: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f["id"], "type": f["type"], "labels": dict(f["labels"]),
                           "required": bool(f.get("required", False))}
    for key in _FIELD_KEYS:
        if f.get(key) is not None:
            out[key] = f[key]
    opts = _options(f.get("options"))
    if opts is not None:
        out["options"] = opts
    return out


def _relationship_body(r: dict[str, Any]) -> dict[str, Any]:
    out = {"id": r["id"], "namespace": r["namespace"], "labels": dict(r["labels"]),
           "hasMany": bool(r.get("hasMany", False))}
    if r.get("description") is not None:
        out["description"] = r["description"]
    return out


def file_to_body(doc: dict[str, Any]) -> dict[str, Any]:
    """A schema file's document -> the inside of a create body (``{"schema": <this>}``)."""
    out: dict[str, Any] = {"slug": doc["slug"], "labels": dict(doc["labels"]),
                           "fields": [_field_body(f) for f in doc.get("fields") or ()],
                           "relationships": [_relationship_body(r) for r in doc.get("relationships") or ()]}
    if doc.get("description") is not None:
        out["description"] = doc["description"]
    return out


def read_files(directory: Path) -> dict[str, dict[str, Any]]:
    """Every ``*.yaml`` under ``directory``: slug -> document."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.rglob("*.yaml")):
        with path.open(encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
        out[doc["slug"]] = doc
    return out


class Pacer:
    """At most ``rate`` requests a second: sleep until 1/rate after the previous request started."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = 0.0
        self.sent: Counter[str] = Counter()

    def __call__(self, method: str) -> None:
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval
        self.sent[method] += 1


def _field_changes(want: dict[str, Any], have: dict[str, Any]) -> dict[str, Any] | None:
    """The field as a PUT sends it when it differs (the live field with the file's values), else None."""
    body = _field_body(want)
    merged = {k: v for k, v in have.items() if k not in ("status", "inherited")}
    changed = False
    for key in ("labels", "required", *_FIELD_KEYS):
        if key in body and merged.get(key) != body[key]:
            merged[key] = body[key]
            changed = True
    if "options" in body:
        live_values = [o["value"] for o in have.get("options") or ()]
        added = [o for o in body["options"] if o["value"] not in live_values]
        if added:
            merged["options"] = list(have.get("options") or ()) + added
            changed = True
    return merged if changed else None


def compare(doc: dict[str, Any], live: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """(PUT body or None, ids of the fields to delete) for one schema the account already has."""
    want = file_to_body(doc)
    body: dict[str, Any] = {}
    for key in ("labels", "description"):
        if key in want and live.get(key) != want[key]:
            body[key] = want[key]
    active = {f["id"]: f for f in live.get("fields") or () if f.get("status") != "marked_for_deletion"}
    fields = []
    for f in doc.get("fields") or ():
        have = active.get(f["id"])
        change = _field_body(f) if have is None else _field_changes(f, have)
        if change is not None:
            fields.append(change)
    if fields:
        body["fields"] = fields
    live_rels = {r["id"] for r in live.get("relationships") or ()}
    rels = [r for r in want["relationships"] if r["id"] not in live_rels]
    if rels:
        body["relationships"] = rels
    wanted = {f["id"] for f in doc.get("fields") or ()}
    return (body or None), [fid for fid in active if fid not in wanted]


def _ok(answer: Any, key: str) -> bool:
    return isinstance(answer, dict) and key in answer


def run(mode: str, url: str, token: str, directory: Path, rate: float) -> dict[str, Any]:
    from activecampaign.client import Client

    t0 = time.perf_counter()
    files = read_files(directory)
    read_s = time.perf_counter() - t0
    co = Client(url, token).customobjects
    pace = Pacer(rate)
    failures: list[str] = []

    ids: dict[str, str] = {}
    offset = 0
    while True:
        pace("GET")
        page = co.list_all_schemas(limit=100, offset=offset)
        if not _ok(page, "schemas"):
            raise SystemExit(f"peer: listing failed: {str(page)[:200]}")
        ids.update({s["slug"]: s["id"] for s in page["schemas"]})
        offset += len(page["schemas"])
        if not page["schemas"] or offset >= int(page["meta"]["total"]):
            break

    creates: list[str] = []
    updates: dict[str, tuple[str, dict[str, Any]]] = {}
    deletes: list[tuple[str, str, str]] = []
    for slug, doc in files.items():
        if slug not in ids:
            creates.append(slug)
            print(f"+ {slug}")
            continue
        pace("GET")
        got = co.retrieve_a_schema(ids[slug])
        if not _ok(got, "schema"):
            raise SystemExit(f"peer: reading {slug} failed: {str(got)[:200]}")
        body, gone = compare(doc, got["schema"])
        if body is not None:
            updates[slug] = (ids[slug], body)
            print(f"~ {slug}: {', '.join(sorted(body))}")
        for fid in gone:
            deletes.append((slug, ids[slug], fid))
            print(f"- {slug}.{fid}")
    print(f"Peer plan: {len(creates)} to create, {len(updates)} to update, {len(deletes)} fields to delete.")

    if mode == "apply":
        for slug in creates:
            pace("POST")
            if not _ok(co.create_a_schema({"schema": file_to_body(files[slug])}), "schema"):
                failures.append(f"create {slug}")
        for slug, (sid, body) in updates.items():
            pace("PUT")
            if not _ok(co.update_a_schema(sid, {"schema": body}), "schema"):
                failures.append(f"update {slug}")
        for slug, sid, fid in deletes:
            pace("DELETE")
            if not _ok(co.delete_a_field(sid, fid), "schema"):
                failures.append(f"delete {slug}.{fid}")
    return {"mode": mode, "files": len(files), "read_files_s": read_s, "create": len(creates),
            "update": len(updates), "delete_fields": len(deletes), "requests": dict(pace.sent),
            "failures": failures, "wall_s": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("plan", "apply"))
    ap.add_argument("--url", required=True, help="the account's URL, without /api/3")
    ap.add_argument("--dir", type=Path, default=Path("schemas"))
    ap.add_argument("--rate", type=float, default=5.0, help="requests a second (default 5)")
    args = ap.parse_args(argv)
    token = os.environ.get("AC_API_TOKEN")
    if not token:
        print("peer: set AC_API_TOKEN", file=sys.stderr)
        return 1
    out = run(args.mode, args.url, token, args.dir, args.rate)
    print(json.dumps(out))
    return 1 if out["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())

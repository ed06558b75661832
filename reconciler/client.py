"""The ActiveCampaign Custom Objects API client: its endpoints, over :class:`~reconciler.transport.Transport`.

``async with Client(url, token) as c: schemas = await c.list_schemas()``

Auth, limiter, shared pause, retries, deadline and errors are the transport's (see
:mod:`reconciler.transport`); this module holds what each endpoint sends and how its answer is read:
the schema list read in a stable order and checked to add up, record counts, and the writes (a
schema create that is never done twice, deletes that count "gone on a retry" as done).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import (
    ApiError,
    AuthenticationFailed,
    NotFound,
    RateLimited,
    ServerError,
    TransportFailure,
    UnexpectedResponse,
    ValidationFailed,
)
from reconciler.exchange import AlreadyDone, ClientStats, RequestRecord, parse_retry_after
from reconciler.limiter import MIN_RATE, TokenBucket
from reconciler.model import Schema
from reconciler.transport import PAGE_SIZE, RETRY_AFTER_CAP, WAIT_ANNOUNCE_AFTER, Transport
from reconciler.urls import SCHEMAS_PATH, normalize_base_url, quote_segment
from reconciler.wire import schema_from_api, schema_to_api

__all__ = [
    "LIST_READS",
    "MIN_RATE",
    "PAGE_SIZE",
    "RETRY_AFTER_CAP",
    "SCHEMA_ORDER",
    "WAIT_ANNOUNCE_AFTER",
    "Client",
    "ClientStats",
    "RequestRecord",
    "TokenBucket",
    "normalize_base_url",
    "parse_retry_after",
]

log = logging.getLogger("reconciler.client")

#: Items converted between two turns of the event loop when a list page is parsed (a few ms of work).
_CONVERT_SLICE = 10
#: Pages of a list requested at once once the first page gave ``meta.total`` (the limiter spaces them).
_PAGES_AHEAD = 8
#: The order the schema list is asked for. The API's default order is unspecified (docs/api-notes.md §7.4,
#: "not by creation time" live, S10), so paging by offset through it can skip or repeat a schema.
#: ``orders[createdTimestamp]`` is the one order reported working on a live account (S10; S5
#: documents ``orders[...]`` in general). Ascending, so a schema created while the list is read is
#: added after the pages already read instead of shifting them. Ties (schemas created in the same
#: instant) have no documented tie-breaker: the check of :meth:`Client.list_schemas` catches a
#: server that orders them differently from one page to the next.
SCHEMA_ORDER: Mapping[str, str] = {"orders[createdTimestamp]": "ASC"}
#: How many times a schema list that does not add up is read in all before it is an error.
LIST_READS = 3


class Client(Transport):
    """Async client of the Custom Objects API: :class:`~reconciler.transport.Transport` (its constructor
    and its behaviour) plus the endpoints."""

    def _schema_from(self, data: Any, method: str, path: str, status: int) -> Schema:
        if not isinstance(data, dict) or not isinstance(data.get("schema"), dict):
            raise UnexpectedResponse(status, method, path, reason='the response has no "schema" object')
        return self._read_schema(data["schema"], method, path, status)

    def _read_schema(self, data: Any, method: str, path: str, status: int = 200) -> Schema:
        """:func:`schema_from_api`; a schema the model cannot read is an :class:`UnexpectedResponse`
        whose line names the first problem (masked, then cut), not a multi-line validation error."""
        try:
            return schema_from_api(data)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
            which = data.get("slug") or data.get("id") if isinstance(data, dict) else None
            name = f" {self._scrub(str(which))[:60]!r}" if which else ""
            problem = _first_problem(exc)
            raise UnexpectedResponse(status, method, path, reason=(
                f"the API sent a schema{name} this client cannot read ({self._scrub(problem)})")) from None

    # -- reads ------------------------------------------------------------------------------

    async def _page(self, path: str, key: str, offset: int, limit: int,
                    extra: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        params = {"limit": str(limit), "offset": str(offset), **(extra or {})}
        data = self._json(await self._request("GET", path, params=params), "GET", path)
        if not isinstance(data, dict):
            raise UnexpectedResponse(200, "GET", path, reason="the list response is not a JSON object")
        items = data.get(key)
        if items is None and key == "schemas":
            items = data.get("objectTypes")  # legacy key (docs/api-notes.md §3)
        if not isinstance(items, list):
            raise UnexpectedResponse(200, "GET", path, reason=f'the list response has no "{key}" array')
        meta = data.get("meta")
        return items, meta if isinstance(meta, dict) else {}

    async def _list_all(self, path: str, key: str, extra: Mapping[str, str] | None = None,
                        convert: Callable[[Any], Any] | None = None) -> _Listing:
        """First page, then the other pages up to ``meta.total``, :data:`_PAGES_AHEAD` at a time concurrently.

        Paging stops at ``meta.total``, or at a short page. A response without ``meta.total`` is an
        :class:`UnexpectedResponse`; a page that holds only ids already read (a server that ignores
        ``offset``, or a list whose order moved) is a :class:`_PagesRepeat`: either would otherwise
        loop, or return a partial list as if whole. The page size is the first page's length when
        the server sends fewer than it was asked for (one that ignores ``limit``). Whether the pages
        add up (distinct ids, as many as ``meta.total``, the same total on every page) is the
        caller's check, on the returned :class:`_Listing`.

        ``convert`` turns each item into a result (the results are in page order). The first page
        is converted while the other pages' requests are out, in slices that give the event loop
        a turn in between (so those requests leave at once); the others as each arrives. Parsing
        100 schemas takes about as long as the API's latency, so this hides one page's parsing,
        and, when the rate limit spaces many pages out, every page's parsing behind the waits.
        (Measured slower: a worker thread, and slicing every page; the loop reading the other
        responses then waits for the GIL, or for the slices, at every step.)
        """
        async def converted(items: list[Any], sliced: bool = False) -> list[Any]:
            if convert is None:
                return list(items)
            if not sliced:
                return list(map(convert, items))
            out: list[Any] = []
            for i in range(0, len(items), _CONVERT_SLICE):
                await asyncio.sleep(0)
                out.extend(map(convert, items[i:i + _CONVERT_SLICE]))
            return out

        async def rest(offset: int) -> tuple[list[Any], list[Any], int | None]:
            chunk, meta = await self._page(path, key, offset, page, extra)
            return chunk, await converted(chunk), _as_int(meta.get("total"))

        first, meta = await self._page(path, key, 0, PAGE_SIZE, extra)
        total = _as_int(meta.get("total"))
        if total is None or total < 0:
            raise UnexpectedResponse(200, "GET", path, reason="the list response has no meta.total")
        page = _as_int(meta.get("limit")) or PAGE_SIZE
        page = min(page, PAGE_SIZE) if page > 0 else PAGE_SIZE
        if 0 < len(first) < page and len(first) < total:
            page = len(first)
        listing = _Listing(total=total, ids=_item_ids(first))
        seen = set(_ids(first) or ())
        items: list[Any] | None = None
        offset = len(first)
        more = len(first) >= page > 0 and offset < total
        while True:
            offsets = [o for o in range(offset, offset + _PAGES_AHEAD * page, page) if o < total] if more else []
            if items is None:  # the other pages' requests first, then the first page's conversion
                *pages, head = await asyncio.gather(*(rest(o) for o in offsets),
                                                    converted(first, sliced=bool(offsets)))
                items = list(head)
            else:
                pages = list(await asyncio.gather(*(rest(o) for o in offsets)))
            for at, (chunk, results, page_total) in zip(offsets, pages, strict=True):
                ids = _ids(chunk)
                if chunk and ids is not None and seen.issuperset(ids):
                    raise _PagesRepeat(200, "GET", path, reason=(
                        f"the page at offset {at} repeats items already read; {len(seen)} of meta.total {total} "
                        "read"))
                seen.update(ids or ())
                listing.ids.extend(_item_ids(chunk))
                if page_total is not None and page_total != total:
                    listing.totals_differ = True
                items.extend(results)
                if len(chunk) < page:
                    more = False
                    break
            if not offsets:
                listing.items = items
                return listing
            offset = offsets[-1] + page
            more = more and offset < total

    async def list_schemas(self) -> list[Schema]:
        """Every schema of the account, deleted fields included (``showFields=all``), each once.

        The list is asked for in a stable order, :data:`SCHEMA_ORDER`, and checked: the pages must
        add up to ``meta.total`` with distinct ids, and every page must report the same total. A
        read that does not (the account changed while it was read, or the server does not keep the
        order) is read again, up to :data:`LIST_READS` times in all, one read after the other; then
        it is an :class:`UnexpectedResponse`. A schema skipped by paging would show as a create in
        the plan (and fail at apply: "slug must be unique"); a repeated one, as a conflict.

        250 schemas cost exactly 3 requests: one, then the other two concurrently. Each page is
        parsed (validated into :class:`Schema` objects) as it arrives, see :meth:`_list_all`.
        """
        problem = ""
        for read in range(1, LIST_READS + 1):
            try:
                listing = await self._list_all(
                    SCHEMAS_PATH, "schemas", {"showFields": "all", **SCHEMA_ORDER},
                    convert=lambda d: self._read_schema(d, "GET", SCHEMAS_PATH))
            except _PagesRepeat as exc:
                problem = exc.reason or "a page repeated items already read"
            else:
                problem = listing.problem() or ""
                if not problem:
                    return list(listing.items)
            log.info("the schema list did not add up (read %d of %d): %s", read, LIST_READS, problem)
        raise UnexpectedResponse(200, "GET", SCHEMAS_PATH, reason=(
            f"the schema list did not add up in {LIST_READS} reads: {problem} (the account changed while it "
            "was read, or the server ignores the order or the offset asked for)"))

    async def get_schema(self, schema_id: str) -> Schema:
        path = f"/customObjects/schemas/{quote_segment(schema_id)}"
        response = await self._request("GET", path, params={"showFields": "all"})
        return self._schema_from(self._json(response, "GET", path), "GET", path, response.status_code)

    async def find_schema_by_slug(self, slug: str) -> Schema | None:
        """The schema with this slug, or ``None``. Lists them all: the API documents no slug filter."""
        for schema in await self.list_schemas():
            if schema.slug == slug:
                return schema
        return None

    async def count_records(self, schema_id: str, filters: Mapping[str, str] | None = None) -> int:
        """``meta.total`` of the schema's records matching ``filters`` (ANDed; one request).

        Keys: ``"fields.amount"`` (``eq``), ``"fields.amount[gte]"`` or ``"fields.link[not_blank]"``
        (operator), or a full ``"filters[…][…]"`` parameter name.
        """
        path = f"/customObjects/records/{quote_segment(schema_id)}"
        params: dict[str, str] = {"limit": "1", "offset": "0"}
        for key, value in (filters or {}).items():
            params[_filter_param(key)] = str(value)
        data = self._json(await self._request("GET", path, params=params), "GET", path)
        meta = data.get("meta") if isinstance(data, dict) else None
        total = _as_int(meta.get("total")) if isinstance(meta, dict) else None
        if total is None:
            raise UnexpectedResponse(200, "GET", path, reason="the records list has no meta.total")
        return total

    # -- writes -----------------------------------------------------------------------------

    async def create_schema(self, schema: Schema) -> Schema:
        """POST a new schema (201). Never creates it twice: after an ambiguous failure (dropped
        connection, timeout, 5xx) the slug is looked up and an existing schema returned."""
        path = SCHEMAS_PATH
        try:
            response = await self._request("POST", path, json={"schema": schema_to_api(schema)}, ok=(200, 201),
                                           idempotent=False, settled=lambda: self.find_schema_by_slug(schema.slug))
        except AlreadyDone as done:
            return done.value  # type: ignore[no-any-return]
        return self._schema_from(self._json(response, "POST", path), "POST", path, response.status_code)

    async def update_schema(self, schema_id: str, body: dict[str, Any], *, validate_only: bool = False) -> Schema:
        """PUT ``{"schema": body}`` (a merge, docs/api-notes.md U1). ``validate_only`` sends the documented
        ``validateOnly: true`` HEADER: the API validates and answers without saving."""
        path = f"/customObjects/schemas/{quote_segment(schema_id)}"
        headers = {"validateOnly": "true"} if validate_only else None
        response = await self._request("PUT", path, params={"showFields": "all"}, json={"schema": body},
                                       headers=headers)
        return self._schema_from(self._json(response, "PUT", path), "PUT", path, response.status_code)

    async def delete_schema(self, schema_id: str) -> None:
        """DELETE a schema and all its records (200, empty body). Gone on a retry counts as done."""
        path = f"/customObjects/schemas/{quote_segment(schema_id)}"
        await self._request("DELETE", path, ok=(200, 202, 204), gone_ok=True)

    async def delete_field(self, schema_id: str, field_id: str) -> Schema:
        """DELETE a field (202 with the schema; the field comes back ``marked_for_deletion``)."""
        path = f"/customObjects/schemas/{quote_segment(schema_id)}/fields/{quote_segment(field_id)}"
        response = await self._request("DELETE", path, params={"showFields": "all"}, ok=(200, 202), gone_ok=True)
        if response.status_code == 404:  # gone on a retry: our first attempt did it
            return await self.get_schema(schema_id)
        return self._schema_from(self._json(response, "DELETE", path), "DELETE", path, response.status_code)


def _first_problem(exc: Exception) -> str:
    """``fields.0.type: Input should be …`` for a pydantic error (no input values: they are API text),
    else the exception's type and text."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors(include_input=False, include_url=False)[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            return f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))
        except (TypeError, IndexError, AttributeError):  # not pydantic's shape: its type says enough
            return type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _filter_param(key: str) -> str:
    key = key.strip()
    if key.startswith("filters["):
        return key
    if "[" in key:
        prop, rest = key.split("[", 1)
        return f"filters[{prop}][{rest}"
    return f"filters[{key}]"


class _PagesRepeat(UnexpectedResponse):
    """A list page that holds only items already read (see :meth:`Client._list_all`)."""


@dataclass
class _Listing:
    """What :meth:`Client._list_all` read: the converted items, the first page's ``meta.total``, each
    item's id (``None`` for an item without one) and whether another page reported another total."""

    total: int
    ids: list[str | None]
    items: list[Any] = field(default_factory=list)
    totals_differ: bool = False

    def problem(self) -> str | None:
        """Why the pages do not add up to one whole list, or ``None``."""
        counts = Counter(i for i in self.ids if i is not None)
        repeated = sum(n - 1 for n in counts.values())
        if repeated:
            return f"{repeated} item{'s' if repeated > 1 else ''} listed twice"
        if self.totals_differ:
            return "meta.total changed from one page to the next"
        if len(self.ids) != self.total:
            return f"{len(self.ids)} items read, meta.total is {self.total}"
        return None


def _item_ids(items: list[Any]) -> list[str | None]:
    return [str(i["id"]) if isinstance(i, dict) and i.get("id") is not None else None for i in items]


def _ids(items: list[Any]) -> list[str] | None:
    """The ids of a page's items; ``None`` when some item has none (then repeats cannot be told)."""
    ids = [str(i["id"]) for i in items if isinstance(i, dict) and i.get("id") is not None]
    return ids if len(ids) == len(items) else None


# re-exported for callers that catch errors from the client module
__all__ += [
    "ApiError",
    "AuthenticationFailed",
    "NotFound",
    "RateLimited",
    "ServerError",
    "TransportFailure",
    "ValidationFailed",
]

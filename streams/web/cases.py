"""Cases over HTTP: ``GET /cases``, ``GET /cases/{alert_id}`` and ``POST /cases/{alert_id}``.

The workflow's rules are :mod:`monitor.interfaces.cases`; the rows live in the alert
store (:mod:`monitor.outputs.store.cases`); a decision's label goes to Kafka through
:mod:`streams.caselabels`. Who may call these is the role table's business
(:mod:`monitor.interfaces.roles`); the history names the token's name.

A decision is answered only once it is recorded. Its label is written right after; if
Kafka fails then, the answer still says the decision stands (``label_written`` false)
and a settle pass writes the label within :data:`~streams.caselabels.CLAIM_SECONDS`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

import aiohttp.web
import orjson
from faust import web

from monitor.contract.events import LABELS, parse, partition_key
from monitor.errors import (
    BadCaseRequest,
    CaseConflict,
    InvalidEvent,
    LabelsUnavailable,
    StoreUnavailable,
)
from monitor.interfaces.api import BadQuery
from monitor.interfaces.cases import (
    MAX_REQUEST_BYTES,
    CaseState,
    case_query,
    parse_request,
    plan,
    time_text,
    view,
)
from monitor.outputs.store.cases import CaseRow, PendingLabel
from streams.caselabels import CLAIM_SECONDS, CaseLabels
from streams.web.auth import answer, principal_of

if TYPE_CHECKING:
    import faust

    from monitor.config import Settings
    from monitor.outputs.metrics import Metrics
    from monitor.outputs.store import AlertStore

logger = logging.getLogger(__name__)

ATTEMPTS = 3
"""Times a change is planned again after another writer changed the case first."""


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return cast(web.Response, answer(body, status, headers))


def _case(row: CaseRow, history: list[dict[str, Any]] | None) -> dict[str, Any]:
    updated = time_text(row.updated_us / 1e6) if row.updated_us is not None else None
    return view(row.alert_id, row.alert, CaseState(row.status, row.assignee, row.version,
                                                    row.decisions), updated, history)


def _latest(history: list[dict[str, Any]], actions: tuple[str, ...]) -> dict[str, Any] | None:
    return next((entry for entry in reversed(history) if entry.get("action") in actions),
                None)


async def _read_limited(request: aiohttp.web.Request, limit: int) -> bytes | None:
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def register_cases(app: faust.App, settings: Settings, store: AlertStore,
                   labels: CaseLabels, metrics: Metrics) -> None:
    """The case routes on the worker's web server."""
    retry = {"Retry-After": str(settings.web.retry_after_seconds)}

    def unavailable(exc: Exception, what: str) -> web.Response:
        logger.warning("%s: %s", what, exc)
        return _json({"error": f"{what} is unavailable; send the request again"}, 503, retry)

    class Cases(web.View):
        async def get(self, request: web.Request) -> web.Response:
            try:
                query = case_query(cast(Any, request).query, settings.api)
            except BadQuery as exc:
                return _json({"error": str(exc)}, 400)
            try:
                page = await store.query_cases(query)
            except StoreUnavailable as exc:
                return unavailable(exc, "the alert store")
            return _json({"cases": [_case(row, None) for row in page.rows],
                          "next_cursor": page.next_cursor, "counts": page.counts})

    class Case(web.View):
        async def get(self, request: web.Request, alert_id: str) -> web.Response:
            try:
                found = await store.read_case(alert_id)
            except StoreUnavailable as exc:
                return unavailable(exc, "the alert store")
            if found is None:
                return _json({"error": "no such alert"}, 404)
            return _json(_case(*found))

        async def post(self, request: web.Request, alert_id: str) -> web.Response:
            body = await _read_limited(cast(aiohttp.web.Request, request), MAX_REQUEST_BYTES)
            if body is None:
                return _json({"error": f"a case request is at most {MAX_REQUEST_BYTES} "
                              "bytes"}, 413)
            try:
                wanted = parse_request(body)
            except BadCaseRequest as exc:
                return _json({"error": str(exc)}, 400)
            by = principal_of(request).name
            try:
                return await change(alert_id, wanted, by)
            except CaseConflict as exc:
                return _json({"error": str(exc), "allowed": list(exc.allowed)}, 409)
            except StoreUnavailable as exc:
                return unavailable(exc, "the alert store")
            except LabelsUnavailable as exc:
                return unavailable(exc, "the labels topic")

    async def change(alert_id: str, wanted: Any, by: str) -> web.Response:
        for _ in range(ATTEMPTS):
            found = await store.read_case(alert_id)
            if found is None:
                return _json({"error": "no such alert"}, 404)
            row, history = found
            state = CaseState(row.status, row.assignee, row.version, row.decisions)
            now = time.time()
            planned = plan(state, wanted, row.alert, by, now,
                           _latest(history, ("transition", "assign")),
                           history[-1] if history else None)
            if planned.entry is None:  # nothing to do: a retry, or already so
                return _json({**_case(row, history), "changed": False})
            pending = None
            if planned.label is not None:
                label_body = orjson.dumps(planned.label)
                try:  # as the worker will read it: an alert of the store may be anything
                    key = partition_key(parse(LABELS, label_body))
                except InvalidEvent as exc:
                    return _json({"error": f"this alert cannot be labelled: {exc.reason}"},
                                 422)
                partition, end = await labels.place(key)
                pending = PendingLabel(str(planned.label["event_id"]), labels.topic,
                                       partition, key, label_body, end)
            after = planned.state
            applied = await store.apply_change(
                alert_id, state.version, (after.status, after.assignee, after.version,
                                          after.decisions),
                planned.entry, pending, round(now * 1e6),
                round((now + CLAIM_SECONDS) * 1e6))
            if not applied:
                continue  # someone changed the case first: plan again on what it is now
            action = str(planned.entry.get("to") if planned.entry["action"] == "transition"
                         else planned.entry["action"])
            metrics.case_changes.labels(action).inc()
            logger.info("case %s: %s by '%s'", alert_id, action, by)
            written = None
            if pending is not None:
                written = await _write(pending)
            fresh = await store.read_case(alert_id)
            assert fresh is not None  # noqa: S101 - it was just changed
            body = {**_case(*fresh), "changed": True}
            if written is not None:
                body["label_written"] = written
            return _json(body)
        raise CaseConflict("the case is being changed by others; reload it", ())

    async def _write(pending: PendingLabel) -> bool:
        try:
            offset = await labels.write(pending)
            await store.mark_label_produced(pending.event_id, offset)
        except (LabelsUnavailable, StoreUnavailable) as exc:
            logger.warning("label %s not settled yet (%s); a settle pass will", pending.event_id,
                           exc)
            return False
        metrics.case_labels.labels("written").inc()
        return True

    app.page("/cases")(Cases)
    app.page("/cases/{alert_id}")(Case)

"""The OpenAPI 3.1 document of /admin/api, served at /admin/api/openapi.json.

Objects are closed (`additionalProperties: false`) and every property is required, so
the tests that validate real answers against this document catch a field added to the
API but not here, as well as one documented but not sent.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(**properties: Schema) -> Schema:
    return {"type": "object", "properties": properties, "required": sorted(properties),
            "additionalProperties": False}  # fmt: skip


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def page(item: str) -> Schema:
    return obj(items=array(ref(item)), next_cursor=nullable(STR))


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
ID: Schema = {"type": "string", "format": "uuid"}
TIME: Schema = {"type": "string", "format": "date-time"}
PAIRS: Schema = array({"type": "array", "prefixItems": [STR, STR], "minItems": 2, "maxItems": 2})
COUNTS: Schema = {"type": "object", "additionalProperties": INT}
DELIVERY_STATUS: Schema = {"enum": ["pending", "in_flight", "delivered", "dead", "filtered",
                                    "cancelled", "queued"]}  # fmt: skip

SCHEMAS: dict[str, Schema] = {
    "Error": obj(error=STR),
    "Body": obj(text=nullable(STR), base64=nullable(STR), size=INT),
    "DeliveryBrief": obj(id=ID, target=STR, status=DELIVERY_STATUS, attempts=INT,
                         last_outcome=nullable(STR)),
    "EventSummary": obj(id=ID, source=STR, event_type=nullable(STR), received_at=TIME,
                        method=STR, path=STR, size=INT, peer=nullable(STR),
                        deliveries=array(ref("DeliveryBrief"))),
    "EventPage": page("EventSummary"),
    "RawRequest": obj(method=STR, path=STR, query=STR, headers=PAIRS, body=ref("Body"),
                      peer=nullable(STR)),
    "Verification": obj(scheme=nullable(STR), verified=BOOL),
    "RouteMatch": obj(index=INT, targets=array(STR)),
    "Attempt": obj(attempt=INT, worker=STR, started_at=TIME, duration_ms=nullable(NUM),
                   outcome=nullable(STR), status_code=nullable(INT), response_headers=PAIRS,
                   response=ref("Body"), error=nullable(STR), replay_id=nullable(ID)),
    "ReplayMark": obj(delivery_id=ID, replay_id=ID, created_at=TIME, created_by=STR,
                      new_key=BOOL, previous_id=nullable(ID), previous_status=nullable(STR),
                      attempts_before=INT),
    "Delivery": obj(id=ID, target=STR, status=DELIVERY_STATUS, attempts=INT, budget_from=INT,
                    due_at=TIME, last_outcome=nullable(STR), last_error=nullable(STR),
                    ordering_key=nullable(STR), released_key=nullable(STR), route=nullable(INT),
                    history=array(ref("Attempt")), replays=array(ref("ReplayMark"))),
    "EventDetail": obj(id=ID, source=STR, event_type=nullable(STR), received_at=TIME,
                       request=ref("RawRequest"), verification=ref("Verification"),
                       matched_routes=array(ref("RouteMatch")),
                       unmatched_routes=array(ref("RouteMatch")),
                       deliveries=array(ref("Delivery"))),
    "DeliveryRow": obj(id=ID, event_id=ID, target=STR, status=DELIVERY_STATUS, attempts=INT,
                       last_outcome=nullable(STR), last_error=nullable(STR), due_at=TIME,
                       updated_at=TIME, source=STR, event_type=nullable(STR), received_at=TIME),
    "DeliveryPage": page("DeliveryRow"),
    "Rejected": obj(id=INT, source=STR, received_at=TIME, status=INT, reason=STR,
                    request=ref("RawRequest")),
    "RejectedPage": page("Rejected"),
    "Target": obj(name=STR, pending=INT, due=INT, in_flight=INT, queued=INT, dead=INT,
                  dead_keys=INT,
                  attempts=INT, succeeded=INT, p50_ms=nullable(NUM), p95_ms=nullable(NUM),
                  paused=BOOL, reason=nullable(STR), changed_at=nullable(TIME),
                  changed_by=nullable(STR), failures=INT, breaker_until=nullable(TIME),
                  breaker_reason=nullable(STR),
                  breaker={"enum": ["closed", "open", "half-open"]},
                  success_ratio=nullable(NUM), blocks_on_dead=BOOL),
    "TargetList": obj(items=array(ref("Target"))),
    "BlockedKey": obj(key=STR, dead=INT, waiting=INT),
    "BlockedKeys": obj(items=array(ref("BlockedKey"))),
    "Released": obj(target=STR, key=STR, released=INT),
    "Cancelled": obj(id=ID, status={"const": "cancelled"}),
    "Minute": obj(minute=TIME, ingested=INT, delivered=INT, failed=INT),
    "Dashboard": obj(minutes=array(ref("Minute")), targets=array(ref("Target"))),
    "ReplayCounts": obj(deliveries=INT, by_target=COUNTS, sample=array(ID)),
    "ReplayResult": obj(id=ID, dry_run=BOOL, counts=ref("ReplayCounts")),
    "ReplayRecord": obj(id=ID, created_at=TIME, created_by=STR, dry_run=BOOL,
                        event_id=nullable(ID), filter=nullable({"type": "object"}),
                        targets=nullable(array(STR)), new_key=BOOL, deliveries=INT,
                        by_target=COUNTS, sample=array(ID)),
    "ReplayPage": page("ReplayRecord"),
    "ReplayedDelivery": obj(delivery_id=ID, previous_id=nullable(ID),
                            previous_status=nullable(STR), attempts_before=INT,
                            event_id=nullable(ID), target=nullable(STR),
                            status=nullable(DELIVERY_STATUS), attempts=nullable(INT)),
    "ReplayDetail": obj(replay=ref("ReplayRecord"), affected=page("ReplayedDelivery")),
    "Me": obj(name=STR, via={"enum": ["bearer", "session"]}, csrf_token=nullable(STR)),
    "EventReplayRequest": {"type": "object", "additionalProperties": False, "properties": {
        "targets": array(STR), "new_key": BOOL}},
    "BulkReplayRequest": {"type": "object", "additionalProperties": False, "properties": {
        "filter": {"type": "object", "additionalProperties": False, "properties": {
            k: STR for k in ("source", "type", "status", "target", "outcome", "since", "until",
                             "q")}},
        "targets": array(STR), "dry_run": BOOL, "new_key": BOOL}},
    "PauseRequest": {"type": "object", "properties": {"reason": STR}},
    "ReleaseRequest": obj(key=STR),
    "StreamEvent": obj(id=ID, source=STR, event_type=nullable(STR), received_at=TIME,
                       method=STR, path=STR, size=INT),
    "StreamAttempt": obj(delivery_id=ID, attempt=INT, started_at=TIME, duration_ms=nullable(NUM),
                         outcome=STR, status_code=nullable(INT), error=nullable(STR),
                         event_id=ID, target=STR, status=DELIVERY_STATUS, source=STR),
}  # fmt: skip


def _query(name: str, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": STR,
            "description": description}  # fmt: skip


def _path(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": STR}


CURSOR = _query("cursor", "next_cursor of the previous page")
LIMIT = _query("limit", "items per page (default 50, at most 500)")
SINCE = _query("since", "ISO 8601 time, or a duration like 1h meaning that long ago")
UNTIL = _query("until", "ISO 8601 time, or a duration like 10m meaning that long ago")
ERRORS = {str(code): {"description": text, "content": {"application/json": {
    "schema": ref("Error")}}} for code, text in [
    (400, "bad request"), (401, "no valid token or session"), (403, "missing CSRF token"),
    (404, "not found"), (409, "not in a state that allows it"), (422, "unknown target"),
    (429, "too many failed logins"), (503, "the database is unavailable")]}  # fmt: skip


def op(summary: str, schema: str, status: int = 200, params: list[Schema] | None = None,
       body: str | None = None) -> Schema:  # fmt: skip
    operation: Schema = {
        "summary": summary,
        "parameters": params or [],
        "responses": {str(status): {"description": "OK", "content": {
            "application/json": {"schema": ref(schema)}}}, **ERRORS},
    }  # fmt: skip
    if body is not None:
        operation["requestBody"] = {"required": False, "content": {
            "application/json": {"schema": ref(body)}}}  # fmt: skip
    return operation


EVENT_QUERY = [_query("source", "source name"), _query("type", "event type; * is a wildcard"),
               _query("status", "dead | pending | delivered (its deliveries' state)"),
               _query("target", "has a delivery to this target"), SINCE, UNTIL,
               _query("q", "text in the body or a header value"), CURSOR, LIMIT]  # fmt: skip

PATHS: dict[str, Schema] = {
    "/admin/api/openapi.json": {"get": {"summary": "this document", "responses": {
        "200": {"description": "OpenAPI 3.1", "content": {"application/json": {
            "schema": {"type": "object"}}}}}}},
    "/admin/api/me": {"get": op("who is asking (and a session's CSRF token)", "Me")},
    "/admin/api/events": {"get": op("events, newest first", "EventPage", params=EVENT_QUERY)},
    "/admin/api/events/{id}": {"get": op("one event: raw request, routes, deliveries, attempts",
                                         "EventDetail", params=[_path("id")])},
    "/admin/api/events/{id}/replay": {"post": op(
        "replay one event (same ids, fresh retry budget)", "ReplayResult", 201,
        [_path("id")], "EventReplayRequest")},
    "/admin/api/deliveries": {"get": op("deliveries by status: the dead-letter queue",
        "DeliveryPage", params=[_query("status", "default dead"),
                                _query("target", "target name"), SINCE, CURSOR, LIMIT])},
    "/admin/api/deliveries/{id}/cancel": {"post": op("cancel a pending delivery", "Cancelled",
                                                     params=[_path("id")])},
    "/admin/api/rejected": {"get": op("the rejected-request log", "RejectedPage",
        params=[_query("source", "source name"), SINCE, CURSOR, LIMIT])},
    "/admin/api/targets": {"get": op("every target's backlog, health and breaker",
                                     "TargetList")},
    "/admin/api/targets/{name}": {"get": op("one target", "Target", params=[_path("name")])},
    "/admin/api/targets/{name}/pause": {"post": op("pause a target", "Target",
                                                   params=[_path("name")], body="PauseRequest")},
    "/admin/api/targets/{name}/resume": {"post": op("resume a target", "Target",
                                                    params=[_path("name")])},
    "/admin/api/targets/{name}/blocked": {"get": op("FIFO keys held by a dead delivery",
                                                    "BlockedKeys", params=[_path("name"), LIMIT])},
    "/admin/api/targets/{name}/release": {"post": op("release a blocked FIFO key", "Released",
        params=[_path("name")], body="ReleaseRequest")},
    "/admin/api/replays": {
        "get": op("every replay, dry or real: the audit", "ReplayPage", params=[CURSOR, LIMIT]),
        "post": op("bulk replay by filter; dry_run (the default) changes nothing",
                   "ReplayResult", 201, body="BulkReplayRequest"),
    },
    "/admin/api/replays/{id}": {"get": op("one replay and the deliveries it re-queued",
                                          "ReplayDetail", params=[_path("id"), CURSOR, LIMIT])},
    "/admin/api/dashboard": {"get": op("per-minute counts over the last hour, target health",
                                       "Dashboard")},
    "/admin/api/stream": {"get": {
        "summary": "server-sent events: `event` (StreamEvent) and `attempt` (StreamAttempt)",
        "parameters": [_query("source", "only this source")],
        "responses": {"200": {"description": "text/event-stream",
                              "content": {"text/event-stream": {"schema": STR}}}}}},
}  # fmt: skip
# A dry run answers 200 (nothing was created), a real replay 201.
PATHS["/admin/api/replays"]["post"]["responses"]["200"] = PATHS["/admin/api/replays"]["post"][
    "responses"
]["201"]

DOCUMENT: Schema = {
    "openapi": "3.1.0",
    "info": {
        "title": "hookgate admin API",
        "version": "1",
        "description": "Everything the inspector shows and does. Authenticate with "
        "`Authorization: Bearer <token>` (a name from admin.tokens).",
    },
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{"bearer": []}],
    "paths": PATHS,
}

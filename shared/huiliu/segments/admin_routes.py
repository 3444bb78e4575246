"""Admin HTTP routes for segments, mounted by the admin app under ``/admin``.

| route | |
|---|---|
| `POST /segments/apply?dry_run=true` `{"segments": [...]}` | validate all, save, start the backfill |
| `POST /segments` body: one definition | save it (new version if changed) and start its backfill |
| `POST /segments/validate` body: one definition | problems or `{"valid": true}` (saves nothing) |
| `POST /segments/preview` body: one definition | count and sample over kept profile states |
| `GET /segments` | every segment with its version and member count |
| `GET /segments/models` / `PUT /segments/models` | the tenant's lifecycle thresholds and RFM breakpoints |
| `GET /segments/{id}` | definition, version, count, backfill progress |
| `DELETE /segments/{id}` | delete (409 while another segment uses it) |
| `GET /segments/{id}/count` | member count (counters, no scan) |
| `GET /segments/{id}/members?limit=&cursor=` | a page of members |
| `POST /segments/{id}/export` | CSV of the members to S3 (`exports/…`), with a presigned URL |
| `GET /segments/{id}/why/{profile_id}` | which condition held or failed, with the values seen |
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from huiliu.errors import BadRequest, HuiliuError, Unauthorized

router = APIGatewayHttpRouter()
_deps: dict[str, Any] = {}
MAX_LIMIT = 1000


def configure(admin: Any | None = None, publisher: Any | None = None) -> None:
    """Inject a SegmentsAdmin and a publisher (tests, local runtime); real ones are built lazily."""
    _deps.clear()
    if admin is not None:
        _deps["admin"] = admin
    if publisher is not None:
        _deps["publisher"] = publisher


def _s3_writer(key: str, body: bytes) -> str:
    from huiliu import aws
    from huiliu.settings import get_settings

    bucket = get_settings().raw_bucket
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv; charset=utf-8")
    return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)


def _admin() -> Any:
    if "admin" not in _deps:
        from huiliu.segments.admin import SegmentsAdmin
        from huiliu.segments.wiring import build_store

        _deps["admin"] = SegmentsAdmin(build_store(), export_writer=_s3_writer)
    return _deps["admin"]


def _publish(events: list[Any]) -> None:
    if not events:
        return
    if "publisher" not in _deps:
        from huiliu.bus import bus_publisher

        _deps["publisher"] = bus_publisher()
    from huiliu.observability import logger

    correlation = logger.get_correlation_id()  # the admin request's: follow a backfill in the logs
    for event in events:
        if event.correlation_id is None and correlation:
            event.correlation_id = correlation
    _deps["publisher"].publish([e.outgoing() for e in events])


def _tenant() -> str:
    tenant = router.context.get("tenant_id")
    if not tenant:
        raise Unauthorized("no tenant on the request")
    return str(tenant)


def _json() -> Any:
    try:
        return router.current_event.json_body
    except ValueError as exc:
        raise BadRequest("the body is not JSON", reason="bad_body") from exc


def _query() -> dict[str, str]:
    return dict(router.current_event.query_string_parameters or {})


def _limit(params: dict[str, str], default: int = 100) -> int:
    raw = (params.get("limit") or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}", reason="bad_limit")
    return int(raw)


def _problems(exc: HuiliuError) -> dict[str, Any]:
    """Invalid definitions answer 400 with every problem as {path, reason}."""
    return {
        "success": False,
        "code": exc.reason,
        "message": exc.message,
        "problems": getattr(exc, "problems", []),
    }


def _guarded(call: Any) -> Any:
    from aws_lambda_powertools.event_handler import Response, content_types

    try:
        return call()
    except BadRequest as exc:
        if not getattr(exc, "problems", None):
            raise
        return Response(status_code=400, content_type=content_types.APPLICATION_JSON, body=_problems(exc))


@router.post("/segments/apply")
def apply_segments() -> Any:
    body = _json()
    docs = body.get("segments") if isinstance(body, dict) else body
    if not isinstance(docs, list) or not docs:
        raise BadRequest('give {"segments": [definition, ...]}', reason="bad_body")
    dry_run = _query().get("dry_run", "").lower() in ("1", "true", "yes")

    def run() -> Any:
        result = _admin().apply(_tenant(), docs, dry_run=dry_run)
        _publish(result.events)
        return result.body

    return _guarded(run)


def _one_definition() -> Any:
    body = _json()
    if isinstance(body, dict) and isinstance(body.get("definition"), dict):
        body = body["definition"]
    if not isinstance(body, dict):
        raise BadRequest("the body is one segment definition (a JSON object)", reason="bad_body")
    return body


@router.post("/segments")
def put_segment() -> Any:
    document = _one_definition()

    def run() -> Any:
        result = _admin().apply(_tenant(), [document])
        _publish(result.events)
        [segment] = result.body["segments"]
        return {**segment, "backfill": result.body.get("backfill")}

    return _guarded(run)


@router.post("/segments/validate")
def validate_segment() -> Any:
    document = _one_definition()

    def run() -> Any:
        [segment] = _admin().apply(_tenant(), [document], dry_run=True).body["segments"]
        return {"valid": True, **segment}

    return _guarded(run)


@router.post("/segments/preview")
def preview_segment() -> Any:
    params = _query()
    document = _json()
    return _guarded(lambda: _admin().preview(_tenant(), document, limit=_limit(params, 500)))


@router.get("/segments")
def list_segments() -> dict[str, Any]:
    return _admin().list(_tenant())


@router.get("/segments/models")
def get_models() -> dict[str, Any]:
    return _admin().models(_tenant())


@router.put("/segments/models")
def put_models() -> dict[str, Any]:
    result = _admin().set_models(_tenant(), _json())
    _publish(result.events)
    return result.body


@router.get("/segments/<segment_id>")
def show_segment(segment_id: str) -> dict[str, Any]:
    return _admin().show(_tenant(), segment_id)


@router.delete("/segments/<segment_id>")
def delete_segment(segment_id: str) -> dict[str, Any]:
    result = _admin().delete(_tenant(), segment_id)
    _publish(result.events)
    return result.body


@router.get("/segments/<segment_id>/count")
def count_segment(segment_id: str) -> dict[str, Any]:
    return _admin().count(_tenant(), segment_id)


@router.get("/segments/<segment_id>/members")
def segment_members(segment_id: str) -> dict[str, Any]:
    params = _query()
    return _admin().members(_tenant(), segment_id, limit=_limit(params), cursor=params.get("cursor") or None)


@router.post("/segments/<segment_id>/export")
def export_segment(segment_id: str) -> dict[str, Any]:
    return _admin().export(_tenant(), segment_id)


@router.get("/segments/<segment_id>/why/<profile_id>")
def why_segment(segment_id: str, profile_id: str) -> dict[str, Any]:
    return _admin().why(_tenant(), segment_id, profile_id)

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

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from huiliu.adminapi.core import ERRORS
from huiliu.errors import BadRequest, Unauthorized
from huiliu.segments.admin_models import (
    MemberPage,
    ModelsSaved,
    SegmentCount,
    SegmentDeleted,
    SegmentExport,
    SegmentList,
    SegmentPreview,
    SegmentsApplied,
    SegmentSaved,
    SegmentValid,
    SegmentView,
    SegmentWhy,
)
from huiliu.segments.builtin import TenantModels

router = APIGatewayHttpRouter()
MAX_LIMIT = 1000
TAGS = ["segments"]
RESPONSES: Any = ERRORS  # documents 200 (the return type) and the shared error shape
SegmentId = Annotated[str, Path(min_length=1, max_length=128, description="the segment's id")]
ProfileId = Annotated[str, Path(min_length=1, max_length=128, description="a profile id")]
Limit = Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None, Query(max_length=2048, pattern=r"^[0-9]{1,4}:.+$", description="next_cursor of the last page")
]
DryRun = Annotated[bool, Query(description="validate only: save nothing")]
SEGMENT_EXAMPLE = {
    "id": "vip",
    "name": "VIP",
    "conditions": {"all": [{"attribute": "computed.revenue_total", "op": ">=", "value": 1000}]},
}
SegmentDocument = Annotated[
    Any,
    Body(
        description="One segment definition (docs/segments.md: id, name, conditions …), or "
        '{"definition": definition}. Checked here: 400 with problems[{path, reason}].',
        examples=[SEGMENT_EXAMPLE],
    ),
]
SegmentsDocument = Annotated[
    Any,
    Body(
        description='{"segments": [definition, …]}: validated together, then saved and backfilled.',
        examples=[{"segments": [SEGMENT_EXAMPLE]}],
    ),
]
ModelsDocument = Annotated[
    Any, Body(description="The tenant's lifecycle thresholds and RFM breakpoints (GET shows the shape).")
]


def _s3_writer(key: str, body: bytes) -> str:
    from huiliu import aws
    from huiliu.settings import get_settings

    bucket = get_settings().raw_bucket
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv; charset=utf-8")
    return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)


def _build_admin() -> Any:
    from huiliu.segments.admin import SegmentsAdmin
    from huiliu.segments.wiring import build_store

    return SegmentsAdmin(build_store(), export_writer=_s3_writer)


def _admin() -> Any:
    """The SegmentsAdmin on the admin slot (huiliu.adminapi.wiring: injected, else built on first use)."""
    from huiliu.adminapi.wiring import services

    return services().get("segments", _build_admin)


def _publish(events: list[Any]) -> None:
    if not events:
        return
    from huiliu.adminapi.wiring import publish
    from huiliu.observability import logger

    correlation = logger.get_correlation_id()  # the admin request's: follow a backfill in the logs
    for event in events:
        if event.correlation_id is None and correlation:
            event.correlation_id = correlation
    publish(events)


def _tenant() -> str:
    tenant = router.context.get("tenant_id")
    if not tenant:
        raise Unauthorized("no tenant on the request")
    return str(tenant)


@router.post("/segments/apply", tags=TAGS, responses=RESPONSES, summary="Validate all, save, backfill")
def apply_segments(body: SegmentsDocument, dry_run: DryRun = False) -> SegmentsApplied:
    docs = body.get("segments") if isinstance(body, dict) else body
    if not isinstance(docs, list) or not docs:
        raise BadRequest('give {"segments": [definition, ...]}', reason="bad_body")
    result = _admin().apply(_tenant(), docs, dry_run=dry_run)
    _publish(result.events)
    return SegmentsApplied.model_validate(result.body)


def _one_definition(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("definition"), dict):
        body = body["definition"]
    if not isinstance(body, dict):
        raise BadRequest("the body is one segment definition (a JSON object)", reason="bad_body")
    return body


@router.post("/segments", tags=TAGS, responses=RESPONSES, summary="Save a segment and start its backfill")
def put_segment(body: SegmentDocument) -> SegmentSaved:
    document = _one_definition(body)
    result = _admin().apply(_tenant(), [document])
    _publish(result.events)
    [segment] = result.body["segments"]
    return SegmentSaved.model_validate({**segment, "backfill": result.body.get("backfill")})


@router.post("/segments/validate", tags=TAGS, responses=RESPONSES, summary="Check a segment (saves nothing)")
def validate_segment(body: SegmentDocument) -> SegmentValid:
    document = _one_definition(body)
    [segment] = _admin().apply(_tenant(), [document], dry_run=True).body["segments"]
    return SegmentValid.model_validate({"valid": True, **segment})


@router.post("/segments/preview", tags=TAGS, responses=RESPONSES, summary="Count and sample (saves nothing)")
def preview_segment(body: SegmentDocument, limit: Limit = None) -> SegmentPreview:
    return SegmentPreview.model_validate(_admin().preview(_tenant(), body, limit=limit or 500))


@router.get("/segments", tags=TAGS, responses=RESPONSES, summary="Every segment, version, member count")
def list_segments() -> SegmentList:
    return SegmentList.model_validate(_admin().list(_tenant()))


@router.get(
    "/segments/models", tags=TAGS, responses=RESPONSES, summary="Lifecycle thresholds, RFM breakpoints"
)
def get_models() -> TenantModels:
    return TenantModels.model_validate(_admin().models(_tenant()))


@router.put("/segments/models", tags=TAGS, responses=RESPONSES, summary="Replace the tenant's models")
def put_models(body: ModelsDocument) -> ModelsSaved:
    result = _admin().set_models(_tenant(), body)
    _publish(result.events)
    return ModelsSaved.model_validate(result.body)


@router.get("/segments/<segment_id>", tags=TAGS, responses=RESPONSES, summary="Definition, count, backfill")
def show_segment(segment_id: SegmentId) -> SegmentView:
    return SegmentView.model_validate(_admin().show(_tenant(), segment_id))


@router.delete("/segments/<segment_id>", tags=TAGS, responses=RESPONSES, summary="Delete (409 while in use)")
def delete_segment(segment_id: SegmentId) -> SegmentDeleted:
    result = _admin().delete(_tenant(), segment_id)
    _publish(result.events)
    return SegmentDeleted.model_validate(result.body)


@router.get("/segments/<segment_id>/count", tags=TAGS, responses=RESPONSES, summary="Member count")
def count_segment(segment_id: SegmentId) -> SegmentCount:
    return SegmentCount.model_validate(_admin().count(_tenant(), segment_id))


@router.get("/segments/<segment_id>/members", tags=TAGS, responses=RESPONSES, summary="A page of members")
def segment_members(
    segment_id: SegmentId,
    limit: Limit = None,
    cursor: Cursor = None,
) -> MemberPage:
    page = _admin().members(_tenant(), segment_id, limit=limit or 100, cursor=cursor or None)
    return MemberPage.model_validate(page)


@router.post("/segments/<segment_id>/export", tags=TAGS, responses=RESPONSES, summary="Members as CSV on S3")
def export_segment(segment_id: SegmentId) -> SegmentExport:
    return SegmentExport.model_validate(_admin().export(_tenant(), segment_id))


@router.get(
    "/segments/<segment_id>/why/<profile_id>", tags=TAGS, responses=RESPONSES, summary="Which condition held"
)
def why_segment(segment_id: SegmentId, profile_id: ProfileId) -> SegmentWhy:
    return SegmentWhy.model_validate(_admin().why(_tenant(), segment_id, profile_id))

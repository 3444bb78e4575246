"""The local runtime's pieces: route matching, API Gateway v2 events and responses, intrinsics."""

from __future__ import annotations

import base64
import json

import pytest
from huiliu_infra import cfn
from huiliu_infra.local.lambda_runtime import Router, http_api_event, http_api_response
from huiliu_infra.local.provision import RouteSpec, rate_seconds

ROUTES = [
    RouteSpec("POST", "/v1/{call}", "Ingest"),
    RouteSpec("POST", "/v1/hooks/{connector}/{tenant}", "Ingest"),
    RouteSpec("GET", "/v1/hooks/{connector}/{tenant}", "Ingest"),
    RouteSpec("ANY", "/admin/{proxy+}", "Admin"),
    RouteSpec("GET", "/admin/health", "Health"),
]


def test_router_prefers_the_most_specific_route_and_extracts_parameters() -> None:
    router = Router(ROUTES)
    route, params = router.match("POST", "/v1/hooks/wechat/demo") or (None, None)
    assert route is not None
    assert route.path == "/v1/hooks/{connector}/{tenant}"
    assert params == {"connector": "wechat", "tenant": "demo"}
    exact, _ = router.match("GET", "/admin/health") or (None, None)
    assert exact is not None
    assert exact.function == "Health"
    greedy, greedy_params = router.match("DELETE", "/admin/profiles/p1/x") or (None, None)
    assert greedy is not None
    assert greedy_params == {"proxy+": "profiles/p1/x"}


def test_router_answers_none_for_unknown_paths_and_methods() -> None:
    router = Router(ROUTES)
    assert router.match("GET", "/v1/track") is None
    assert router.match("POST", "/nothing") is None


def test_http_api_event_is_a_payload_v2_with_joined_headers_and_query() -> None:
    event = http_api_event(
        route=ROUTES[1],
        params={"connector": "wechat", "tenant": "demo"},
        method="POST",
        path="/v1/hooks/wechat/demo",
        query="a=1&a=2&b=",
        headers=[("Content-Type", "text/xml"), ("X-A", "1"), ("x-a", "2"), ("Cookie", "k=v; j=w")],
        body=b"<xml/>",
        source_ip="127.0.0.1",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/hooks/{connector}/{tenant}"
    assert event["headers"]["x-a"] == "1,2"
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["cookies"] == ["k=v", "j=w"]
    assert event["body"] == "<xml/>"
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"


def test_binary_and_compressed_bodies_are_base64_encoded() -> None:
    event = http_api_event(
        route=ROUTES[0],
        params={"call": "batch"},
        method="POST",
        path="/v1/batch",
        query="",
        headers=[("Content-Encoding", "gzip")],
        body=b"\x1f\x8b\x08\x00",
        source_ip="127.0.0.1",
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x1f\x8b\x08\x00"


def test_responses_follow_api_gateway_v2_rules() -> None:
    status, headers, body = http_api_response({"statusCode": 201, "headers": {"X": "1"}, "body": "ok"})
    assert (status, headers["X"], body) == (201, "1", b"ok")
    status, _, body = http_api_response({"statusCode": 200, "body": "aGk=", "isBase64Encoded": True})
    assert body == b"hi"
    status, headers, body = http_api_response({"success": True})
    assert status == 200
    assert json.loads(body) == {"success": True}


def test_resolver_evaluates_the_intrinsics_the_template_uses() -> None:
    template = {
        "Parameters": {"Stage": {"Default": "dev"}},
        "Mappings": {"M": {"dev": {"Days": 7}}},
        "Conditions": {"IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]}},
    }
    names = cfn.Names(region="ap-east-1", stack="s")
    names.refs["Q"] = "http://q"
    names.attrs[("Q", "Arn")] = "arn:aws:sqs:ap-east-1:1:q"
    resolver = cfn.Resolver(template, names, {})
    assert (
        resolver.resolve({"Fn::Sub": "x-${Stage}-${AWS::Region}-${Q.Arn}"})
        == "x-dev-ap-east-1-arn:aws:sqs:ap-east-1:1:q"
    )
    assert resolver.resolve({"Fn::FindInMap": ["M", {"Ref": "Stage"}, "Days"]}) == 7
    assert resolver.resolve({"Fn::If": ["IsDev", "a", "b"]}) == "a"
    assert resolver.resolve({"Fn::Join": ["/", ["a", {"Ref": "Q"}]]}) == "a/http://q"
    with pytest.raises(KeyError):
        resolver.resolve({"Ref": "Missing"})


@pytest.mark.parametrize(
    ("expr", "seconds"), [("rate(1 minute)", 60), ("rate(15 minutes)", 900), ("rate(2 days)", 172800)]
)
def test_rate_expressions_become_seconds(expr: str, seconds: int) -> None:
    assert rate_seconds(expr) == seconds


def test_cron_schedules_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="rate"):
        rate_seconds("cron(0 12 * * ? *)")

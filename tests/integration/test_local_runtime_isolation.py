"""Each local runtime starts from an empty emulated account, even in one process."""

from __future__ import annotations

import pytest
from huiliu import aws
from huiliu_infra.local.runtime import LocalRuntime, _configured_endpoint

from tests.conftest import _LocalEnv

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(_configured_endpoint()),
        reason="about the embedded moto server; an external endpoint (LocalStack) keeps its own state",
    ),
]


def _objects(runtime: LocalRuntime) -> list[str]:
    bucket = runtime.deployment.buckets["RawBucket"]  # type: ignore[union-attr]
    return [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_second_embedded_runtime_does_not_see_the_first_ones_data() -> None:
    # Given a runtime that stored an object, then stopped
    with _LocalEnv():
        first = LocalRuntime(http_port=0, aws_port=0, write_state=False, quiet=True).start()
        try:
            aws.client("s3").put_object(
                Bucket=first.deployment.buckets["RawBucket"], Key="raw/left-behind", Body=b"x"
            )  # type: ignore[union-attr]
            assert _objects(first) == ["raw/left-behind"]
        finally:
            first.stop()

    # When another embedded runtime starts in the same process
    with _LocalEnv():
        second = LocalRuntime(http_port=0, aws_port=0, write_state=False, quiet=True).start()
        try:
            # Then it starts from an empty account (moto's state is process-global)
            assert _objects(second) == []
        finally:
            second.stop()

"""The import bucket: where files, mappings, reports and checkpoints live."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

from huiliu.ingest.importer.mapping import IMPORT_PREFIX
from huiliu.models import TENANT_ID_PATTERN


class ImportStore(Protocol):
    def object_chunks(self, bucket: str, key: str) -> tuple[str, Iterator[bytes]] | None: ...

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None: ...

    def write_json(self, bucket: str, key: str, value: dict[str, Any]) -> None: ...


class S3ImportStore:
    """The import bucket through boto3: streaming reads, small JSON reads and writes."""

    def __init__(self, client: Any | None = None, chunk_bytes: int = 256 * 1024) -> None:
        self._client = client
        self.chunk_bytes = chunk_bytes

    @property
    def client(self) -> Any:
        if self._client is None:
            from huiliu import aws

            self._client = aws.client("s3")
        return self._client

    def object_chunks(
        self, bucket: str, key: str, start: int = 0, etag: str | None = None
    ) -> tuple[str, Iterator[bytes]] | None:
        """The object's ETag and body chunks; from byte ``start`` (S3 Range GET) of version ``etag``.

        A ranged read of a changed object (ETag differs) or past its end reads it whole again.
        """
        from botocore.exceptions import ClientError

        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if start:
            args["Range"] = f"bytes={start}-"
            if etag:
                args["IfMatch"] = f'"{etag}"'
        try:
            response = self.client.get_object(**args)
        except self.client.exceptions.NoSuchKey:
            return None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if start and code == "InvalidRange":  # nothing left after the checkpoint
                head = self.client.head_object(Bucket=bucket, Key=key)
                found = head.get("ETag", "").strip('"')
                if etag is None or found == etag:
                    return found, iter(())
                return self.object_chunks(bucket, key)
            if start and code in ("PreconditionFailed", "412"):
                return self.object_chunks(bucket, key)  # the file changed: start over
            raise
        return response.get("ETag", "").strip('"'), response["Body"].iter_chunks(self.chunk_bytes)

    def delete(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # a 404 without the modelled exception (some emulators)
            if "NoSuchKey" in str(exc) or "Not Found" in str(exc) or "404" in str(exc):
                return None
            raise
        return json.loads(body)

    def write_json(self, bucket: str, key: str, value: dict[str, Any]) -> None:
        self.client.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(value, ensure_ascii=False, indent=2).encode(),
            ContentType="application/json",
        )


def report_key(key: str) -> str:
    stem = key[:-4] if key.lower().endswith(".csv") else key
    return stem + ".report.json"


def progress_key(key: str) -> str:
    stem = key[:-4] if key.lower().endswith(".csv") else key
    return stem + ".progress.json"


def mapping_keys(key: str, tenant_id: str) -> list[str]:
    stem = key[:-4] if key.lower().endswith(".csv") else key
    return [stem + ".mapping.json", f"{IMPORT_PREFIX}{tenant_id}/default.mapping.json"]


def tenant_of(key: str) -> str | None:
    import re

    if not key.startswith(IMPORT_PREFIX):
        return None
    tenant = key[len(IMPORT_PREFIX) :].split("/", 1)[0]
    return tenant if re.match(TENANT_ID_PATTERN, tenant) and "/" in key[len(IMPORT_PREFIX) :] else None


def is_import_file(key: str) -> bool:
    return key.startswith(IMPORT_PREFIX) and key.lower().endswith(".csv")

"""S3ObjectStore: originals of documents under content-addressed keys, and small JSON records, over the S3 API.

SeaweedFS in the embedded stack, MinIO in compose and Kubernetes, or AWS S3: the same calls on each. Calls are
blocking (boto3); async callers run them in a thread. A store that cannot be reached is a TransientError (the
caller retries); a key that is not there is a PermanentError with code `original_missing`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import orjson
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ragbus.errors import ConfigError, PermanentError, TransientError
from ragbus.settings import ObjectSettings
from schemas.documents import OriginalRef, original_ref

R = TypeVar("R")
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3ObjectStore:
    """One bucket of an S3-compatible store."""

    def __init__(self, settings: ObjectSettings, connections: int = 10) -> None:
        if not settings.configured:
            raise ConfigError("RAGBUS_OBJECTS_URL is not set (run `ragbus up`, or point it at MinIO/S3)")
        self.bucket = settings.bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key.get_secret_value() if settings.access_key else None,
            aws_secret_access_key=settings.secret_key.get_secret_value() if settings.secret_key else None,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                # One client serves every thread (boto3 clients are thread-safe); a caller running n requests
                # at once asks for n pooled connections, else urllib3 opens and drops extra ones per request.
                max_pool_connections=connections,
            ),
        )

    def _call(self, what: str, call: Callable[[], R]) -> R:
        try:
            return call()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise PermanentError(f"{what}: not in bucket {self.bucket}", code="original_missing") from None
            if code.startswith("5") or code in {"SlowDown", "ServiceUnavailable", "InternalError"}:
                raise TransientError(f"{what}: object store answered {code}") from None
            raise PermanentError(f"{what}: object store refused ({code}: {exc})", code="object_store_refused") from None
        except BotoCoreError as exc:
            raise TransientError(f"{what}: object store unreachable ({exc})") from None

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (idempotent)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._call(f"create bucket {self.bucket}", lambda: self.client.create_bucket(Bucket=self.bucket))
        except BotoCoreError as exc:
            raise TransientError(f"object store unreachable ({exc})") from None

    def put_original(self, data: bytes, media_type: str) -> OriginalRef:
        """Store `data` under its sha256 (a second put of the same bytes rewrites the same object)."""
        ref = original_ref(data)
        self._call(
            f"put {ref.key}",
            lambda: self.client.put_object(Bucket=self.bucket, Key=ref.key, Body=data, ContentType=media_type),
        )
        return ref

    def get(self, key: str) -> bytes:
        """The object's bytes."""
        body = self._call(f"get {key}", lambda: self.client.get_object(Bucket=self.bucket, Key=key))["Body"]
        return bytes(self._call(f"read {key}", body.read))

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        try:
            self._call(f"head {key}", lambda: self.client.head_object(Bucket=self.bucket, Key=key))
        except PermanentError as exc:
            if exc.code == "original_missing":
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        """Remove the object (no error when it is already gone)."""
        self._call(f"delete {key}", lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return self._call(
            f"list {prefix}", lambda: [item["Key"] for page in pages for item in page.get("Contents", [])]
        )

    def get_json(self, key: str) -> Any | None:
        """A JSON record, or None when there is none."""
        try:
            return orjson.loads(self.get(key))
        except PermanentError as exc:
            if exc.code == "original_missing":
                return None
            raise

    def put_json(self, key: str, value: Any) -> None:
        """Write a JSON record."""
        data = orjson.dumps(value)
        self._call(
            f"put {key}",
            lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json"),
        )

    def close(self) -> None:
        """Release the client's connections."""
        self.client.close()

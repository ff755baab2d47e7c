"""Object storage (any S3-compatible endpoint) through boto3: presign, inspect, copy, delete.

The API never carries file bytes: clients upload with a presigned POST whose policy pins
the key, the content type and the exact size, and download with a short presigned GET.
Presigned URLs are credentials: never log them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.config import Settings

log = logging.getLogger("app.storage")


class StorageError(RuntimeError):
    """The storage could not be reached or refused the call."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str


@dataclass(frozen=True)
class PresignedPost:
    url: str
    fields: dict[str, str]
    expires_at: datetime


class Storage:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self.settings = settings
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            config=Config(
                signature_version="s3v4",
                connect_timeout=settings.s3_connect_timeout_seconds,
                read_timeout=settings.s3_read_timeout_seconds,
                retries={"max_attempts": settings.s3_max_attempts, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise StorageError("bucket check failed") from exc
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.settings.s3_region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {
                    "LocationConstraint": self.settings.s3_region
                }
            self.client.create_bucket(**kwargs)
            log.info("created bucket", extra={"fields": {"bucket": self.bucket}})

    def presign_post(self, key: str, content_type: str, size: int) -> PresignedPost:
        """A form upload that storage accepts only for this key, type and exact size."""
        ttl = self.settings.upload_url_ttl_seconds
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            # boto3 adds the bucket and the exact key to the policy's conditions.
            Conditions=[
                ["eq", "$Content-Type", content_type],
                ["content-length-range", size, size],
            ],
            ExpiresIn=ttl,
        )
        return PresignedPost(
            post["url"], post["fields"], datetime.now(UTC) + timedelta(seconds=ttl)
        )

    def presign_get(self, key: str, filename: str, content_type: str) -> tuple[str, datetime]:
        """A short-lived download that saves the file (attachment) with a fixed type."""
        ttl = self.settings.download_url_ttl_seconds
        url = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": _attachment(filename),
                "ResponseContentType": content_type,
            },
            ExpiresIn=ttl,
        )
        return url, datetime.now(UTC) + timedelta(seconds=ttl)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            meta = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError("head failed") from exc
        except BotoCoreError as exc:
            raise StorageError("storage unreachable") from exc
        return ObjectInfo(int(meta["ContentLength"]), meta.get("ContentType", ""))

    def copy(self, source: str, target: str) -> bool:
        """Server-side copy (bytes, content type and metadata); False when `source` is
        missing. S3 copies in one call up to 5 GiB (see Settings.check)."""
        try:
            self.client.copy_object(
                Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source}
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError("copy failed") from exc
        except BotoCoreError as exc:
            raise StorageError("storage unreachable") from exc
        return True

    def keys(self, prefix: str) -> Iterator[list[str]]:
        """The keys under `prefix`, a page (up to 1000) at a time."""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                yield [item["Key"] for item in page.get("Contents", ())]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError("list failed") from exc

    def sha256(self, key: str) -> str:
        """Hex SHA-256 of the object's bytes, streamed."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            digest = hashlib.sha256()
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
            return digest.hexdigest()
        except (ClientError, BotoCoreError) as exc:
            raise StorageError("read failed") from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError("delete failed") from exc


def _attachment(filename: str) -> str:
    """Content-Disposition for a download: an ASCII fallback plus the RFC 5987 name."""
    from urllib.parse import quote

    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"

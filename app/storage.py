"""Object storage (any S3-compatible endpoint) through boto3: presign, inspect, copy, delete.

The API never carries file bytes: clients upload with a presigned POST whose policy pins
the key, the content type and the exact size, and download with a short presigned GET.
Presigned URLs are credentials: never log them.

GET URLs are on the hot path (a gallery page presigns every cover): `app.sigv4` signs them
in microseconds, once botocore has shown where it puts the bucket and that the two agree
(`Storage.direct_get`). They are signed at the start of a time window, so a listing repeated
within the window hands out the same URLs and browsers reuse the images they cached.

Signing is local, so it cannot tell whether storage is up: `Storage.health` can. The real
calls (complete's copy and HEAD, deletes, listings) and the readiness probe (`HEAD` of the
bucket, short timeouts, one try) feed it; `require()` consults it before an upload form or
a download URL is handed out or an upload is verified, probing again when what it knows is
older than S3_HEALTH_TTL_SECONDS. Storage down: those answer 503 with `Retry-After`, and
`storage.unavailable` is logged once (app/health.py). Gallery listings keep signing their
covers (a listing stays useful; the images load again once storage is back).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app import sigv4
from app.config import Settings
from app.errors import Unavailable
from app.health import Health

log = logging.getLogger("app.storage")


class StorageError(Unavailable):
    """The storage could not be reached or refused the call: a 503 with `Retry-After`."""

    def __init__(self, reason: str, *, retry_after: int = 5, logged: bool = False) -> None:
        super().__init__("File storage is unavailable; retry later.",
                         headers={"Retry-After": str(retry_after)}, logged=logged)
        self.reason = reason  # for logs, never for the client


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str


@dataclass(frozen=True)
class PresignedPost:
    url: str
    fields: dict[str, str]
    expires_at: datetime


# What `direct_get` asks botocore to sign once, to learn the URL's shape and compare: a key
# and parameters with characters that need encoding.
_PROBE_KEY = "probe/ü ~+%é.txt"
_PROBE_FILENAME, _PROBE_TYPE = "a b/ü \"q\".txt", "text/plain; charset=utf-8"
_UNRESOLVED: Any = object()
_NOT_IN_FALLBACK = re.compile(r'[^\x20-\x7e]|["\\]')
MAX_WINDOW_SECONDS = 300
# Download URLs kept per window (Storage.presign_get), per process: a bound on memory.
SIGNED_URLS_KEPT = 10_000


def signing_window(ttl: int) -> int:
    """Seconds during which a download URL stays byte-identical. A URL is signed at the
    window's start and lives `ttl` from there, so it is handed out with between
    `ttl - window` and `ttl` seconds left: half the lifetime at most (a client always keeps
    at least half of what it was configured to get) and never more than 5 minutes lost."""
    return max(1, min(ttl // 2, MAX_WINDOW_SECONDS))


class Storage:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.bucket = settings.s3_bucket
        self.settings = settings
        self.clock = clock  # Unix seconds; download URLs are signed at its window's start
        session = boto3.session.Session(
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            region_name=settings.s3_region,
        )
        # The client's own credentials (the same object: refreshed credentials stay shared).
        self._credentials = session.get_credentials()
        self._direct_get: sigv4.PathStyle | None = _UNRESOLVED
        # The download URLs signed in the current window (see presign_get): (window start,
        # {(key, filename, type, credentials): url}).
        self._signed: tuple[int, dict[tuple[Any, ...], str]] = (-1, {})
        self.client = self._client(session, settings.s3_connect_timeout_seconds,
                                   settings.s3_read_timeout_seconds, settings.s3_max_attempts)
        # Readiness asks once, briefly: a probe must answer before its own deadline.
        probe_timeout = settings.readiness_timeout_seconds
        self._probe_client = self._client(session, probe_timeout, probe_timeout, 1)
        self.health = Health("storage", settings.s3_health_ttl_seconds)

    def _client(self, session: Any, connect: float, read: float, attempts: int) -> Any:
        return session.client(
            "s3",
            endpoint_url=self.settings.s3_endpoint_url or None,
            config=Config(
                signature_version="s3v4",
                connect_timeout=connect,
                read_timeout=read,
                retries={"max_attempts": attempts, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def reachable(self) -> bool:
        """The bucket exists and these credentials reach it (readiness, and `require`'s
        probe): what it finds is what `health` knows from now on."""
        try:
            self._probe_client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            self.health.record(False, f"bucket probe: {type(exc).__name__}")
            return False
        self.health.record(True)
        return True

    def require(self) -> None:
        """Storage up, as recent calls or a probe made now show; else a 503 (StorageError)
        telling when to come back. Asked before handing out what only works if it is."""
        if not self.health.check(self.reachable):
            raise StorageError("storage down", retry_after=self.health.retry_after(),
                               logged=True)

    def _failed(self, reason: str, exc: Exception) -> StorageError:
        """A real call failed. Unreachable, or a 5xx: storage counts as down (the change is
        logged once). Any other refusal (a 403 of a misconfigured policy) is this call's
        503 alone, logged with it: storage answered, and other calls may well work."""
        status = 500
        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        if status < 500:
            return StorageError(f"{reason}: {type(exc).__name__} {status}")
        self.health.record(False, reason)
        return StorageError(reason, retry_after=self.health.retry_after(), logged=True)

    def _answered(self) -> None:
        self.health.record(True)

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
        """A form upload that storage accepts only for this key, type and exact size; none
        while storage is down (StorageError)."""
        self.require()
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
        """A short-lived download that saves the file (attachment) with a fixed type, and
        when it stops working: at most the configured TTL from now."""
        ttl = self.settings.download_url_ttl_seconds
        target = self.direct_get
        if target is None:
            url = self._botocore_get(key, filename, content_type, ttl)
            return url, datetime.now(UTC) + timedelta(seconds=ttl)
        window = signing_window(ttl)
        start = int(self.clock()) // window * window
        credentials = self._credentials.get_frozen_credentials()
        # Within a window the URL is a function of these: one signed is kept until the
        # window ends (a page of galleries shows the same covers request after request).
        memo_key = (key, filename, content_type, credentials)
        signed_at, signed = self._signed
        if signed_at != start:
            signed_at, signed = self._signed = (start, {})
        kept = signed.get(memo_key)
        if kept is not None:
            url = kept
        else:
            url = sigv4.presign_get(target, key, _get_query(filename, content_type),
                                    credentials, signed_at=start, expires=ttl)
            if len(signed) < SIGNED_URLS_KEPT:
                signed[memo_key] = url
        return url, datetime.fromtimestamp(start + ttl, UTC)

    @property
    def direct_get(self) -> sigv4.PathStyle | None:
        """Where `app.sigv4` signs GETs, or None when botocore must sign them. Resolved on
        first use (credentials may come from the environment's chain): botocore signs a
        probe, and its URL gives the endpoint as botocore renders it (path-style) and the
        signing region; then ours must equal it byte for byte at botocore's own timestamp.
        Anything else, e.g. no credentials or a URL shape this module does not produce,
        falls back to botocore for every GET (slower, still correct), and says so once."""
        if self._direct_get is _UNRESOLVED:
            self._direct_get = self._probe()
        return self._direct_get

    def _probe(self) -> sigv4.PathStyle | None:
        if self._credentials is None:
            log.warning("presigned GETs signed by botocore: no credentials")
            return None
        credentials = self._credentials.get_frozen_credentials()
        ttl = self.settings.download_url_ttl_seconds
        url = self._botocore_get(_PROBE_KEY, _PROBE_FILENAME, _PROBE_TYPE, ttl)
        try:
            target, signed_at, _ = sigv4.parse(url, self.bucket, _PROBE_KEY)
            ours = sigv4.presign_get(target, _PROBE_KEY, _get_query(_PROBE_FILENAME, _PROBE_TYPE),
                                     credentials, signed_at=signed_at, expires=ttl)
            if ours != url:
                raise ValueError("botocore's URL differs from ours")
        except ValueError as exc:
            log.warning("presigned GETs signed by botocore: %s", exc)
            return None
        return target

    def _botocore_get(self, key: str, filename: str, content_type: str, ttl: int) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": _attachment(filename),
                "ResponseContentType": content_type,
            },
            ExpiresIn=ttl,
        )

    def head(self, key: str) -> ObjectInfo | None:
        try:
            meta = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                self._answered()
                return None
            raise self._failed("head failed", exc) from exc
        except BotoCoreError as exc:
            raise self._failed("storage unreachable", exc) from exc
        self._answered()
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
                self._answered()
                return False
            raise self._failed("copy failed", exc) from exc
        except BotoCoreError as exc:
            raise self._failed("storage unreachable", exc) from exc
        self._answered()
        return True

    def keys(self, prefix: str) -> Iterator[list[str]]:
        """The keys under `prefix`, a page (up to 1000) at a time."""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                yield [item["Key"] for item in page.get("Contents", ())]
        except (ClientError, BotoCoreError) as exc:
            raise self._failed("list failed", exc) from exc

    def sha256(self, key: str) -> str:
        """Hex SHA-256 of the object's bytes, streamed."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            digest = hashlib.sha256()
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise self._failed("read failed", exc) from exc
        self._answered()
        return digest.hexdigest()

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._failed("delete failed", exc) from exc
        self._answered()


def _get_query(filename: str, content_type: str) -> tuple[tuple[str, str], ...]:
    """A GET's parameters as botocore serializes them (in this order), encoded."""
    return (("response-content-disposition", _encoded_attachment(filename)),
            ("response-content-type", sigv4.encode(content_type)))


def _encoded_attachment(filename: str) -> str:
    """sigv4.encode(_attachment(filename)), faster (a third of a URL's cost was encoding
    that string): the RFC 5987 name is percent-encoded already, so only its `%` and `/`
    need escaping once more."""
    fallback = _NOT_IN_FALLBACK.sub("_", filename) or "download"
    name = sigv4.encode_path(filename).replace("%", "%25").replace("/", "%2F")
    return (f"attachment%3B%20filename%3D%22{sigv4.encode(fallback)}%22%3B%20"
            f"filename%2A%3DUTF-8%27%27{name}")


def _attachment(filename: str) -> str:
    """Content-Disposition for a download: an ASCII fallback (printable ASCII but quote and
    backslash) plus the RFC 5987 name."""
    fallback = _NOT_IN_FALLBACK.sub("_", filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{sigv4.encode_path(filename)}"

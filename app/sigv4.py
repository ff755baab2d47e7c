"""Presigned S3 GET URLs (AWS Signature Version 4, query-string form), without botocore.

botocore's `generate_presigned_url` costs about 0.9 ms a URL (operation model, endpoint
ruleset, request objects, event hooks), and a gallery page presigns one URL per cover. The
signature itself is one SHA-256 and one HMAC once the signing key is known, and that key
depends only on the secret, the day and the region: it is derived once and cached.

The URL must be botocore's byte for byte (tests/app/test_sigv4.py proves it for random
keys, parameters, times and endpoints), so the rules below are botocore's, not just the
specification's:
- path-style only: `{base}/{bucket}/{key}`, where `base` is what botocore puts before the
  bucket for the configured endpoint (app/storage.py asks botocore once, see
  `Storage.direct_get`), the key UTF-8 percent-encoded with `/` and `~` kept;
- the operation's query parameters first, in the caller's order, then X-Amz-Algorithm,
  -Credential, -Date, -Expires, -SignedHeaders (-Security-Token with temporary
  credentials), every name and value percent-encoded keeping only `-_.~` (the caller
  encodes its parameters with `encode`, or builds them encoded when that is faster); the
  signature last;
- the canonical request signs `host` only (lower-cased, port dropped when it is the scheme's
  default) and `UNSIGNED-PAYLOAD`; its query is those same pairs sorted.

Pure functions over their arguments plus small caches; the clock is the caller's.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol
from urllib.parse import parse_qs, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Credentials(Protocol):
    """What botocore's frozen credentials (`ReadOnlyCredentials`) carry."""

    @property
    def access_key(self) -> str: ...
    @property
    def secret_key(self) -> str: ...
    @property
    def token(self) -> str | None: ...


@dataclass(frozen=True)
class PathStyle:
    """Where a bucket's objects are, path-style, and the region its signatures name."""

    base: str  # scheme://host[:port][/path], as botocore renders the endpoint
    bucket: str
    region: str
    origin: str = field(init=False, repr=False)  # scheme://host[:port], the URL's start
    prefix: str = field(init=False, repr=False)  # [/path]/bucket/, the key follows
    host: str = field(init=False, repr=False)  # the signed `host` header

    def __post_init__(self) -> None:
        parts = urlsplit(self.base)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError("base must be an http(s) URL with a host")
        if parts.query or parts.fragment or parts.username is not None:
            raise ValueError("base must not carry a query, fragment or user")
        # botocore's host header: lower case (urlsplit's hostname is), IPv6 in brackets,
        # the port only when it is not the scheme's default.
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
            host = f"{host}:{parts.port}"
        path = parts.path[:-1] if parts.path.endswith("/") else parts.path
        object.__setattr__(self, "origin", f"{parts.scheme}://{parts.netloc}")
        object.__setattr__(self, "prefix", f"{path}/{encode(self.bucket)}/")
        object.__setattr__(self, "host", host)


def presign_get(
    target: PathStyle,
    key: str,
    query: tuple[tuple[str, str], ...],
    credentials: Credentials,
    *,
    signed_at: int,
    expires: int,
) -> str:
    """A URL that GETs `key` from `target` during `expires` seconds from `signed_at`
    (Unix seconds). `query` are the operation's parameters (e.g. response-content-type),
    unique names, in botocore's serialization order, names and values already `encode`d."""
    stamp = amz_date(signed_at)
    scope = f"{stamp[:8]}/{target.region}/{SERVICE}/aws4_request"
    path = target.prefix + encode_path(key)
    pairs = list(query)
    pairs += [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", _credential(credentials.access_key, scope)),
        ("X-Amz-Date", stamp),
        ("X-Amz-Expires", str(int(expires))),
        ("X-Amz-SignedHeaders", "host"),
    ]
    if credentials.token is not None:
        pairs.append(("X-Amz-Security-Token", encode(credentials.token)))
    canonical_query = "&".join(f"{name}={value}" for name, value in sorted(pairs))
    canonical = (f"GET\n{path}\n{canonical_query}\nhost:{target.host}\n\nhost\n"
                 "UNSIGNED-PAYLOAD")
    to_sign = (f"{ALGORITHM}\n{stamp}\n{scope}\n"
               f"{hashlib.sha256(canonical.encode()).hexdigest()}")
    key_bytes = signing_key(credentials.secret_key, stamp[:8], target.region)
    signature = hmac.digest(key_bytes, to_sign.encode(), "sha256").hex()
    query_string = "&".join(f"{name}={value}" for name, value in pairs)
    return f"{target.origin}{path}?{query_string}&X-Amz-Signature={signature}"


def encode(value: str) -> str:
    """Percent-encode `value`'s UTF-8 as botocore's percent_encode does: all but letters,
    digits and -_.~ (urllib's quote, whose `safe` always adds these)."""
    return quote(value, safe="-_.~")


def encode_path(value: str) -> str:
    """The same, keeping `/` (a key's greedy path label)."""
    return quote(value, safe="/~")


def parse(url: str, bucket: str, key: str) -> tuple[PathStyle, int, int]:
    """The target, signing time and lifetime (seconds) of a path-style presigned URL for
    `bucket` and `key`: how app/storage.py learns where botocore puts a GET, and how tests
    read when a URL expires. ValueError for any other URL."""
    parts = urlsplit(url)
    tail = f"/{encode(bucket)}/{encode_path(key)}"
    fields = {name: values[0] for name, values in parse_qs(parts.query).items()}
    scope = fields.get("X-Amz-Credential", "").rsplit("/", 4)
    if not parts.path.endswith(tail) or len(scope) != 5 or scope[3:] != [SERVICE,
                                                                            "aws4_request"]:
        raise ValueError("not a path-style SigV4 URL of this object")
    try:
        signed_at = calendar.timegm(time.strptime(fields["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        expires = int(fields["X-Amz-Expires"])
    except (KeyError, ValueError) as exc:
        raise ValueError("no X-Amz-Date or X-Amz-Expires") from exc
    base = f"{parts.scheme}://{parts.netloc}{parts.path[:-len(tail)]}"
    return PathStyle(base, bucket, scope[2]), signed_at, expires


@lru_cache(maxsize=8)
def signing_key(secret: str, day: str, region: str) -> bytes:
    """HMAC chain AWS4+secret -> day (YYYYMMDD) -> region -> s3 -> aws4_request: four HMACs
    that change once a day, so computed once per (secret, day, region)."""
    key = f"AWS4{secret}".encode()
    for part in (day, region, SERVICE, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


@lru_cache(maxsize=8)
def _credential(access_key: str, scope: str) -> str:
    return encode(f"{access_key}/{scope}")


@lru_cache(maxsize=8)
def amz_date(signed_at: int) -> str:
    """X-Amz-Date for Unix seconds: 20260102T030405Z (callers sign many URLs per second)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at))

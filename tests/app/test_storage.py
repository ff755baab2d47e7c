"""Storage.presign_get: botocore's URL at the start of a time window, signed by app.sigv4;
served by moto's S3 server over HTTP; never valid beyond now + TTL; the same URL within a
window (browsers reuse cached images), a new one after it. Time is injected (`clock`).

moto's server checks neither the signature nor the expiry of a presigned URL (moto 5.2: it
serves a tampered or an expired URL alike), so what proves the signature is the equality
with botocore's URL, and what proves the expiry is the URL's own X-Amz-Date + X-Amz-Expires.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from functools import cache
from unittest import mock
from urllib.parse import quote

import boto3
import pytest
import requests
from botocore.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from app import sigv4
from app.config import Settings
from app.storage import Storage, _attachment, _encoded_attachment, signing_window

BUCKET = "sigv4-tests"
NOW = 1_800_000_000  # 2027-01-15T08:00:00Z, a multiple of every window below
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30)
TTLS = st.sampled_from([1, 2, 59, 300, 3600, 604_800])


@pytest.fixture(scope="module")
def endpoint(s3_endpoint: str) -> str:
    Storage(_settings(s3_endpoint)).ensure_bucket()
    return s3_endpoint


def _settings(endpoint: str, **overrides) -> Settings:
    return Settings().with_overrides(
        {"s3_endpoint_url": endpoint, "s3_bucket": BUCKET, **overrides})


@cache
def _storage(endpoint: str, ttl: int = 300) -> Storage:
    """One per TTL (a boto3 session and client take a while); each test sets its clock."""
    return Storage(_settings(endpoint, download_url_ttl_seconds=ttl))


def _at(storage: Storage, now: float) -> Storage:
    storage.clock = lambda: now
    return storage


def _expiry(url: str, key: str) -> int:
    _, signed_at, expires = sigv4.parse(url, BUCKET, key)
    return signed_at + expires


def test_gets_are_signed_by_app_sigv4(endpoint):
    assert _storage(endpoint).direct_get == sigv4.PathStyle(endpoint, BUCKET, "us-east-1")
    aws = Storage(_settings("", s3_region="eu-west-3"))
    assert aws.direct_get == sigv4.PathStyle("https://s3.eu-west-3.amazonaws.com", BUCKET,
                                             "eu-west-3")


@settings(max_examples=150, deadline=None)
@given(key=TEXT, filename=TEXT, content_type=TEXT,
       now=st.floats(min_value=946_684_800, max_value=4_102_444_799))
def test_the_url_is_botocores_at_the_windows_start(endpoint, key, filename, content_type,
                                                   now):
    storage = _at(_storage(endpoint), now)
    url, expires_at = storage.presign_get(key, filename, content_type)
    window = signing_window(300)
    start = int(now) // window * window
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=datetime.fromtimestamp(start, UTC).replace(tzinfo=None)):
        expected = storage.client.generate_presigned_url("get_object", Params={
            "Bucket": BUCKET, "Key": key, "ResponseContentDisposition": _attachment(filename),
            "ResponseContentType": content_type}, ExpiresIn=300)
    assert url == expected
    assert expires_at == datetime.fromtimestamp(start + 300, UTC)


@settings(max_examples=100, deadline=None)
@given(ttl=TTLS, now=st.floats(min_value=946_684_800, max_value=4_102_444_799))
def test_a_url_never_outlives_now_plus_ttl(endpoint, ttl, now):
    """...and keeps at least TTL - window; expires_at is the URL's own expiry."""
    url, expires_at = _at(_storage(endpoint, ttl), now).presign_get("k", "f.png", "image/png")
    expiry = _expiry(url, "k")
    assert now + ttl - signing_window(ttl) < expiry <= now + ttl
    assert expiry == expires_at.timestamp()


@pytest.mark.parametrize("ttl", [1, 2, 300, 3600])
def test_the_same_url_within_a_window_and_a_new_one_after(endpoint, ttl):
    storage, window = _storage(endpoint, ttl), signing_window(ttl)
    first = _at(storage, NOW).presign_get("k", "f.png", "image/png")
    assert _at(storage, NOW + window - 0.001).presign_get("k", "f.png", "image/png") == first
    later = _at(storage, NOW + window).presign_get("k", "f.png", "image/png")
    assert later[0] != first[0]
    assert later[1].timestamp() == first[1].timestamp() + window


def _botocores(storage: Storage, key: str, filename: str, content_type: str, at: int) -> str:
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=datetime.fromtimestamp(at, UTC).replace(tzinfo=None)):
        return storage.client.generate_presigned_url("get_object", Params={
            "Bucket": BUCKET, "Key": key, "ResponseContentDisposition": _attachment(filename),
            "ResponseContentType": content_type}, ExpiresIn=300)


def test_urls_kept_within_a_window_are_each_their_own_and_follow_the_credentials(endpoint):
    """A window's URLs are kept (Storage._signed): each answer is still botocore's for its
    own key, name and type, asked again or not, and new credentials sign anew."""
    storage = _at(Storage(_settings(endpoint)), NOW)
    asked = [(k, f, t) for k in ("a", "b") for f in ("x.png", "y.png")
             for t in ("image/png", "image/gif")]
    for _ in range(2):
        for key, filename, content_type in asked:
            url, _ = storage.presign_get(key, filename, content_type)
            assert url == _botocores(storage, key, filename, content_type, NOW)
    before = storage.presign_get("a", "x.png", "image/png")[0]
    storage._credentials.secret_key = "rotated-" + storage._credentials.secret_key
    after = storage.presign_get("a", "x.png", "image/png")[0]
    assert after != before
    assert after == _botocores(storage, "a", "x.png", "image/png", NOW)


@given(filename=st.text())
def test_content_disposition_is_the_rfc_6266_pair(filename):
    """An ASCII fallback (printable ASCII but quote and backslash, `_` for the others) and
    the RFC 5987 name, as the first version of _attachment wrote them char by char; and its
    URL-encoded form built directly is the same as encoding it."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename) or "download"
    try:
        name = quote(filename)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _attachment(filename)
        with pytest.raises(UnicodeEncodeError):
            _encoded_attachment(filename)
        return
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{name}"
    assert _attachment(filename) == disposition
    assert _encoded_attachment(filename) == sigv4.encode(disposition)


@pytest.mark.parametrize(("key", "filename", "content_type"), [
    ("orgs/1/sites/2/assets/3", "photo.png", "image/png"),
    ("a b/c~d+e%f/ü😀", "Résumé été 😀.txt", "text/plain; charset=utf-8"),
])
def test_moto_serves_the_object_through_the_url(endpoint, key, filename, content_type):
    storage = _at(_storage(endpoint), time.time())
    data = key.encode() * 100
    storage.client.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="x/unrelated")
    url, _ = storage.presign_get(key, filename, content_type)
    fetched = requests.get(url, timeout=10)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == data
    assert fetched.headers["Content-Disposition"] == _attachment(filename)
    assert fetched.headers["Content-Type"] == content_type


def test_botocore_signs_what_app_sigv4_cannot(endpoint, caplog):
    """Virtual-host addressing (not what Storage configures, but a client that produces
    another shape): botocore's URLs, signed now, and one warning without the URL."""
    storage = Storage(_settings(endpoint))
    storage.client = boto3.client(
        "s3", endpoint_url="http://s3.example.test", region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))
    with caplog.at_level(logging.WARNING, logger="app.storage"):
        url, expires_at = storage.presign_get("k", "f.png", "image/png")
    assert storage.direct_get is None
    assert url.startswith(f"http://{BUCKET}.s3.example.test/k?")
    assert abs(expires_at.timestamp() - time.time() - 300) < 5
    assert [r.getMessage() for r in caplog.records] == [
        "presigned GETs signed by botocore: not a path-style SigV4 URL of this object"]

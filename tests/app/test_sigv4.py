"""app.sigv4 signs presigned GETs exactly as botocore does: same inputs, same signing time,
the same URL byte for byte, for keys, parameters, credentials, regions, endpoints, lifetimes
and times drawn at random. botocore's clock is frozen for the comparison (the test patches
botocore, never app.sigv4, which takes its time as an argument)."""

from __future__ import annotations

import calendar
from datetime import datetime
from functools import lru_cache
from unittest import mock

import botocore.session
import pytest
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from hypothesis import given, note, settings
from hypothesis import strategies as st

from app import sigv4

BUCKET = "tenant-api"
BOTOCORE = botocore.session.get_session()  # one loader: service models read once

# Keys and values rich in what needs encoding: unicode, spaces, ~ + / % and emoji.
_SPECIAL = st.sampled_from([" ", "~", "+", "/", "%", "%2F", "😀", "é", "=", "&", "?", "#",
                            ";", "*", "'", '"', ".", "..", "\\", "\n", "\x00", "ü"])
TEXT = st.lists(st.one_of(st.characters(codec="utf-8"), _SPECIAL), max_size=25).map("".join)
KEYS = st.lists(st.one_of(st.characters(codec="utf-8"), _SPECIAL), min_size=1,
                max_size=40).map("".join)
# Custom endpoints as operators configure them (MinIO, moto, Ceph...): with and without a
# port (default or not), a path, upper case; None is AWS itself, resolved by botocore.
ENDPOINTS = st.one_of(
    st.none(),
    st.builds(
        lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
        st.sampled_from(["http", "https", "HTTP"]),
        st.sampled_from(["127.0.0.1", "localhost", "MinIO.Example.com", "s3.internal",
                         "[::1]", "10.0.0.7"]),
        st.sampled_from(["", ":80", ":443", ":9000", ":65535"]),
        st.sampled_from(["", "/", "/s3", "/a/b/"]),
    ),
)
REGIONS = st.one_of(
    st.sampled_from(["us-east-1", "us-west-2", "eu-west-3", "ap-southeast-2", "sa-east-1",
                     "cn-north-1", "us-gov-west-1", "eu-central-2"]),
    st.from_regex(r"[a-z]{2}-[a-z]{4,9}-[1-9]", fullmatch=True),
)
# A botocore client costs ~20 ms: the encoding test draws its places and credentials from
# small pools (so clients are reused), the places test draws places widely.
PLACES = st.sampled_from([("http://127.0.0.1:9000", "us-east-1"),
                          ("https://MinIO.Example.com:443", "eu-west-3"),
                          ("http://[::1]:9000/s3/", "ap-southeast-2"),
                          (None, "us-east-1"), (None, "eu-central-2"), (None, "cn-north-1")])
CREDENTIALS = st.sampled_from([
    ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
    ("ASIA0123456789ABCDEF", "s3cr3t+/=", "FwoGZXIvYXdzE/+token=with%specials~ü"),
    ("test", "test", None),
    ("AKID", "sécret 😀", "t"),
])
# Whole seconds, as X-Amz-Date has them; botocore's clock is naive UTC.
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda at: at.replace(microsecond=0))
EXPIRES = st.integers(min_value=1, max_value=604_800)  # S3's longest: 7 days
PARAMS = st.sampled_from([(), ("ResponseContentDisposition",), ("ResponseContentType",),
                          ("ResponseContentDisposition", "ResponseContentType")])
QUERY_NAMES = {"ResponseContentDisposition": "response-content-disposition",
               "ResponseContentType": "response-content-type"}


@lru_cache(maxsize=64)
def _client(endpoint: str | None, region: str, credentials: tuple[str, str, str | None]):
    access_key, secret_key, token = credentials
    return BOTOCORE.create_client(
        "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key, aws_session_token=token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def _target(client) -> sigv4.PathStyle:
    """Where botocore puts the bucket for the client's endpoint, learnt as app/storage.py
    does: from one URL botocore signed for another key."""
    url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "p"})
    return sigv4.parse(url, BUCKET, "p")[0]


def _compare(client, credentials, key: str, params: dict[str, str], expires: int,
             at: datetime) -> None:
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        expected = client.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": key, **params}, ExpiresIn=expires)
    ours = sigv4.presign_get(
        _target(client), key,
        tuple((QUERY_NAMES[name], sigv4.encode(value)) for name, value in params.items()),
        ReadOnlyCredentials(*credentials), signed_at=calendar.timegm(at.timetuple()),
        expires=expires)
    note(f"botocore: {expected}\nours:     {ours}")
    assert ours == expected


@settings(max_examples=300, deadline=None)
@given(key=KEYS, values=st.tuples(TEXT, TEXT), params=PARAMS, place=PLACES,
       credentials=CREDENTIALS, expires=EXPIRES, at=TIMES)
def test_the_url_is_botocores(key, values, params, place, credentials, expires, at):
    """Keys, response parameters, credentials (with and without a session token),
    lifetimes and signing times."""
    chosen = dict(zip(params, values, strict=False))
    _compare(_client(*place, credentials), credentials, key, chosen, expires, at)


@settings(max_examples=80, deadline=None)
@given(endpoint=ENDPOINTS, region=REGIONS, key=KEYS, expires=EXPIRES, at=TIMES)
def test_the_url_is_botocores_for_any_endpoint_and_region(endpoint, region, key, expires,
                                                          at):
    credentials = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG", None)
    params = {"ResponseContentDisposition": "attachment", "ResponseContentType": "image/png"}
    _compare(_client(endpoint, region, credentials), credentials, key, params, expires, at)


def test_a_known_vector():
    """A fixed example, readable without botocore: the signature changes with any byte."""
    target = sigv4.PathStyle("http://127.0.0.1:9000", BUCKET, "us-east-1")
    url = sigv4.presign_get(
        target, "a b/c~d+e%f/ü😀",
        (("response-content-disposition", sigv4.encode('attachment; filename="x"')),
         ("response-content-type", sigv4.encode("image/png"))),
        ReadOnlyCredentials("AKID", "sec", None),
        signed_at=calendar.timegm((2026, 12, 4, 18, 22, 12)), expires=300)
    assert url == (
        "http://127.0.0.1:9000/tenant-api/a%20b/c~d%2Be%25f/%C3%BC%F0%9F%98%80"
        "?response-content-disposition=attachment%3B%20filename%3D%22x%22"
        "&response-content-type=image%2Fpng&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKID%2F20261204%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20261204T182212Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=4f9488da1a90702d16a5d63cdb240391e44573d1faff3930fb1cb78991f90a13")


def test_parse_reads_what_presign_wrote():
    target = sigv4.PathStyle("https://s3.eu-west-3.amazonaws.com", BUCKET, "eu-west-3")
    url = sigv4.presign_get(target, "k/ü", (), ReadOnlyCredentials(
        "AKID", "sec", "tok"), signed_at=1_800_000_000, expires=77)
    assert sigv4.parse(url, BUCKET, "k/ü") == (target, 1_800_000_000, 77)
    with pytest.raises(ValueError, match="path-style"):
        sigv4.parse(url, BUCKET, "another key")


@pytest.mark.parametrize("base", ["ftp://h/", "http:///nohost", "http://h/?q=1", "http://u@h/"])
def test_bases_it_cannot_sign_for_are_refused(base):
    with pytest.raises(ValueError, match="base"):
        sigv4.PathStyle(base, BUCKET, "us-east-1")

"""URI lengths: what the contract allows fits what the servers accept, and what does not
fit is refused with a 414 problem, by the app or by gunicorn itself.

The worst case of each operation is computed from the OpenAPI document: every query
parameter at its longest, each character percent-encoded at its widest (a four-byte UTF-8
character is 12 bytes encoded; ASCII-only patterns 3; the cursor's alphabet needs no
encoding at all)."""

from __future__ import annotations

import json
import runpy
import socket
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from app.pagination import seal
from app.uri import MAX_REQUEST_LINE, MAX_TARGET_BYTES
from schemas.common import CURSOR_MAX_LENGTH, CURSOR_PATTERN
from tests.support.http import assert_problem
from tests.support.server import gunicorn

ROOT = Path(__file__).resolve().parent.parent.parent
ANY_TEXT = {None, "^[^\\x00]*$"}  # patterns that let any character through but NUL
DATE_TIME = len("2026-12-04T21:39:02.123456789+00:00")
WIDEST = "\U0001f600"  # four bytes in UTF-8, twelve percent-encoded


def worst_value_bytes(name: str, schema: dict[str, Any]) -> int:
    if "enum" in schema:
        return max(len(quote(str(v))) for v in schema["enum"] if v is not None)
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "integer":
        return len(str(schema.get("maximum", 0))) + 1
    if kind == "boolean":
        return len("false")
    if fmt == "uuid":
        return 36
    if fmt == "date-time":
        return DATE_TIME * 3
    assert kind == "string" and "maxLength" in schema, f"{name}: no documented maximum"
    if schema.get("pattern") == CURSOR_PATTERN:
        return schema["maxLength"]
    per_char = 12 if schema.get("pattern") in ANY_TEXT else 3
    return schema["maxLength"] * per_char


def worst_targets(spec: dict[str, Any]) -> dict[str, int]:
    worst = {}
    for path, operations in spec["paths"].items():
        shared = operations.get("parameters", [])
        in_path = sum(1 for p in shared if p.get("in") == "path")
        base = len(path) + in_path * 36  # ids are UUIDs (templates' names count too: more)
        for method, operation in operations.items():
            if method == "parameters":
                continue
            query = [p for p in operation.get("parameters", [])
                     if isinstance(p, dict) and p.get("in") == "query"]
            total = base + sum(len(p["name"]) + 2 + worst_value_bytes(p["name"], p["schema"])
                               for p in query)
            worst[f"{method.upper()} {path}"] = total
    return worst


def test_every_operation_fits_within_the_limits_at_its_longest(app):
    spec = app.extensions["api"].spec.to_dict()
    worst = worst_targets(spec)
    too_long = {op: n for op, n in worst.items() if n > MAX_TARGET_BYTES}
    assert not too_long, too_long
    assert max(worst.values()) > 4094, "the events list alone would pass gunicorn's default"
    line = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["limit_request_line"]
    assert line == MAX_REQUEST_LINE
    assert len("OPTIONS ") + MAX_TARGET_BYTES + len(" HTTP/1.1") <= line


def test_the_longest_cursor_the_api_hands_out_is_one_it_accepts():
    """A sort value of 255 four-byte characters (a file name at its longest)."""
    cursor = seal("s" * 64, "/v1/orgs/x/sites/y/assets",
                  ["-filename", WIDEST * 255, str(uuid.uuid4())])
    assert len(cursor) <= CURSOR_MAX_LENGTH


def test_a_list_sorted_by_long_non_ascii_names_pages_through(client, tenant):
    admin = tenant["org_admin"]
    for n in range(2):
        r = client.post(f"{tenant.org_path}/sites", headers=admin.headers,
                        json={"name": f"{n}" + WIDEST * 199, "domain": f"s{n}.example.com"})
        assert r.status_code == 201, r.get_data(as_text=True)
    url, names = f"{tenant.org_path}/sites?sort=name&limit=1", []
    while url:
        r = client.get(url, headers=admin.headers)
        assert r.status_code == 200, r.get_data(as_text=True)
        body = r.get_json()
        names += [s["name"] for s in body["items"]]
        cursor = body["next_cursor"]
        query = urlencode({"sort": "name", "limit": 1, "cursor": cursor})
        url = f"{tenant.org_path}/sites?{query}" if cursor else ""
    assert len(names) == 3  # the tenant's own site and the two above


def test_a_target_over_the_limit_is_a_414_problem(client):
    r = client.get("/healthz?" + "x" * MAX_TARGET_BYTES)
    body = assert_problem(r, 414)
    assert str(MAX_TARGET_BYTES) in body["detail"]
    assert client.get("/healthz").status_code == 200


def raw_get(base: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """A GET sent byte for byte (requests would re-encode the target)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.slow  # starts gunicorn (a few seconds)
def test_under_gunicorn_the_longest_valid_list_request_is_served(app, tenant, tmp_path):
    admin = tenant["org_admin"]
    events = f"{tenant.site_path}/events"
    longest = {
        "distinct_id": WIDEST * 200, "name": WIDEST * 128,
        "cursor": "A" * CURSOR_MAX_LENGTH,  # well-formed, not one the API signed: a 400
        "since": "2026-12-04T21:39:02.123456+00:00", "until": "2026-12-05T21:39:02.123456+00:00",
        "sort": "-timestamp", "limit": 100,
    }
    with gunicorn(app, tmp_path / "gunicorn.log") as base:
        target = f"{events}?{urlencode(longest)}"
        assert len(target) > 4094  # gunicorn's default would have refused it
        r = requests.get(base + target, headers=admin.headers, timeout=10)
        assert r.status_code == 400, r.text
        assert r.json()["errors"] == {"cursor": ["Invalid cursor."]}
        without_cursor = {k: v for k, v in longest.items() if k != "cursor"}
        r = requests.get(f"{base}{events}?{urlencode(without_cursor)}", headers=admin.headers,
                         timeout=10)
        assert r.status_code == 200, r.text

        # Over the app's limit: the app's 414; over gunicorn's: gunicorn's, in the same shape.
        status, headers, body = raw_get(base, "/healthz?" + "x" * MAX_TARGET_BYTES)
        assert (status, headers["content-type"]) == (414, "application/problem+json"), body
        status, headers, body = raw_get(base, "/healthz?" + "x" * MAX_REQUEST_LINE)
        assert (status, headers["content-type"]) == (414, "application/problem+json"), body
        problem = json.loads(body)
        assert problem["status"] == 414 and str(MAX_REQUEST_LINE) in problem["detail"]

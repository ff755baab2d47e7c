"""Logs under gunicorn, read from its stderr: every line one JSON object, gunicorn's own
included; one access line per request with the client's address (behind a trusted proxy,
the one it forwarded), method, route template, status, duration, request id and user
agent; and never a password, token, key or query string."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.support import PASSWORD
from tests.support.keys import api_keys_path, split_key
from tests.support.server import gunicorn

pytestmark = pytest.mark.slow  # a gunicorn start

AGENT = "LogProbe/1.0 (+https://ops.example)"
CLIENT = "203.0.113.9"


def lines_of(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        entry = json.loads(line)  # every line, gunicorn's own too
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


def test_gunicorn_and_access_lines_are_json_without_secrets(app, world, tmp_path):
    tenant = world.tenant("Logged")
    admin = tenant["org_admin"]
    log = tmp_path / "gunicorn.log"
    sent: dict[str, dict[str, Any]] = {}
    with gunicorn(app, log, LOG_LEVEL="INFO", WEB_CONCURRENCY="2",
                  TRUSTED_PROXY_HOPS="1") as base:
        http = requests.Session()
        http.headers["User-Agent"] = AGENT
        forwarded = {"X-Forwarded-For": CLIENT}

        r = http.post(f"{base}/v1/auth/login", headers={**forwarded, "X-Request-ID": "rid-login"},
                      json={"email": admin.email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        pair = r.json()
        sent["rid-login"] = {"method": "POST", "route": "/v1/auth/login", "status": 200}

        bearer = {"Authorization": f"Bearer {pair['access_token']}", **forwarded}
        r = http.post(base + api_keys_path(tenant), json={"name": "ci", "role": "viewer"},
                      headers={**bearer, "X-Request-ID": "rid-key"})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        sent["rid-key"] = {"method": "POST", "route": "/v1/orgs/<uuid:org_id>/api-keys",
                           "status": 201}

        r = http.get(f"{base}{tenant.org_path}?X-Amz-Signature=sig-in-the-query",
                     headers={"Authorization": f"Bearer {secret}", **forwarded,
                              "X-Request-ID": "rid-org"})
        assert r.status_code == 200, r.text
        sent["rid-org"] = {"method": "GET", "route": "/v1/orgs/<uuid:org_id>", "status": 200}

        r = http.get(f"{base}/v1/orgs?cursor=cursor-in-the-query", headers={
            **bearer, "X-Request-ID": "rid-bad"})
        assert r.status_code == 400
        sent["rid-bad"] = {"method": "GET", "route": "/v1/orgs", "status": 400}

        r = http.post(f"{base}/v1/auth/refresh", headers={"X-Request-ID": "rid-refresh"},
                      json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 200, r.text
        sent["rid-refresh"] = {"method": "POST", "route": "/v1/auth/refresh", "status": 200}

    text = log.read_text()
    entries = lines_of(text)
    own = [e for e in entries if e["logger"] == "gunicorn.error"]
    messages = " | ".join(e["msg"] for e in own)
    assert "Starting gunicorn" in messages and messages.count("Booting worker") == 2
    assert all(isinstance(e["pid"], int) and e["ts"] and e["level"] for e in own)

    access = {e["request_id"]: e for e in entries if e["logger"] == "app.access"}
    for rid, expected in sent.items():
        line = access[rid]
        assert {k: line[k] for k in expected} == expected, line
        assert line["user_agent"] == AGENT
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        # Behind the trusted proxy (loopback), the address it forwarded; none: its own.
        assert line["client"] == (CLIENT if rid != "rid-refresh" else "127.0.0.1")
    assert access["rid-key"]["actor"] == str(admin.id)

    for never in (PASSWORD, pair["access_token"], pair["access_token"].split(".")[2],
                  pair["refresh_token"], secret, split_key(secret)[1], "sig-in-the-query",
                  "cursor-in-the-query", "X-Amz-Signature", "Bearer"):
        assert never not in text, never

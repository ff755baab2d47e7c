"""Request ids (accepted, generated, echoed everywhere) and JSON logs without secrets."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app import create_app, needs
from app.auth.keys import KeyRing
from app.observability import JsonFormatter
from tests.support import PASSWORD
from tests.support.keys import split_key

PROBLEM = "application/problem+json"
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
GENERATED = re.compile(r"[0-9a-f]{32}")


class LogCapture:
    """Formats each record when it is emitted (inside the request), as production does."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def entries(self) -> list[dict[str, Any]]:
        lines = self.text.splitlines()
        assert lines, "nothing was logged"
        parsed = [json.loads(line) for line in lines]  # one JSON document per line
        assert all(isinstance(entry, dict) for entry in parsed)
        return parsed


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture.handler)
    root.setLevel(logging.DEBUG)  # the most verbose setting must still be clean
    try:
        yield capture
    finally:
        root.removeHandler(capture.handler)
        root.setLevel(level)


def assert_request_id(response: Any, expected: str | None = None) -> str:
    rid = response.headers.get("X-Request-ID")
    assert rid is not None, f"no X-Request-ID on a {response.status_code}"
    assert REQUEST_ID.fullmatch(rid)
    if expected is not None:
        assert rid == expected
    if response.status_code >= 400:
        assert response.mimetype == PROBLEM
        assert response.get_json()["request_id"] == rid
    return rid


# -- request ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "incoming",
    ["a", "0", "req-1.2_3", "ABCdef-._", "x" * 128, "9c867ddd-88a1-455f-bf52-2f5185cabc90",
     "...", "-"],
)
def test_a_well_formed_request_id_is_echoed(client, incoming):
    ok = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert ok.status_code == 200
    assert_request_id(ok, incoming)
    denied = client.get("/v1/me", headers={"X-Request-ID": incoming})
    assert denied.status_code == 401
    assert_request_id(denied, incoming)


@pytest.mark.parametrize(
    "incoming",
    [
        "x" * 129,
        "",
        " ",
        "has space",
        "semi;colon",
        "slash/path",
        "comma,separated",
        "<script>alert(1)</script>",
        "tab\there",
        "nul\x00byte",
        "ünïcødé",
        'quote"d',
        "%0d%0aSet-Cookie:x=1",
    ],
)
def test_a_malformed_request_id_is_replaced(client, incoming):
    for response in (
        client.get("/healthz", headers={"X-Request-ID": incoming}),
        client.get("/v1/me", headers={"X-Request-ID": incoming}),
    ):
        rid = assert_request_id(response)
        assert rid != incoming
        assert GENERATED.fullmatch(rid)


def test_generated_request_ids_are_unique(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(20)}
    assert len(ids) == 20


def _foreign_org(client: Any, world: Any) -> Any:
    tenant = world.tenant("Hidden")
    return client.get(tenant.org_path, headers=world.user().headers)


def _conflict(client: Any, world: Any) -> Any:
    """Inviting an address that already holds the role (a taken email registers as a new
    one would: no enumeration)."""
    tenant = world.tenant()
    return client.post(f"{tenant.org_path}/members", headers=tenant["org_admin"].headers,
                       json={"email": tenant["viewer"].email, "role": "viewer"})


REQUESTS: dict[str, tuple[int, Callable[[Any, Any], Any]]] = {
    "healthz": (200, lambda c, w: c.get("/healthz")),
    "jwks": (200, lambda c, w: c.get("/.well-known/jwks.json")),
    "me": (200, lambda c, w: c.get("/v1/me", headers=w.user().headers)),
    "register": (
        202,
        lambda c, w: c.post(
            "/v1/auth/register",
            json={"email": f"{uuid.uuid4().hex}@example.com", "password": "p" * 12},
        ),
    ),
    "malformed-json": (
        400,
        lambda c, w: c.post("/v1/auth/login", data="{nope", content_type="application/json"),
    ),
    "no-token": (401, lambda c, w: c.get("/v1/me")),
    "bad-token": (401, lambda c, w: c.get("/v1/me", headers={"Authorization": "Bearer a.b.c"})),
    "wrong-password": (
        401,
        lambda c, w: c.post("/v1/auth/login", json={"email": w.user().email, "password": "wrong!"}),
    ),
    "unknown-route": (404, lambda c, w: c.get("/no/such/route")),
    "foreign-org": (404, _foreign_org),
    "method-not-allowed": (405, lambda c, w: c.delete("/healthz")),
    "conflict": (409, _conflict),
    "too-large": (
        413,
        lambda c, w: c.post(
            "/v1/auth/login", data="x" * (2 * 1024 * 1024), content_type="application/json"
        ),
    ),
    "media-type": (
        415,
        lambda c, w: c.post("/v1/auth/login", data="a=b", content_type="text/plain"),
    ),
    "validation": (400, lambda c, w: c.post("/v1/auth/register", json={"email": "nope"})),
}


@pytest.mark.parametrize("case", list(REQUESTS))
@pytest.mark.parametrize("supplied", [None, "client-id-42"])
def test_every_response_carries_the_request_id(client, world, case, supplied):
    status, send = REQUESTS[case]

    class Sender:  # the same client, with the X-Request-ID header added to every call
        def __getattr__(self, name: str) -> Any:
            method = getattr(client, name)

            def call(*args: Any, **kwargs: Any) -> Any:
                if supplied is not None:
                    kwargs["headers"] = {**kwargs.get("headers", {}), "X-Request-ID": supplied}
                return method(*args, **kwargs)

            return call

    response = send(Sender(), world)
    assert response.status_code == status, response.get_data(as_text=True)
    assert_request_id(response, supplied)


@pytest.fixture
def crashing_app(database_url: str, tmp_path: Any) -> Iterator[Any]:
    """An app with one extra public route that raises: what an unexpected bug looks like."""
    application = create_app(
        {
            "database_url": database_url,
            "instance_path": str(tmp_path),
            "jwt_keys": {"keys": [KeyRing.generate_key()]},
            "ratelimit_enabled": False,
            "log_level": "WARNING",
        }
    )

    def boom() -> Any:
        raise RuntimeError("internal detail: SELECT secret FROM vault")

    needs.declare(boom, needs.PUBLIC)
    application.add_url_rule("/boom", "boom", boom)
    yield application
    cache = application.extensions.get("actor_cache")
    if cache is not None:
        cache.close()
    application.extensions["db.engine"].dispose()


def test_an_unexpected_error_is_an_opaque_500_with_the_request_id(crashing_app, logs):
    response = crashing_app.test_client().get("/boom", headers={"X-Request-ID": "crash-1"})
    assert response.status_code == 500
    assert_request_id(response, "crash-1")
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "SELECT" not in text and "RuntimeError" not in text
    errors = [e for e in logs.entries() if e["logger"] == "app.errors"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "crash-1"
    assert "RuntimeError" in errors[0]["exc"]


# -- logs --------------------------------------------------------------------------------------


def test_logs_are_json_lines_carrying_the_request_id(client, world, logs):
    person = world.user()
    sent = {
        "log-ok": client.get("/v1/me", headers={**person.headers, "X-Request-ID": "log-ok"}),
        "log-401": client.get("/v1/me", headers={"X-Request-ID": "log-401"}),
        "log-404": client.get("/nowhere", headers={"X-Request-ID": "log-404"}),
        "log-bad-token": client.get(
            "/v1/me", headers={"Authorization": "Bearer x.y.z", "X-Request-ID": "log-bad-token"}
        ),
    }
    generated = client.get("/healthz").headers["X-Request-ID"]
    entries = logs.entries()
    for entry in entries:
        assert {"ts", "level", "logger", "msg"} <= set(entry)
        assert entry.get("request_id"), f"log line without request_id: {entry}"
    access = [e for e in entries if e["logger"] == "app.access"]
    assert [e["request_id"] for e in access] == [*sent, generated]  # one line per request
    for entry in access:
        if entry["request_id"] in sent:
            assert entry["status"] == sent[entry["request_id"]].status_code
    ok = next(e for e in access if e["request_id"] == "log-ok")
    assert ok["actor"] == str(person.id) and ok["method"] == "GET" and ok["path"] == "/v1/me"


def test_hostile_input_cannot_forge_log_lines(client, logs):
    client.get('/v1/orgs/%0A{"level":"error","msg":"forged"}', headers={"X-Request-ID": "inj"})
    client.get("/v1/me", headers={"Authorization": 'Bearer a.b.c\t{"forged": 1}'})
    entries = logs.entries()  # still one JSON object per line
    assert not any(e.get("msg") == "forged" or "forged" in e for e in entries)
    access = [e for e in entries if e["logger"] == "app.access"]
    assert len(access) == 2  # one line per request, whatever the request carried
    assert access[0]["path"].startswith("/v1/orgs/\n") and access[0]["request_id"] == "inj"


def test_logs_never_contain_passwords_tokens_keys_or_the_authorization_header(client, world, logs):
    secret = f"Secret-{uuid.uuid4().hex}"
    wrong = f"Wrong-{uuid.uuid4().hex}"
    short = f"S{uuid.uuid4().hex[:7]}"  # 8 characters: fails validation
    email = f"{uuid.uuid4().hex}@example.com"

    sent: list[str] = []

    def post(path: str, body: dict[str, Any], status: int, **kw: Any) -> Any:
        r = client.post(path, json=body, **kw)
        sent.append(r.headers["X-Request-ID"])
        assert r.status_code == status, r.get_data(as_text=True)
        return r

    def get(path: str, status: int, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = client.get(path, headers=headers)
        sent.append(r.headers["X-Request-ID"])
        assert r.status_code == status, r.get_data(as_text=True)
        return r

    post("/v1/auth/register", {"email": email, "password": secret}, 202)
    post("/v1/auth/register", {"email": f"x{email}", "password": short}, 400)
    login = post("/v1/auth/login", {"email": email, "password": secret}, 200).json
    token, refresh = login["access_token"], login["refresh_token"]
    post("/v1/auth/login", {"email": email, "password": wrong}, 401)
    post("/v1/auth/login", {"email": "nobody@example.com", "password": secret}, 401)
    post("/v1/auth/login", {"email": secret, "password": secret}, 400)  # password as email
    get(f"/v1/me?access_token={token}", 401)
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    get("/v1/me", 401, forged)
    get("/v1/me", 200, token)
    renewed = post("/v1/auth/refresh", {"refresh_token": refresh}, 200).json
    get("/v1/me", 200, renewed["access_token"])
    # An API key: created (its secret is in the response), used, and a forged one refused.
    tenant = world.tenant("Logged")
    api_key = post(
        f"{tenant.org_path}/api-keys",
        {"name": "ci", "role": "viewer"},
        201,
        headers=tenant["org_admin"].headers,
    ).json["secret"]
    get(tenant.org_path, 200, api_key)
    get(tenant.org_path, 401, api_key[:-4] + "AAAA")
    post("/v1/auth/refresh", {"refresh_token": refresh}, 401)  # replayed: session revoked
    get("/v1/me", 401, renewed["access_token"])

    text = logs.text
    entries = logs.entries()
    assert [e["request_id"] for e in entries if e["logger"] == "app.access"] == sent
    needles = {
        "the password": secret,
        "a wrong password": wrong,
        "a rejected password": short,
        "the test password": PASSWORD,
        "the bearer scheme": "Bearer",
        "the Authorization header": "Authorization",
        "a password hash": "argon2",
        "a refresh token": refresh,
        "the next refresh token": renewed["refresh_token"],
        "the API key": api_key,
        "the API key's secret": split_key(api_key)[1],  # it may contain `_` itself
    }
    for what, needle in needles.items():
        assert needle not in text, f"{what} appears in the logs"
    for jwt in (token, forged, renewed["access_token"], tenant["org_admin"].token):
        for segment in jwt.split("."):  # not even one segment of a token
            assert segment not in text, "an access token appears in the logs"

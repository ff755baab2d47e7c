"""Throttling of the endpoints that guess or mint credentials: login, register, refresh,
password change and key creation, per client IP and per account, answered with a 429
problem and `Retry-After`; failed passwords per (account, address), with a per-account
ceiling that slows but never refuses the owner. Runs against the in-memory storage and
the local Redis."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app import create_app
from tests.support import PASSWORD, Tenant, World
from tests.support.http import assert_problem

PER_IP = 3
PER_ACCOUNT = 2
FAILURES_PER_CLIENT = 2
FAILURES_PER_ACCOUNT = 4
DELAY_MS = 100
REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture
def make_app(app: Any, database_url: str, tmp_path: Any) -> Iterator[Callable[..., Any]]:
    """Apps on the test database with the throttling settings under test."""
    built: list[Any] = []

    def build(**overrides: Any) -> Any:
        settings = {
            "database_url": database_url,
            "instance_path": str(tmp_path / f"instance-{len(built)}"),
            "jwt_keys": app.extensions["settings"].jwt_keys,
            "log_level": "WARNING",
            "ratelimit_enabled": True,
            "ratelimit_per_ip": f"{PER_IP} per minute",
            "ratelimit_per_account": f"{PER_ACCOUNT} per minute",
            "s3_endpoint_url": app.extensions["settings"].s3_endpoint_url,
            "login_failures_per_client": f"{FAILURES_PER_CLIENT} per minute",
            "login_failures_per_account": FAILURES_PER_ACCOUNT,
            "login_delay_base_ms": DELAY_MS,
            "login_delay_max_ms": 4 * DELAY_MS,
            "smtp_port": app.extensions["settings"].smtp_port,
            **overrides,
        }
        other = create_app(settings)
        other.config["TESTING"] = True
        built.append(other)
        return other

    yield build
    for other in built:
        other.extensions["actor_cache"].close()
        other.extensions["mailer"].close()
        other.extensions["db.engine"].dispose()


@pytest.fixture(params=["memory://", REDIS], ids=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str:
    return request.param


# Counters in Redis outlive a test, and other runs may share the database: every test takes
# client addresses of its own (and emails and user ids are random anyway).
_NET = ["192.0.2."]


@pytest.fixture(autouse=True)
def _fresh_addresses() -> None:
    n = secrets.randbelow(1 << 16)
    _NET[0] = f"10.{n >> 8}.{n & 255}."


@pytest.fixture
def limited(make_app: Callable[..., Any], storage: str) -> Any:
    return make_app(ratelimit_storage_uri=storage)


def ip(n: int) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": f"{_NET[0]}{n}"}}


def assert_throttled(response: Any) -> None:
    assert_problem(response, 429)
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None, dict(response.headers)
    assert retry_after.isdigit() and 0 < int(retry_after) <= 60, retry_after


def login(client: Any, email: str, n: int = 1, password: str = "wrong password!") -> Any:
    return client.post("/v1/auth/login", json={"email": email, "password": password}, **ip(n))


def test_the_limiter_adds_no_request_hook(limited: Any):
    """With limits on, flask-limiter serves the pipeline's counters and adds no request hook
    of its own (its hooks check limits declared to it, and none are): the pipeline's
    hooks are the app's only ones, and every request skips flask-limiter's work."""
    hooks = [
        *limited.before_request_funcs.get(None, []),
        *limited.after_request_funcs.get(None, []),
        *limited.teardown_request_funcs.get(None, []),
    ]
    assert {f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', f)}" for f in hooks} == {
        "app.pipeline.before", "app.pipeline.after"}
    assert limited.extensions["ratelimit"].enabled


# -- login ---------------------------------------------------------------------------------


@pytest.fixture
def failures(make_app: Callable[..., Any], storage: str) -> Any:
    """Failed-password throttling alone: the per-IP request limit out of the way."""
    return make_app(ratelimit_storage_uri=storage, ratelimit_per_ip="1000 per minute")


def test_failed_logins_are_refused_per_account_and_address(failures):
    limited = failures
    person = World(limited).user()
    client = limited.test_client()
    for _ in range(FAILURES_PER_CLIENT):
        assert login(client, person.email, n=1).status_code == 401
    # That address is refused for that account, even with the right password...
    assert_throttled(login(client, person.email, n=1, password=PASSWORD))
    assert_throttled(login(client, person.email.upper(), n=1, password=PASSWORD))
    # ...another account from it is not, and the owner from another address signs in.
    assert login(client, f"{uuid.uuid4().hex}@example.com", n=1).status_code == 401
    assert login(client, person.email, n=2, password=PASSWORD).status_code == 200


def test_an_attacker_cannot_lock_the_owner_out(failures):
    """The lockout attack: many bad passwords for one account, from one address and
    then from many. The owner, from its own address, still signs in; past the account's
    ceiling every attempt waits, longer as failures go on."""
    limited = failures
    person = World(limited).user()
    client = limited.test_client()
    for n in range(FAILURES_PER_ACCOUNT + 2):  # from one address, then several
        r = login(client, person.email, n=1 + n // FAILURES_PER_CLIENT)
        assert r.status_code == 401, r.get_data(as_text=True)
    for _ in range(5):  # the first address stays refused, however long it tries
        assert_throttled(login(client, person.email, n=1))

    started = time.monotonic()
    owner = login(client, person.email, n=200, password=PASSWORD)
    waited = time.monotonic() - started
    assert owner.status_code == 200, owner.get_data(as_text=True)
    assert waited >= DELAY_MS / 1000  # past the ceiling: slowed, not refused

    started = time.monotonic()
    assert login(client, person.email, n=201).status_code == 401
    assert time.monotonic() - started >= 2 * DELAY_MS / 1000  # each failure doubles the wait


def test_login_is_throttled_per_ip_across_accounts(limited):
    client = limited.test_client()
    for _ in range(PER_IP):
        assert login(client, f"{uuid.uuid4().hex}@example.com", n=7).status_code == 401
    assert_throttled(login(client, f"{uuid.uuid4().hex}@example.com", n=7))
    # Another address is not affected.
    assert login(client, f"{uuid.uuid4().hex}@example.com", n=8).status_code == 401


# -- register, refresh, password -----------------------------------------------------------


def test_register_is_throttled_per_ip(limited):
    client = limited.test_client()
    for _ in range(PER_IP):
        r = client.post("/v1/auth/register", **ip(9),
                        json={"email": f"{uuid.uuid4().hex}@example.com", "password": PASSWORD})
        assert r.status_code == 202, r.get_data(as_text=True)
    r = client.post("/v1/auth/register", **ip(9),
                    json={"email": f"{uuid.uuid4().hex}@example.com", "password": PASSWORD})
    assert_throttled(r)


def test_refresh_is_throttled_per_ip(limited):
    client = limited.test_client()
    for _ in range(PER_IP):
        r = client.post("/v1/auth/refresh", json={"refresh_token": uuid.uuid4().hex}, **ip(11))
        assert r.status_code == 401
    assert_throttled(
        client.post("/v1/auth/refresh", json={"refresh_token": uuid.uuid4().hex}, **ip(11))
    )


def test_password_change_is_throttled_per_ip(limited):
    person = World(limited).user()
    client = limited.test_client()
    body = {"current_password": "wrong password!", "new_password": "x" * 12}
    for _ in range(PER_IP):
        other = World(limited).user()  # the per-account limits stay out of the way
        r = client.post("/v1/auth/password", json=body, headers=other.headers, **ip(12))
        assert r.status_code == 400
    assert_throttled(client.post("/v1/auth/password", json=body, headers=person.headers, **ip(12)))


def test_password_change_is_throttled_per_account(limited):
    """A stolen session cannot guess the current password faster than a login could,
    whatever addresses it uses."""
    person = World(limited).user()
    client = limited.test_client()
    body = {"current_password": "wrong password!", "new_password": "x" * 12}
    for n in range(PER_ACCOUNT):
        r = client.post("/v1/auth/password", json=body, headers=person.headers, **ip(60 + n))
        assert r.status_code == 400
    assert_throttled(client.post("/v1/auth/password", json=body, headers=person.headers,
                                 **ip(70)))


def test_wrong_current_passwords_count_as_failed_logins(failures):
    limited = failures
    person = World(limited).user()
    client = limited.test_client()
    body = {"current_password": "wrong password!", "new_password": "x" * 12}
    for _ in range(FAILURES_PER_CLIENT):
        r = client.post("/v1/auth/password", json=body, headers=person.headers, **ip(80))
        assert r.status_code == 400
    assert_throttled(login(client, person.email, n=80, password=PASSWORD))
    assert login(client, person.email, n=81, password=PASSWORD).status_code == 200


def test_password_reset_requests_are_throttled_per_account(make_app, storage):
    limited = make_app(ratelimit_storage_uri=storage, ratelimit_mail="2 per minute")
    client = limited.test_client()
    email = f"{uuid.uuid4().hex}@example.com"
    for n in range(2):
        r = client.post("/v1/auth/password/reset", json={"email": email}, **ip(90 + n))
        assert r.status_code == 202
    assert_throttled(client.post("/v1/auth/password/reset", json={"email": email}, **ip(99)))


# -- key creation --------------------------------------------------------------------------


@pytest.fixture
def tenant(limited: Any) -> Tenant:
    return World(limited).tenant()


def test_api_key_creation_is_throttled_per_account(limited, tenant):
    client = limited.test_client()
    path = f"{tenant.org_path}/api-keys"
    body = {"name": "k", "role": "viewer"}
    admin = tenant["org_admin"]
    for n in range(PER_ACCOUNT):
        r = client.post(path, json=body, headers=admin.headers, **ip(20 + n))
        assert r.status_code == 201
    assert_throttled(client.post(path, json=body, headers=admin.headers, **ip(30)))
    # Listing is not throttled; another user is not affected.
    assert client.get(path, headers=admin.headers).status_code == 200
    second = World(limited).user()
    World(limited).grant_org(second, tenant.org, "org_admin")
    assert client.post(path, json=body, headers=second.headers, **ip(31)).status_code == 201


def test_ingest_key_creation_is_throttled_per_account(limited, tenant):
    client = limited.test_client()
    path = f"{tenant.site_path}/ingest-keys"
    admin = tenant["site_admin"]
    for n in range(PER_ACCOUNT):
        r = client.post(path, json={"name": "k"}, headers=admin.headers, **ip(40 + n))
        assert r.status_code == 201
    assert_throttled(client.post(path, json={"name": "k"}, headers=admin.headers, **ip(50)))


# -- limits are per app ----------------------------------------------------------------------


def refresh(client: Any, n: int) -> Any:
    return client.post("/v1/auth/refresh", json={"refresh_token": uuid.uuid4().hex}, **ip(n))


def test_apps_keep_their_own_throttling_settings(make_app, storage):
    """One process may hold several apps (tests, or embedding): each keeps its own
    settings and counters, whatever was built after it."""
    strict = make_app(ratelimit_storage_uri=storage)
    relaxed = make_app(ratelimit_storage_uri="memory://", ratelimit_enabled=False)
    other = make_app(ratelimit_storage_uri="memory://", ratelimit_per_ip="100 per minute")
    strict_client, relaxed_client, other_client = (
        strict.test_client(), relaxed.test_client(), other.test_client()
    )
    for _ in range(PER_IP + 3):
        assert refresh(relaxed_client, 60).status_code == 401, "relaxed is not throttled"
    for _ in range(PER_IP + 3):
        assert refresh(other_client, 60).status_code == 401, "other has a higher limit"
    for _ in range(PER_IP):
        assert refresh(strict_client, 60).status_code == 401
    assert_throttled(refresh(strict_client, 60))


def test_the_suite_app_is_not_throttled(app, make_app, storage):
    """Building a throttled app must not throttle the others (here the suite's own app)."""
    make_app(ratelimit_storage_uri=storage)
    client = app.test_client()
    for _ in range(35):  # above the default 30 per minute per IP
        assert refresh(client, 61).status_code == 401


def test_probing_organizations_fills_the_audit_log_only_so_far(make_app, world):
    """Denials about organizations an actor holds nothing in are recorded up to
    AUDIT_PROBE_LIMIT per actor: a script walking random ids cannot flood the log. The
    answers themselves do not change (404), and another actor's probes are still kept."""
    from tests.support.http import denials, request_id, with_id

    app = make_app(ratelimit_storage_uri="memory://", audit_probe_limit="3 per minute")
    client = app.test_client()
    prober, other = world.user(), world.user()
    recorded = []
    for _ in range(5):
        rid = request_id()
        response = client.get(f"/v1/orgs/{uuid.uuid4()}", headers=with_id(prober.headers, rid))
        assert_problem(response, 404)
        recorded.append(len(denials(app, rid)))
    assert recorded == [1, 1, 1, 0, 0]
    rid = request_id()
    assert_problem(client.get(f"/v1/orgs/{uuid.uuid4()}", headers=with_id(other.headers, rid)), 404)
    assert len(denials(app, rid)) == 1


# -- behind reverse proxies ------------------------------------------------------------------


def session_ip(client: Any, email: str, **kw: Any) -> str:
    """Sign in (with `kw`'s peer and headers) and read back the address the session keeps."""
    r = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}, **kw)
    assert r.status_code == 200, r.get_data(as_text=True)
    token = r.get_json()["access_token"]
    listed = client.get("/v1/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    [current] = [s["ip"] for s in listed.get_json()["items"] if s["current"]]
    return current


def via(peer: str, forwarded: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": peer}, "headers": {"X-Forwarded-For": forwarded}}


def test_forwarded_addresses_are_ignored_by_default(make_app):
    app = make_app(ratelimit_enabled=False)
    person = World(app).user()
    assert session_ip(app.test_client(), person.email, **via("127.0.0.1", "203.0.113.7")) == (
        "127.0.0.1"
    )


def test_behind_a_trusted_proxy_the_client_address_is_the_one_it_appended(make_app):
    """One hop: the rightmost `X-Forwarded-For` entry is the proxy's; what a client wrote
    to the left of it is forged and ignored. A peer outside TRUSTED_PROXY_PEERS (a client
    reaching the app directly) is not believed at all."""
    app = make_app(ratelimit_enabled=False, trusted_proxy_hops=1,
                   trusted_proxy_peers=("192.0.2.10/32",))
    person = World(app).user()
    client = app.test_client()
    forged = via("192.0.2.10", "6.6.6.6, 203.0.113.7")
    assert session_ip(client, person.email, **forged) == "203.0.113.7"
    direct = via("198.51.100.9", "203.0.113.8")
    assert session_ip(client, person.email, **direct) == "198.51.100.9"


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(make_app):
    """Without the setting, every client behind the proxy would share the proxy's bucket."""
    app = make_app(ratelimit_storage_uri="memory://", trusted_proxy_hops=1,
                   trusted_proxy_peers=("192.0.2.10/32",))
    client = app.test_client()

    def attempt(address: str) -> Any:
        return client.post("/v1/auth/login", **via("192.0.2.10", address),
                           json={"email": f"{uuid.uuid4().hex}@example.com", "password": "x" * 12})

    for _ in range(PER_IP):
        assert attempt(f"{_NET[0]}1").status_code == 401
    assert_throttled(attempt(f"{_NET[0]}1"))
    assert attempt(f"{_NET[0]}2").status_code == 401


# -- storage down ------------------------------------------------------------------------------


def test_counters_storage_down_is_a_503_never_a_500(make_app):
    """Redis unreachable (nothing listens on the port): a limited request is refused with
    503 and `Retry-After`, unlimited ones are served, and /readyz names the limiter."""
    app = make_app(ratelimit_storage_uri="redis://127.0.0.1:1/0")
    client = app.test_client()
    r = login(client, f"{uuid.uuid4().hex}@example.com")
    body = assert_problem(r, 503)
    assert r.headers["Retry-After"].isdigit()
    assert "rate-limit" in body["detail"]
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert assert_problem(ready, 503, errors=["ratelimit"])["errors"] == {
        "ratelimit": ["unavailable"]
    }


def test_the_token_endpoint_is_limited_per_client_and_per_ip(make_app: Callable[..., Any]):
    """`/oauth/token`: per OAuth client (whatever address it calls from) and per address;
    the 429 is the pipeline's problem, before any credential is looked at."""
    other = make_app(ratelimit_per_client="2 per minute", ratelimit_per_ip="4 per minute")
    client = other.test_client()
    a, b = str(uuid.uuid4()), str(uuid.uuid4())

    def ask(client_id: str, ip: str) -> Any:
        return client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                 "client_id": client_id},
                           environ_base={"REMOTE_ADDR": ip})

    assert [ask(a, "10.0.0.1").status_code for _ in range(2)] == [401, 401]  # unknown client
    assert_problem(ask(a, "10.0.0.2"), 429)  # the same client from elsewhere
    assert ask(b, "10.0.0.1").status_code == 401
    assert ask(b, "10.0.0.1").status_code == 401
    r = ask(str(uuid.uuid4()), "10.0.0.1")  # a fresh client id from a spent address
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1

"""The OAuth 2.1 authorization server through the test client: the authorization code
flow with PKCE and consent, the token endpoint's grants, revocation, introspection,
metadata, and the attacks of issue 14, each refused with its RFC's error.
(tests/api/test_oauth_live.py drives the same flows with authlib's client over HTTP.)"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import select

from app.db import owner_sessionmaker
from app.models import AuditEvent
from tests.support import PASSWORD, Tenant
from tests.support.oauth import (
    CALLBACK,
    Client,
    authorize_query,
    create_oauth_client,
    oauth_clients_path,
    pkce,
)

pytestmark = pytest.mark.portable

AUTHORIZE = "/oauth/authorize"


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def _redirected(response: Any) -> dict[str, str]:
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(CALLBACK + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(client: Any, query: dict[str, str], email: str) -> str:
    """Sign in on the page; returns the consent page's CSRF token."""
    url = f"{AUTHORIZE}?{urlencode(query)}"
    page = client.get(url)
    assert page.status_code == 200 and "Sign in" in page.get_data(as_text=True)
    r = client.post(url, data={"csrf_token": _csrf(page.get_data(as_text=True)),
                               "action": "sign_in", "email": email, "password": PASSWORD})
    assert r.status_code == 303, r.get_data(as_text=True)
    consent = client.get(url)
    assert "Allow access?" in consent.get_data(as_text=True)
    return _csrf(consent.get_data(as_text=True))


def get_code(client: Any, registered: Client, person: Any, *, scope: str = "read",
             redirect_uri: str = CALLBACK) -> tuple[str, str]:
    """(code, verifier) after signing in as `person` and approving."""
    verifier, challenge = pkce()
    query = authorize_query(registered.id, challenge, scope=scope, redirect_uri=redirect_uri)
    csrf = sign_in(client, query, person.email)
    r = client.post(f"{AUTHORIZE}?{urlencode(query)}",
                    data={"csrf_token": csrf, "action": "approve"})
    params = _redirected(r)
    assert params["state"] == "xyz"
    return params["code"], verifier


def token(client: Any, registered: Client, **form: str) -> Any:
    auth = (registered.id, registered.secret) if registered.secret else None
    if auth is None:
        form.setdefault("client_id", registered.id)
    headers = {}
    if auth is not None:
        import base64
        headers["Authorization"] = "Basic " + base64.b64encode(
            f"{auth[0]}:{auth[1]}".encode()).decode()
    return client.post("/oauth/token", data=form, headers=headers)


def exchange(client: Any, registered: Client, code: str, verifier: str,
             redirect_uri: str = CALLBACK) -> Any:
    return token(client, registered, grant_type="authorization_code", code=code,
                 redirect_uri=redirect_uri, code_verifier=verifier)


def oauth_error(response: Any, status: int, error: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == error


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
def public_app(client: Any, tenant: Tenant) -> Client:
    return create_oauth_client(client, tenant, "public")


@pytest.fixture
def server_app(client: Any, tenant: Tenant) -> Client:
    return create_oauth_client(client, tenant, "confidential", role="viewer")


# -- the flow ----------------------------------------------------------------------------------


def test_code_with_pkce_and_consent_gives_tokens_that_act_for_the_person(
        client, tenant, public_app):
    code, verifier = get_code(client, public_app, tenant["member"])
    r = exchange(client, public_app, code, verifier)
    assert r.status_code == 200, r.get_data(as_text=True)
    tokens = r.get_json()
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "read"
    assert tokens["refresh_token"] and tokens["expires_in"] > 0
    assert r.headers["Cache-Control"] == "no-store"
    r = client.get(f"{tenant.site_path}/galleries", headers=bearer(tokens))
    assert r.status_code == 200
    # `read` is a ceiling: what the person could do beyond reading, the token may not.
    r = client.post(f"{tenant.site_path}/galleries", json={"title": "t"}, headers=bearer(tokens))
    assert r.status_code == 403
    # The person's own profile is reading; their sessions and password are not.
    me = client.get("/v1/me", headers=bearer(tokens))
    assert me.status_code == 200 and me.get_json()["id"] == str(tenant["member"].id)
    assert client.get("/v1/auth/sessions", headers=bearer(tokens)).status_code == 403
    assert client.post(f"{tenant.site_path}/galleries", json={"title": "t"},
                       headers=tenant["member"].headers).status_code == 201


def test_refresh_rotates_and_reuse_revokes_the_session(client, tenant, public_app):
    code, verifier = get_code(client, public_app, tenant["member"])
    first = exchange(client, public_app, code, verifier).get_json()
    r = token(client, public_app, grant_type="refresh_token",
              refresh_token=first["refresh_token"])
    assert r.status_code == 200, r.get_data(as_text=True)
    second = r.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get(tenant.site_path, headers=bearer(second)).status_code == 200
    replay = token(client, public_app, grant_type="refresh_token",
                   refresh_token=first["refresh_token"])
    oauth_error(replay, 400, "invalid_grant")
    # The whole session is gone: the live pair too.
    assert client.get(tenant.site_path, headers=bearer(second)).status_code == 401
    oauth_error(token(client, public_app, grant_type="refresh_token",
                      refresh_token=second["refresh_token"]), 400, "invalid_grant")


def test_client_credentials_act_with_the_clients_own_role(client, tenant, server_app):
    r = token(client, server_app, grant_type="client_credentials", scope="read")
    assert r.status_code == 200, r.get_data(as_text=True)
    tokens = r.get_json()
    assert "refresh_token" not in tokens
    assert client.get(tenant.org_path, headers=bearer(tokens)).status_code == 200
    # Revoking the client cuts its tokens off at once.
    path = f"{oauth_clients_path(tenant)}/{server_app.id}"
    assert client.delete(path, headers=tenant["org_admin"].headers).status_code == 204
    assert client.get(tenant.org_path, headers=bearer(tokens)).status_code == 401
    oauth_error(token(client, server_app, grant_type="client_credentials"), 401,
                "invalid_client")


def test_revoke_and_introspect(client, tenant, public_app, server_app, app):
    code, verifier = get_code(client, server_app, tenant["member"])
    tokens = exchange(client, server_app, code, verifier).get_json()
    auth = {"Authorization": "Basic " + __import__("base64").b64encode(
        f"{server_app.id}:{server_app.secret}".encode()).decode()}
    r = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, headers=auth)
    body = r.get_json()
    assert body["active"] is True and body["client_id"] == server_app.id
    assert body["sub"] == str(tenant["member"].id) and body["scope"] == "read"
    r = client.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, headers=auth)
    assert r.status_code == 200
    assert client.get(tenant.site_path, headers=bearer(tokens)).status_code == 401
    r = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, headers=auth)
    assert r.get_json() == {"active": False}
    with owner_sessionmaker(app)() as s:
        events = set(s.scalars(select(AuditEvent.event).where(
            AuditEvent.actor_id == uuid.UUID(server_app.id))))
    assert {"oauth.code_issued", "oauth.token_issued", "oauth.token_revoked"} <= events


def test_metadata(client):
    r = client.get("/.well-known/oauth-authorization-server")
    body = r.get_json()
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["token_endpoint"].endswith("/oauth/token")
    assert body["issuer"] == body["token_endpoint"].removesuffix("/oauth/token")


# -- attacks (issue 14), each refused with its RFC's error ---------------------------------------


def _basic(registered: Client) -> dict[str, str]:
    import base64
    return {"Authorization": "Basic " + base64.b64encode(
        f"{registered.id}:{registered.secret}".encode()).decode()}


def test_a_replayed_code_is_refused_and_revokes_what_it_issued(client, tenant, public_app):
    code, verifier = get_code(client, public_app, tenant["member"])
    tokens = exchange(client, public_app, code, verifier).get_json()
    assert client.get(tenant.site_path, headers=bearer(tokens)).status_code == 200
    oauth_error(exchange(client, public_app, code, verifier), 400, "invalid_grant")
    assert client.get(tenant.site_path, headers=bearer(tokens)).status_code == 401
    oauth_error(token(client, public_app, grant_type="refresh_token",
                      refresh_token=tokens["refresh_token"]), 400, "invalid_grant")


def test_an_expired_code_is_refused(app, client, tenant, public_app):
    from sqlalchemy import update

    from app.db import utcnow
    from app.models import OAuthCode

    code, verifier = get_code(client, public_app, tenant["member"])
    with owner_sessionmaker(app)() as s, s.begin():  # 60 s later, without waiting
        s.execute(update(OAuthCode).values(expires_at=utcnow()))
    oauth_error(exchange(client, public_app, code, verifier), 400, "invalid_grant")


def test_a_code_of_another_client_is_refused(client, tenant, public_app):
    other = create_oauth_client(client, tenant, "public")
    code, verifier = get_code(client, public_app, tenant["member"])
    oauth_error(exchange(client, other, code, verifier), 400, "invalid_grant")
    # Still good for its own client: the attempt spent nothing.
    assert exchange(client, public_app, code, verifier).status_code == 200


@pytest.mark.parametrize("uri", [
    "https://evil.example.com/callback",
    CALLBACK + "/../../evil",  # prefix tricks: exact match only
    CALLBACK + "x", CALLBACK + "?next=https://evil.example.com", "https://app.example.com",
])
def test_an_unregistered_redirect_uri_gets_no_redirect(client, public_app, uri):
    _, challenge = pkce()
    query = authorize_query(public_app.id, challenge, redirect_uri=uri)
    r = client.get(f"{AUTHORIZE}?{urlencode(query)}")
    oauth_error(r, 400, "invalid_request")
    assert "Location" not in r.headers


def test_errors_go_back_only_to_a_registered_uri(client, public_app):
    """No open redirect: an unknown client, or a missing redirect URI, is answered here."""
    _, challenge = pkce()
    query = authorize_query(str(uuid.uuid4()), challenge)
    r = client.get(f"{AUTHORIZE}?{urlencode(query)}")
    oauth_error(r, 400, "invalid_client")
    query = authorize_query(public_app.id, challenge)
    del query["redirect_uri"]
    oauth_error(client.get(f"{AUTHORIZE}?{urlencode(query)}"), 400, "invalid_request")
    # A registered URI gets the error, with the state.
    query = authorize_query(public_app.id, challenge, scope="nonsense")
    params = _redirected(client.get(f"{AUTHORIZE}?{urlencode(query)}"))
    assert params["error"] == "invalid_scope" and params["state"] == "xyz"


@pytest.mark.parametrize("name", ["response_type", "client_id", "state", "code_challenge"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_parameter_outside_rfc_6749s_characters_is_refused_not_a_500(
        client, public_app, name, method):
    """Fuzzing found authlib echoing an emoji `response_type` into an error description it
    then refused to build (a 500)."""
    _, challenge = pkce()
    query = {**authorize_query(public_app.id, challenge), name: "\U0001f600\u202e"}
    r = client.open(f"{AUTHORIZE}?{urlencode(query)}", method=method,
                    data={"action": "sign_in", "csrf_token": "x"})
    oauth_error(r, 400, "invalid_request")
    assert "Location" not in r.headers


def test_a_redirect_uri_other_than_the_authorized_one_is_refused_at_the_token_endpoint(
        client, tenant):
    registered = create_oauth_client(client, tenant, "public",
                                     redirect_uris=[CALLBACK, CALLBACK + "/other"])
    code, verifier = get_code(client, registered, tenant["member"])
    oauth_error(exchange(client, registered, code, verifier, CALLBACK + "/other"), 400,
                "invalid_grant")


@pytest.mark.parametrize("verifier", [None, "w" * 43])
def test_a_missing_or_wrong_pkce_verifier_is_refused(client, tenant, public_app, verifier):
    code, _ = get_code(client, public_app, tenant["member"])
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    if verifier is not None:
        form["code_verifier"] = verifier
    r = token(client, public_app, **form)
    oauth_error(r, 400, "invalid_request" if verifier is None else "invalid_grant")


@pytest.mark.parametrize("method", ["plain", None])
def test_a_plain_or_missing_challenge_method_is_refused(client, public_app, method):
    verifier, _ = pkce()
    query = authorize_query(public_app.id, verifier, method=method)  # plain: challenge = verifier
    params = _redirected(client.get(f"{AUTHORIZE}?{urlencode(query)}"))
    assert params["error"] == "invalid_request"


def test_a_request_without_state_is_refused(client, public_app):
    _, challenge = pkce()
    query = authorize_query(public_app.id, challenge, state=None)
    params = _redirected(client.get(f"{AUTHORIZE}?{urlencode(query)}"))
    assert params["error"] == "invalid_request" and "state" not in params


def test_consent_without_the_csrf_token_issues_no_code(app, client, tenant, public_app):
    _, challenge = pkce()
    query = authorize_query(public_app.id, challenge)
    sign_in(client, query, tenant["member"].email)
    url = f"{AUTHORIZE}?{urlencode(query)}"
    for data in ({"action": "approve"}, {"action": "approve", "csrf_token": "forged"}):
        r = client.post(url, data=data)
        oauth_error(r, 400, "invalid_request")
    # A page of another site posting the form carries no cookie (SameSite=Lax) either.
    client.delete_cookie("oauth_browser", path="/oauth")
    oauth_error(client.post(url, data={"action": "approve", "csrf_token": "x"}), 400,
                "invalid_request")
    from app.models import OAuthCode
    with owner_sessionmaker(app)() as s:
        assert s.scalars(select(OAuthCode)).first() is None


def test_the_page_refuses_to_be_framed_and_its_cookie_is_guarded(client, public_app):
    _, challenge = pkce()
    r = client.get(f"{AUTHORIZE}?{urlencode(authorize_query(public_app.id, challenge))}")
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/oauth" in cookie
    assert "Max-Age=600" in cookie


def test_a_wrong_password_on_the_page_is_refused_like_the_api_login(client, tenant, public_app):
    _, challenge = pkce()
    url = f"{AUTHORIZE}?{urlencode(authorize_query(public_app.id, challenge))}"
    page = client.get(url).get_data(as_text=True)
    r = client.post(url, data={"csrf_token": _csrf(page), "action": "sign_in",
                               "email": tenant["member"].email, "password": "wrong" * 4})
    assert r.status_code == 200 and "Invalid email or password." in r.get_data(as_text=True)
    assert "Allow access?" not in client.get(url).get_data(as_text=True)


def test_a_refresh_cannot_widen_the_scope(client, tenant, public_app):
    code, verifier = get_code(client, public_app, tenant["member"], scope="read")
    tokens = exchange(client, public_app, code, verifier).get_json()
    r = token(client, public_app, grant_type="refresh_token",
              refresh_token=tokens["refresh_token"], scope="read write")
    oauth_error(r, 400, "invalid_scope")


def test_a_client_cannot_introspect_or_revoke_another_clients_token(client, tenant,
                                                                    server_app):
    other = create_oauth_client(client, tenant, "confidential")
    code, verifier = get_code(client, server_app, tenant["member"])
    tokens = exchange(client, server_app, code, verifier).get_json()
    r = client.post("/oauth/introspect", data={"token": tokens["access_token"]},
                    headers=_basic(other))
    assert r.status_code == 200 and r.get_json() == {"active": False}
    for name in ("access_token", "refresh_token"):
        r = client.post("/oauth/revoke", data={"token": tokens[name]}, headers=_basic(other))
        oauth_error(r, 400, "invalid_grant")
    assert client.get(tenant.site_path, headers=bearer(tokens)).status_code == 200


def test_a_public_client_cannot_use_client_credentials(client, public_app):
    r = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                          "client_id": public_app.id})
    oauth_error(r, 401, "invalid_client")


def test_introspection_is_for_confidential_clients(client, tenant, public_app):
    code, verifier = get_code(client, public_app, tenant["member"])
    tokens = exchange(client, public_app, code, verifier).get_json()
    r = client.post("/oauth/introspect", data={"token": tokens["access_token"],
                                               "client_id": public_app.id})
    oauth_error(r, 401, "invalid_client")


def test_a_revoked_clients_refresh_token_is_refused(client, tenant, public_app):
    code, verifier = get_code(client, public_app, tenant["member"])
    tokens = exchange(client, public_app, code, verifier).get_json()
    r = client.delete(f"{oauth_clients_path(tenant)}/{public_app.id}",
                      headers=tenant["org_admin"].headers)
    assert r.status_code == 204
    # 400, not 401: the client sent no `Authorization` header (RFC 6749 5.2).
    oauth_error(token(client, public_app, grant_type="refresh_token",
                      refresh_token=tokens["refresh_token"]), 400, "invalid_client")
    assert client.get(tenant.site_path, headers=bearer(tokens)).status_code == 401


def test_a_token_stops_working_when_its_person_loses_the_role(client, tenant, public_app):
    person = tenant["member"]
    code, verifier = get_code(client, public_app, person)
    tokens = exchange(client, public_app, code, verifier).get_json()
    assert client.get(tenant.site_path, headers=bearer(tokens)).status_code == 200
    r = client.delete(f"{tenant.org_path}/members/{person.id}",
                      headers=tenant["org_admin"].headers)
    assert r.status_code == 204, r.get_data(as_text=True)
    assert client.get(tenant.site_path, headers=bearer(tokens)).status_code == 404


def test_a_login_refresh_token_is_not_an_oauth_one_and_back(client, tenant, public_app):
    login = client.post("/v1/auth/login", json={"email": tenant["member"].email,
                                                "password": PASSWORD}).get_json()
    oauth_error(token(client, public_app, grant_type="refresh_token",
                      refresh_token=login["refresh_token"]), 400, "invalid_grant")
    code, verifier = get_code(client, public_app, tenant["member"])
    tokens = exchange(client, public_app, code, verifier).get_json()
    r = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401


def test_refusals_and_code_reuse_are_audited_without_secrets(app, client, tenant, public_app):
    code, verifier = get_code(client, public_app, tenant["member"])
    exchange(client, public_app, code, verifier)
    exchange(client, public_app, code, verifier)
    with owner_sessionmaker(app)() as s:
        rows = s.scalars(select(AuditEvent).where(
            AuditEvent.actor_id == uuid.UUID(public_app.id))).all()
    events = {r.event for r in rows}
    assert {"oauth.code_reuse", "oauth.refused", "oauth.token_issued"} <= events
    dumped = repr([(r.data, r.resource_id) for r in rows])
    assert code not in dumped and verifier not in dumped


def test_the_document_declares_the_oauth2_flows_and_docs_use_pkce(client):
    spec = client.get("/openapi.json").get_json()
    flows = spec["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["authorizationCode"]["authorizationUrl"].endswith("/oauth/authorize")
    assert flows["clientCredentials"]["tokenUrl"].endswith("/oauth/token")
    assert set(flows["authorizationCode"]["scopes"]) == {"read", "write", "admin",
                                                         "events:write"}
    page = client.get("/docs").get_data(as_text=True)
    assert "usePkceWithAuthorizationCodeGrant: true" in page
    assert "/docs/assets/oauth2-redirect.html" in page
    assert client.get("/docs/assets/oauth2-redirect.html").status_code == 200


def test_a_scope_the_client_may_not_ask_for_is_refused(client, tenant, public_app, server_app):
    _, challenge = pkce()
    query = authorize_query(public_app.id, challenge, scope="read admin")  # it has read, write
    params = _redirected(client.get(f"{AUTHORIZE}?{urlencode(query)}"))
    assert params["error"] == "invalid_scope"
    r = token(client, server_app, grant_type="client_credentials", scope="admin")
    oauth_error(r, 400, "invalid_scope")


def test_the_page_escapes_what_clients_named_themselves(client, tenant):
    registered = create_oauth_client(client, tenant, "public",
                                     name='<script>alert("x")</script>')
    _, challenge = pkce()
    query = authorize_query(registered.id, challenge)
    page = client.get(f"{AUTHORIZE}?{urlencode(query)}").get_data(as_text=True)
    assert "<script>" not in page and "&lt;script&gt;" in page

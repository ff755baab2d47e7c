"""End to end: the OAuth 2.1 server served by gunicorn (production mode) on loopback,
driven by an independent client library, authlib's `OAuth2Session` (requests): code +
PKCE with sign-in and consent, refresh with rotation, client credentials, revocation,
introspection and discovery, over real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from tests.support import PASSWORD, Tenant
from tests.support.nodes import Node, empty_limits, node_env, start_node
from tests.support.oauth import create_oauth_client, oauth_clients_path

pytestmark = pytest.mark.slow  # one gunicorn start

CALLBACK = "http://127.0.0.1:8765/callback"  # a native app's loopback redirect (RFC 8252)
ISSUER = "https://auth.example.test"


@pytest.fixture(scope="module")
def node(app: Any, database_url: str, s3_endpoint: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the node shares the PostgreSQL database")
    home = tmp_path_factory.mktemp("oauth-node")
    empty_limits()
    started = start_node(node_env(app, database_url, s3_endpoint, home,
                                  PUBLIC_BASE_URL=ISSUER), home / "node.log")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(autouse=True)
def loopback_http(monkeypatch: pytest.MonkeyPatch) -> None:
    # authlib's client refuses plain http; loopback is the only transport here.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _cookie(response: requests.Response) -> str:
    """The browser session cookie: `Secure` in production, which requests will not send
    back over loopback http, so the test carries it as a browser on https would."""
    jar = SimpleCookie(response.headers["Set-Cookie"])
    morsel = jar["oauth_browser"]
    assert morsel["httponly"] and morsel["secure"] and morsel["samesite"] == "Lax"
    assert morsel["path"] == "/oauth" and 0 < int(morsel["max-age"]) <= 600
    return f"oauth_browser={morsel.value}"


def sign_in_and_approve(authorize_url: str, email: str) -> str:
    """What a person does in a browser; returns the redirect back to the app."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200 and "Sign in" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    signed_in = requests.post(authorize_url, timeout=10, allow_redirects=False,
                              headers={"Cookie": _cookie(page)},
                              data={"csrf_token": _csrf(page.text), "action": "sign_in",
                                    "email": email, "password": PASSWORD})
    assert signed_in.status_code == 303, signed_in.text
    cookie = _cookie(signed_in)
    consent = requests.get(authorize_url, timeout=10, headers={"Cookie": cookie})
    assert "Allow access?" in consent.text and "read" in consent.text
    approved = requests.post(authorize_url, timeout=10, allow_redirects=False,
                             headers={"Cookie": cookie},
                             data={"csrf_token": _csrf(consent.text), "action": "approve"})
    assert approved.status_code == 302, approved.text
    return approved.headers["Location"]


def test_the_whole_protocol_with_an_independent_client(node, client, world):
    tenant: Tenant = world.tenant("OAuthLive")
    base = node.url
    metadata = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=10).json()
    assert metadata["issuer"] == ISSUER
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    token_url = f"{base}/oauth/token"

    # A native app (public client): code + PKCE, consent in the browser.
    app_client = create_oauth_client(client, tenant, "public", redirect_uris=[CALLBACK],
                                     scopes=["read", "write"])
    session = OAuth2Session(app_client.id, redirect_uri=CALLBACK, scope="read",
                            code_challenge_method="S256", token_endpoint_auth_method="none")
    verifier = "v" * 20 + "-" + "x" * 43
    url, state = session.create_authorization_url(f"{base}/oauth/authorize",
                                                  code_verifier=verifier)
    back = sign_in_and_approve(url, tenant["member"].email)
    assert back.startswith(CALLBACK + "?") and f"state={state}" in back
    token = session.fetch_token(token_url, authorization_response=back,
                                code_verifier=verifier)
    assert token["scope"] == "read" and token["token_type"] == "Bearer"
    site = f"{base}{tenant.site_path}"
    assert session.get(site, timeout=10).status_code == 200
    assert session.get(f"{site}/galleries", timeout=10).status_code == 200

    # Refresh: rotated; the spent one is refused.
    first_refresh = token["refresh_token"]
    refreshed = session.refresh_token(token_url)
    assert refreshed["refresh_token"] != first_refresh
    assert session.get(site, timeout=10).status_code == 200

    # A confidential server app: client credentials with its own role; introspection of
    # its own tokens; revocation.
    server_app = create_oauth_client(client, tenant, "confidential", role="viewer",
                                     scopes=["read"])
    machine = OAuth2Session(server_app.id, server_app.secret, scope="read")
    machine_token = machine.fetch_token(token_url, grant_type="client_credentials")
    assert "refresh_token" not in machine_token
    assert machine.get(f"{base}{tenant.org_path}", timeout=10).status_code == 200
    introspected = machine.introspect_token(f"{base}/oauth/introspect",
                                            token=machine_token["access_token"]).json()
    assert introspected["active"] is True and introspected["client_id"] == server_app.id
    # Another client's token is not its business: inactive to it.
    other = machine.introspect_token(f"{base}/oauth/introspect",
                                     token=refreshed["access_token"]).json()
    assert other == {"active": False}

    r = session.revoke_token(f"{base}/oauth/revoke", token=refreshed["refresh_token"],
                             token_type_hint="refresh_token")
    assert r.status_code == 200
    assert session.get(site, timeout=10).status_code == 401  # the session ended

    # Revoking the server app cuts its own tokens off at once (on the node that revoked
    # it; other nodes hear it through NOTIFY: tests/deploy/test_two_nodes.py).
    r = requests.delete(f"{base}{oauth_clients_path(tenant)}/{server_app.id}", timeout=10,
                        headers=tenant["org_admin"].headers)
    assert r.status_code == 204
    assert machine.get(f"{base}{tenant.org_path}", timeout=10).status_code == 401


def test_errors_are_rfc6749_json_and_never_go_to_an_unregistered_uri(node, client, world):
    tenant: Tenant = world.tenant("OAuthLiveErrors")
    app_client = create_oauth_client(client, tenant, "public", redirect_uris=[CALLBACK])
    evil = "https://evil.example.com/callback"
    r = requests.get(f"{node.url}/oauth/authorize", timeout=10, allow_redirects=False, params={
        "response_type": "code", "client_id": app_client.id, "redirect_uri": evil,
        "state": "s", "code_challenge": "c" * 43, "code_challenge_method": "S256"})
    assert r.status_code == 400 and "Location" not in r.headers
    assert r.json()["error"] == "invalid_request"
    r = requests.post(f"{node.url}/oauth/token", timeout=10, data={
        "grant_type": "authorization_code", "code": "nope", "client_id": app_client.id,
        "redirect_uri": CALLBACK, "code_verifier": "v" * 43})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

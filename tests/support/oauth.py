"""OAuth clients as an org_admin registers them through the API (several modules use it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support import Tenant

CALLBACK = "https://app.example.com/oauth/callback"


@dataclass
class Client:
    """A registered client as its developer holds it."""

    id: str
    secret: str | None
    body: dict[str, Any]


def oauth_clients_path(tenant: Tenant) -> str:
    return f"{tenant.org_path}/oauth-clients"


def create_oauth_client(client: Any, tenant: Tenant, client_type: str = "confidential",
                        **body: Any) -> Client:
    body = {"name": f"app-{client_type}", "client_type": client_type,
            "redirect_uris": [CALLBACK], "scopes": ["read", "write"], **body}
    r = client.post(oauth_clients_path(tenant), json=body, headers=tenant["org_admin"].headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    data = r.get_json()
    return Client(data["id"], data["client_secret"], data)


def pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    import base64
    import hashlib
    import secrets

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize_query(client_id: str, challenge: str, *, redirect_uri: str = CALLBACK,
                    scope: str = "read", state: str | None = "xyz",
                    method: str | None = "S256") -> dict[str, str]:
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
             "scope": scope, "code_challenge": challenge}
    if state is not None:
        query["state"] = state
    if method is not None:
        query["code_challenge_method"] = method
    return query

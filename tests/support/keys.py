"""Keys as a caller creates and holds them, through the API (several test modules use these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support import Tenant


@dataclass
class Key:
    """A created key as a caller holds it."""

    id: str
    secret: str
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


def split_key(token: str) -> tuple[str, str]:
    """`<prefix><32 hex id>` and the secret (which may itself contain `_`)."""
    assert token[35] == "_", token
    return token[:35], token[36:]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_keys_path(tenant: Tenant) -> str:
    return f"{tenant.org_path}/api-keys"


def ingest_keys_path(tenant: Tenant) -> str:
    return f"{tenant.site_path}/ingest-keys"


def create_api_key(client: Any, tenant: Tenant, role: str = "viewer", **body: Any) -> Key:
    body = {"name": f"ci-{role}", "role": role, **body}
    r = client.post(api_keys_path(tenant), json=body, headers=tenant["org_admin"].headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    data = r.get_json()
    return Key(data["id"], data["secret"], data)


def create_ingest_key(client: Any, tenant: Tenant, **body: Any) -> Key:
    body = {"name": "browser", **body}
    r = client.post(ingest_keys_path(tenant), json=body, headers=tenant["site_admin"].headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    data = r.get_json()
    return Key(data["id"], data["secret"], data)

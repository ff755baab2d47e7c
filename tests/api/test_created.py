"""Every 201 names what it created in `Location`, and only 429 and 503 carry `Retry-After`.

Each creating operation of the contract is exercised here (the first test checks the list
is complete against the OpenAPI document); where the new resource has a GET, `Location`
reads it back."""

from __future__ import annotations

from typing import Any

from tests.support import Tenant, World
from tests.support.galleries import new_asset
from tests.support.uploads import start


def creations(client: Any, world: World, tenant: Tenant) -> dict[str, tuple[Any, str, bool]]:
    """operation -> (response, expected Location, whether GET reads it)."""
    admin, org, site = tenant["org_admin"], tenant.org_path, tenant.site_path
    out: dict[str, tuple[Any, str, bool]] = {}

    def post(op: str, path: str, body: dict[str, Any], located: str, readable: bool,
             headers: dict[str, str] | None = None) -> Any:
        r = client.post(path, json=body, headers=admin.headers if headers is None else headers)
        assert r.status_code == 201, (op, r.get_data(as_text=True))
        out[op] = (r, located.format(**r.get_json()), readable)
        return r.get_json()

    post("POST /v1/orgs", "/v1/orgs", {"name": "Made"}, "/v1/orgs/{id}", True)
    post("POST /v1/orgs/{org_id}/sites", f"{org}/sites", {"name": "Made"},
         f"{org}/sites/{{id}}", True)
    post("POST /v1/orgs/{org_id}/api-keys", f"{org}/api-keys", {"name": "k", "role": "viewer"},
         f"{org}/api-keys/{{id}}", False)
    post("POST /v1/orgs/{org_id}/sites/{site_id}/ingest-keys", f"{site}/ingest-keys",
         {"name": "k"}, f"{site}/ingest-keys/{{id}}", False)
    post("POST /v1/orgs/{org_id}/oauth-clients", f"{org}/oauth-clients",
         {"name": "App", "client_type": "public",
          "redirect_uris": ["https://app.example.com/callback"]},
         f"{org}/oauth-clients/{{id}}", True)
    r = start(client, tenant, admin)
    assert r.status_code == 201, r.get_data(as_text=True)
    out["POST /v1/orgs/{org_id}/sites/{site_id}/uploads"] = (
        r, f"{site}/assets/{r.get_json()['asset']['id']}", True)
    gallery = post("POST /v1/orgs/{org_id}/sites/{site_id}/galleries", f"{site}/galleries",
                   {"title": "Made"}, f"{site}/galleries/{{id}}", True)
    asset = new_asset(world, tenant.site)
    post("POST /v1/orgs/{org_id}/sites/{site_id}/galleries/{gallery_id}/items",
         f"{site}/galleries/{gallery['id']}/items", {"asset_id": str(asset)},
         f"{site}/galleries/{gallery['id']}/items/{{id}}", False)
    return out


def test_every_201_carries_the_location_of_what_it_created(app, client, world, tenant):
    spec = app.extensions["api"].spec.to_dict()
    creating = {f"{method.upper()} {path}" for path, ops in spec["paths"].items()
                for method, op in ops.items() if isinstance(op, dict) and "201" in op.get(
                    "responses", {})}
    made = creations(client, world, tenant)
    assert set(made) == creating
    for op, (response, location, readable) in made.items():
        assert response.headers.get("Location") == location, op
        assert "Retry-After" not in response.headers, op
        assert spec["paths"][op.split(" ", 1)[1]]["post"]["responses"]["201"]["headers"][
            "Location"], op
        if readable:
            again = client.get(location, headers=tenant["org_admin"].headers)
            assert again.status_code == 200, (op, again.get_data(as_text=True))


def test_a_403_names_the_permission_and_the_kind_of_resource(client, tenant):
    """A viewer sees the site but may not create a gallery on it."""
    r = client.post(f"{tenant.site_path}/galleries", json={"title": "No"},
                    headers=tenant["viewer"].headers)
    assert r.status_code == 403, r.get_data(as_text=True)
    assert r.get_json()["detail"] == "`create_gallery` is not allowed on this site."

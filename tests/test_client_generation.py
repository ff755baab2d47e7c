"""The contract makes good clients: stable readable operation ids, every error documented
as a problem (401 and 429 with their headers), enum values with names, and a client that
`openapi-python-client` generates without a warning and that works against the app served
by gunicorn."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.api.operations import OPERATION_IDS
from tests.support.server import gunicorn

OPERATIONS = ("get", "put", "post", "patch", "delete")
CAMEL = re.compile(r"[a-z]+(?:[A-Z][a-z]+)*")


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, item[method]) for path, item in spec["paths"].items()
            for method in OPERATIONS if method in item]


def resolved(spec: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in response:
        return spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response


@pytest.fixture(scope="module")
def spec(app) -> dict[str, Any]:
    return app.extensions["api"].spec.to_dict()


def test_every_operation_has_a_stable_readable_id_and_a_summary(spec):
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids)) == len(OPERATION_IDS)
    assert all(CAMEL.fullmatch(i) for i in ids), ids
    assert {"listGalleries", "createIngestKey", "ingestEvents"} <= set(ids)
    assert all(op.get("summary") for _, _, op in operations(spec))


# The one documented exception to problem+json: the OAuth endpoints answer their own
# errors as RFC 6749 says (`{"error": ..., "error_description": ...}`); what the pipeline
# refuses before them (415, 429, ...) is still a problem.
RFC6749_ERRORS = {("/oauth/authorize", "get"), ("/oauth/authorize", "post"),
                  ("/oauth/token", "post"), ("/oauth/revoke", "post"),
                  ("/oauth/introspect", "post")}


def test_every_error_is_documented_as_a_problem(spec):
    marked = {(path, method) for path, method, op in operations(spec)
              if op.get("x-error-format") == "RFC 6749"}
    assert marked == RFC6749_ERRORS
    for path, method, op in operations(spec):
        responses = op["responses"]
        for status, response in responses.items():
            if status == "default" or int(status) >= 400:
                content = resolved(spec, response).get("content", {})
                if (path, method) in RFC6749_ERRORS and status in ("400", "401"):
                    schema = content["application/json"]["schema"]
                    assert schema["required"] == ["error"], (path, method, status)
                    continue
                assert "application/problem+json" in content, (path, method, status)
        if op.get("security") != []:
            unauthorized = resolved(spec, responses["401"])
            assert "WWW-Authenticate" in unauthorized["headers"], (path, method)
        for status in ("429", "503"):
            if status in responses:
                assert "Retry-After" in resolved(spec, responses[status])["headers"], (
                    path, method, status)


def test_enum_values_have_names(spec):
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "string" and "enum" in node:
                names = node.get("x-enum-varnames")
                assert names and len(names) == len(node["enum"]), node
                assert all(n.isidentifier() for n in names), names
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)


@pytest.mark.slow  # generates a client (~5 s) and starts gunicorn
def test_a_generated_client_works_against_the_running_app(app, tmp_path):
    document = tmp_path / "openapi.yaml"
    document.write_text(yaml.safe_dump(app.extensions["api"].spec.to_dict()))
    # The events endpoint also reads `text/plain` (browsers' beacons), which is the same
    # JSON: a generator is told so, as a client team would (the README says it too).
    config = tmp_path / "config.yaml"
    config.write_text("content_type_overrides:\n  text/plain: application/json\n")
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", str(document),
         "--meta", "none", "--output-path", str(tmp_path / "tenant_api_client"),
         "--config", str(config)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output and "warning" not in output, output

    sys.path.insert(0, str(tmp_path))
    try:
        client_flow(app, tmp_path)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("tenant_api_client")]:
            del sys.modules[name]


def client_flow(app: Any, tmp_path: Path) -> None:
    """Register, sign in, create an organization, a site and an ingest key, send an
    event with the key, and read it back: every call through the generated functions."""
    gen = importlib.import_module("tenant_api_client")
    api = importlib.import_module("tenant_api_client.api")
    models = importlib.import_module("tenant_api_client.models")
    for module in ("auth.register", "auth.login", "orgs.create_organization",
                   "orgs.list_organizations", "sites.create_site", "keys.create_ingest_key",
                   "events.ingest_events", "events.list_events"):
        importlib.import_module(f"tenant_api_client.api.{module}")
    with gunicorn(app, tmp_path / "gunicorn.log") as base:
        public = gen.Client(base_url=base, raise_on_unexpected_status=True)
        email, password = f"gen-{uuid.uuid4().hex[:8]}@example.com", "a long enough password"
        created = api.auth.register.sync_detailed(
            client=public, body=models.Register(email=email, password=password))
        assert created.status_code == 202  # the same answer whether the address is new
        tokens = api.auth.login.sync(client=public,
                                     body=models.Login(email=email, password=password))
        me = gen.AuthenticatedClient(base_url=base, token=tokens.access_token,
                                     raise_on_unexpected_status=True)
        org = api.orgs.create_organization.sync(client=me, body=models.OrgCreate(name="Gen"))
        listed = api.orgs.list_organizations.sync(
            client=me, sort=models.ListOrganizationsSort.CREATED_AT_DESC)
        assert [o.id for o in listed.items] == [org.id]
        site = api.sites.create_site.sync(org.id, client=me, body=models.SiteCreate(
            name="Shop", domain="shop.example.com"))
        key = api.keys.create_ingest_key.sync(org.id, site.id, client=me,
                                              body=models.IngestKeyCreate(name="web"))
        ingest = gen.AuthenticatedClient(base_url=base, token=key.secret,
                                         raise_on_unexpected_status=True)
        event_id = uuid.uuid4()
        batch = models.EventBatch.from_dict({"events": [{
            "event_id": str(event_id), "name": "page.view", "distinct_id": "visitor-1",
            "timestamp": datetime.now(UTC).isoformat()}]})
        result = api.events.ingest_events.sync(client=ingest, body=batch)
        assert result.accepted == 1, json.dumps(result.to_dict())
        events = api.events.list_events.sync(org.id, site.id, client=me)
        assert [e.event_id for e in events.items] == [event_id]


def test_every_property_has_an_example_valid_for_it(spec):
    from openapi_schema_validator import OAS30Validator

    schemas = spec["components"]["schemas"]
    for name, schema in schemas.items():
        if name == "PaginationMetadata":  # flask-smorest's own, used by no operation
            continue
        for prop_name, prop in schema.get("properties", {}).items():
            if "$ref" in prop or "$ref" in prop.get("items", {}):
                continue
            assert "example" in prop, (name, prop_name)
            OAS30Validator(prop).validate(prop["example"])


def test_a_body_the_contract_requires_cannot_be_left_out(client, tenant):
    """Every request body is `required` in the document: none at all is a 400, while an
    empty object (nothing to change) is a valid update."""
    from tests.support.galleries import new_asset
    from tests.support.http import assert_problem

    asset = f"{tenant.site_path}/assets/{new_asset(tenant_world(client), tenant.site)}"
    admin = tenant["org_admin"].headers
    body = assert_problem(client.patch(asset, headers=admin), 400, errors=["_schema"])
    assert body["errors"] == {"_schema": ["A JSON body is required."]}
    assert client.patch(asset, json={}, headers=admin).status_code == 200


def tenant_world(client: Any) -> Any:
    from tests.support import World

    return World(client.application)

"""Nothing undocumented: the app's routes and the OpenAPI paths are the same set."""

import re

# Served, but not API operations: the document itself, its UI and the UI's files, and the
# Prometheus scrape (text, its own token: app/metrics.py).
NOT_OPERATIONS = {"/openapi.json", "/docs", "/docs/assets/{filename}", "/static/{filename}",
                  "/metrics"}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def test_every_route_is_documented_and_every_documented_path_exists(app):
    served = {
        (_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - IGNORED_METHODS
        if _openapi_path(rule.rule) not in NOT_OPERATIONS
    }
    spec = app.extensions["api"].spec.to_dict()
    documented = {
        (path, method)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert documented - served == set(), "documented operations that no route serves"


def test_every_operation_declares_its_security(app):
    spec = app.extensions["api"].spec.to_dict()
    assert spec["security"] == [{"bearerAuth": []}]
    batch = spec["paths"]["/v1/events/batch"]["post"]
    assert batch["x-credentials"] == ["access token", "API key", "ingest key"]
    assert "Credentials: access token, API key, ingest key." in batch["description"]
    assert spec["paths"]["/v1/orgs"]["get"]["x-credentials"] == ["access token", "API key"]
    public = {
        (path, method)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and operation.get("security") == []
    }
    assert public == {
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/v1/auth/register", "post"),
        ("/v1/auth/verify", "post"),
        ("/v1/auth/password/reset", "post"),
        ("/v1/auth/password/reset/complete", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/auth/refresh", "post"),
        # OAuth (RFC 6749): clients authenticate in the request itself, or not at all.
        ("/.well-known/oauth-authorization-server", "get"),
        ("/oauth/authorize", "get"),
        ("/oauth/authorize", "post"),
        ("/oauth/token", "post"),
        ("/oauth/revoke", "post"),
        ("/oauth/introspect", "post"),
    }


OPERATIONS = ("get", "put", "post", "patch", "delete")


def _operations(spec):
    for path, item in spec["paths"].items():
        for method in OPERATIONS:
            if method in item:
                yield path, method, item, item[method]


def _response(spec, response):
    if "$ref" in response:
        return spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response


def test_invalid_input_is_documented_as_400_and_422_only_for_idempotency_keys(app):
    """The codes are fixed (400 validation, 401, 403, 404, ...): every operation that takes
    input (a body, query or header parameters, ids in its path) documents a 400 problem;
    a 422 is documented only where `Idempotency-Key` is accepted (reused with another
    payload), and there always."""
    spec = app.extensions["api"].spec.to_dict()
    checked = 0
    for path, method, item, operation in _operations(spec):
        where = f"{method.upper()} {path}"
        parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
        located = {(p["in"], p["name"]) for p in parameters if "in" in p}
        responses = operation["responses"]

        idempotent = ("header", "Idempotency-Key") in located
        assert ("422" in responses) == idempotent, where
        if idempotent:
            assert "Idempotency-Key" in _response(spec, responses["422"])["description"], where

        takes_input = "requestBody" in operation or any(
            location in ("path", "query", "header") for location, _ in located
        )
        assert ("400" in responses) == takes_input, where
        if takes_input and operation.get("x-error-format") == "RFC 6749":
            # The one exception (tests/test_client_generation.py): RFC 6749's error JSON.
            assert "application/json" in _response(spec, responses["400"])["content"], where
            checked += 1
        elif takes_input:
            bad_request = _response(spec, responses["400"])
            assert bad_request["content"] == {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}}}, where
            assert "`errors`" in bad_request["description"], where
            checked += 1
    assert checked >= 54  # all but the health checks, the JWKS and `GET /v1/me`


def test_path_ids_are_documented_as_uuids(app):
    spec = app.extensions["api"].spec.to_dict()
    ids = [p for item in spec["paths"].values() for p in item.get("parameters", [])
           if p.get("in") == "path" and p["name"].endswith("_id")]
    assert len(ids) > 50
    assert all(p["schema"] == {"type": "string", "format": "uuid"} for p in ids), ids

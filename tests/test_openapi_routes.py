"""Nothing undocumented: the app's routes and the OpenAPI paths are the same set."""

import re

import pytest

pytestmark = pytest.mark.portable

# Served, but not API operations: the document itself, its UI and the UI's files.
NOT_OPERATIONS = {"/openapi.json", "/docs", "/docs/assets/{filename}", "/static/{filename}"}
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
        ("/v1/auth/login", "post"),
        ("/v1/auth/refresh", "post"),
    }

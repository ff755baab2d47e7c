"""flask-smorest setup: blueprints and the OpenAPI document.

What each operation needs from the request pipeline (credentials, limits, CORS) is
declared with `@blp.needs(...)` (app/needs.py); the document's security requirements,
429 answers and `Idempotency-Key` parameters are written from the same declarations.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
import orjson
from flask import Flask, Response, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api as SmorestApi
from flask_smorest.exceptions import NotModified
from flask_smorest.spec.plugins import FlaskPlugin
from marshmallow import Schema, ValidationError
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException
from werkzeug.http import quote_etag

from app import errors, needs
from app.api.examples import add_examples
from schemas.common import ProblemSchema

F = TypeVar("F", bound=Callable[..., Any])



class ArgumentsParser(FlaskParser):
    """How every blueprint reads its arguments (`@blp.arguments`)."""

    # Invalid input is a 400 (webargs' default is 422); flask-smorest documents this status
    # on every operation with arguments.
    DEFAULT_VALIDATION_STATUS = 400
    # webargs ignores unknown query parameters (EXCLUDE for that location) whatever the
    # schema says; let the schemas' own `unknown` (RAISE) decide, as for bodies: a
    # misspelt filter is a 400, not a silently unfiltered list.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None,
    }

    def _get_schema(self, argmap: Any, req: Any) -> Schema:
        """One instance per schema class, not one per request: marshmallow builds an
        instance by deep-copying its declared fields (a tenth of a millisecond for a list's
        arguments), and loading keeps no state on it."""
        if isinstance(argmap, type) and issubclass(argmap, Schema):
            return _instance_of(argmap)
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req: Any) -> Any:
        """Bodies are read with orjson, which refuses what is not valid Unicode: the standard
        library accepts a lone surrogate escape (`"\\ud83d"`) that no database can store
        (a 500 at the INSERT), and NaN or Infinity. Either is a 400 (not valid JSON)."""
        if not is_json_request(req):
            if not req.get_data(cache=True):
                # Every body the contract declares is required: none at all is a 400 (a PATCH
                # with nothing to change sends `{}`), not an empty object.
                raise ValidationError({"_schema": ["A JSON body is required."]})
            return core.missing
        return orjson.loads(req.get_data(cache=True).decode())  # UnicodeDecodeError: a 400 too


class JSONProvider(DefaultJSONProvider):
    """Response bodies (compact JSON) written by orjson, in C, as Flask's provider writes
    them otherwise: keys sorted, and dates, datetimes and dataclasses handed to Flask's own
    conversion (an HTTP date, a dict); the bytes only lose the `\\u` escapes of non-ASCII
    characters. A page of 20 galleries is written in a tenth of the time. Other dumps
    (indented in debug mode, other options) stay the standard library's."""

    _OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                | orjson.OPT_PASSTHROUGH_DATACLASS)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs != _COMPACT:
            return super().dumps(obj, **kwargs)
        return orjson.dumps(obj, default=self.default, option=self._OPTIONS).decode()


_COMPACT = {"separators": (",", ":")}  # what `response` asks for, out of debug mode


@functools.cache
def _instance_of(schema: type[Schema]) -> Schema:
    return schema()


# If-Match holds entity tags (RFC 9110 8.8.3) or `*`: visible ASCII, never a line break.
ETAGS = r"^[\x21-\x7e]+(?:[ \t]*,[ \t]*[\x21-\x7e]+)*$"
_ETAGS = re.compile(ETAGS)


class Blueprint(flask_smorest.Blueprint):
    """Every blueprint of the API: flask-smorest's, reading arguments with ArgumentsParser,
    answering 304 with the ETag it matched (RFC 9110 15.4.5 requires it; flask-smorest's
    NotModified carries none), and declaring what a view needs from the pipeline."""

    ARGUMENTS_PARSER = ArgumentsParser()

    @staticmethod
    def needs(**declared: Any) -> Callable[[F], F]:
        """What the view needs from the request pipeline: see app/needs.py."""
        return needs.needs(**declared)

    def _check_precondition(self) -> None:
        """Before the view: a malformed `If-Match` is a 400 naming it (werkzeug reads any
        text as tags, which made it a 412, a mismatch, or a 428 when it read none)."""
        given = request.headers.get("If-Match")
        if given is not None and not _ETAGS.fullmatch(given):
            raise errors.BadRequest("If-Match must hold entity tags or `*`.",
                                    errors={"If-Match": ["Entity tags or `*`, comma-separated."]})
        super()._check_precondition()

    def _check_not_modified(self, etag: str) -> None:
        try:
            super()._check_not_modified(etag)
        except NotModified as exc:
            exc.data = {"headers": {"ETag": quote_etag(etag)}}  # see errors.handle_http_exception
            raise


class Api(SmorestApi):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return errors.handle_http_exception(error)

    def _register_responses(self) -> None:
        """flask-smorest documents its error responses (`default`, 400, 412, ...) with
        DEFAULT_RESPONSE_CONTENT_TYPE; they are served as application/problem+json."""
        self.DEFAULT_RESPONSE_CONTENT_TYPE = errors.PROBLEM_JSON
        try:
            super()._register_responses()
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE  # success responses stay application/json
        lazy = self.spec.components.responses_lazy  # apispec keeps them here until used
        lazy["BAD_REQUEST"]["description"] = (
            "Invalid input: `errors` names each offending field (of the body, the query, the "
            "path or a header) with its messages."
        )
        lazy["UNPROCESSABLE_ENTITY"]["description"] = (
            "This `Idempotency-Key` was already used with another payload."
        )


def _swagger_asset(filename: str) -> Response:
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(swagger_ui_path, filename, max_age=86400)


BEARER = {
    "type": "http", "scheme": "bearer",
    "description": "`Authorization: Bearer <credential>`: a person's access token (a JWT from "
                   "`POST /v1/auth/login`), an API key's secret (`sk_...`, a machine with a "
                   "role) or an ingest key's secret (`ik_...`, events of one site only). Each "
                   "operation lists those it takes in `x-credentials`.",
}
def _oauth2(app: Flask) -> dict[str, Any]:
    """The OAuth 2.1 server's flows (app/api/oauth.py), for `/docs`'s Authorize button
    (with PKCE: app/templates/swagger_ui.html) and generated clients. Its tokens are sent
    as `bearerAuth` like any access token."""
    from app.models.oauth import SCOPES

    base = app.extensions["settings"].public_base_url.rstrip("/")
    scopes = {"read": "Read what you may read.", "write": "Change content (uploads, assets, "
              "galleries).", "admin": "Everything you may do.", "events:write": "Send events."}
    assert set(scopes) == set(SCOPES)
    return {
        "type": "oauth2",
        "description": "OAuth 2.1 (`/.well-known/oauth-authorization-server`): authorization "
                       "code with PKCE (S256) for apps acting for a person, client "
                       "credentials for confidential clients holding a role. Scopes are "
                       "ceilings on what the person (or the client's role) may do.",
        "flows": {
            "authorizationCode": {"authorizationUrl": f"{base}/oauth/authorize",
                                  "tokenUrl": f"{base}/oauth/token",
                                  "refreshUrl": f"{base}/oauth/token", "scopes": scopes},
            "clientCredentials": {"tokenUrl": f"{base}/oauth/token", "scopes": scopes},
        },
    }


ERRORS = {
    "UNAUTHORIZED": ("Missing or invalid credentials.",
                     {"WWW-Authenticate": {"schema": {"type": "string"},
                                           "description": "`Bearer realm=\"api\"`"}}),
    "FORBIDDEN": ("The caller may see the resource but not do this to it.", {}),
    "NOT_FOUND": ("No such resource, or one the caller may not see.", {}),
}
PROBLEM = {errors.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _document_errors(api: Api) -> None:
    """Every error answer's body is a problem: the responses declared with a description
    only get the schema; operations on an id may answer 404 (and 403 when they change
    something)."""
    components = api.spec.components
    for name, (description, headers) in ERRORS.items():
        # flask-smorest's, one per HTTP status: registered once referenced, lazy until then.
        registered = components.responses.get(name) or components.responses_lazy[name]
        registered.update(description=description, content=copy.deepcopy(PROBLEM))
        if headers:
            registered["headers"] = headers
    for operations in api.spec._paths.values():
        in_path = any(p.get("in") == "path" for p in operations.get("parameters", []))
        for method in OPERATIONS:
            operation = operations.get(method)
            if operation is None:
                continue
            responses = operation["responses"]
            for status, response in responses.items():
                if (status != "default" and int(status) >= 400 and "$ref" not in response
                        and "content" not in response):
                    response["content"] = copy.deepcopy(PROBLEM)
            if in_path and "401" in responses:
                responses.setdefault("404", api.spec.components.get_ref("response", "NOT_FOUND"))
                if method != "get":
                    responses.setdefault(
                        "403", api.spec.components.get_ref("response", "FORBIDDEN"))


TOO_MANY = {
    "description": "Too many requests; see `Retry-After`.",
    "headers": {},  # Retry-After: _document_headers
    "content": {errors.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _document_needs(app: Flask, api: Api) -> None:
    """Write each operation's declaration into the document: public ones need no
    credential, limited ones answer 429, and the POSTs that honour `Idempotency-Key`
    take it (app/idempotency.py)."""
    from app.idempotency import DOC_PARAMETER

    paths = api.spec._paths  # apispec keeps registered paths here
    for rule in app.url_map.iter_rules():
        operations = paths.get(FlaskPlugin.flaskpath2openapi(rule.rule))
        if operations is None:
            continue
        for method in sorted(rule.methods or ()):
            operation = operations.get(method.lower())
            if operation is None:
                continue
            declared = needs.of_function(needs.handler(app, rule.endpoint, method))
            spec = declared or needs.DEFAULT
            if spec.public:
                operation["security"] = []
            else:
                # One scheme (every credential is a bearer token in `Authorization`); which
                # kinds the operation takes is said beside it, for readers and generators.
                kinds = [c.value for c in needs.Credential if c in spec.credentials]
                operation["x-credentials"] = kinds
                operation["description"] = (
                    operation.get("description", "") + f"\n\nCredentials: {', '.join(kinds)}."
                ).strip()
                operation["responses"]["401"] = api.spec.components.get_ref(
                    "response", "UNAUTHORIZED")
            if spec.limits:
                operation.setdefault("responses", {})["429"] = copy.deepcopy(TOO_MANY)
            if method == "POST" and spec.idempotent and not spec.public:
                # A malformed key is a 400; one reused with another payload the API's only 422.
                operation.setdefault("parameters", []).append(DOC_PARAMETER)
                operation["responses"]["422"] = api.spec.components.get_ref(
                    "response", "UNPROCESSABLE_ENTITY"
                )
OPERATIONS = ("get", "put", "post", "patch", "delete")


def _document_operation_ids(app: Flask, api: Api) -> None:
    """Every operation gets its `operationId` from app/api/operations.py."""
    from app.api.operations import OPERATION_IDS

    paths = api.spec._paths
    for rule in app.url_map.iter_rules():
        operations = paths.get(FlaskPlugin.flaskpath2openapi(rule.rule))
        for method in OPERATIONS:
            if operations is None or method not in operations:
                continue
            operation_id = OPERATION_IDS.get((rule.endpoint, method))
            if operation_id is None:
                raise RuntimeError(f"no operationId for {rule.endpoint} {method}: "
                                   "add one to app/api/operations.py")
            operations[method]["operationId"] = operation_id


def _document_validation(api: Api) -> None:
    """Every operation that takes input (a body, query or header arguments, ids in its
    path) documents its 400; `@blp.arguments` documents it for bodies and queries only."""
    bad_request = api.spec.components.get_ref("response", "BAD_REQUEST")
    for operations in api.spec._paths.values():
        in_path = any(p.get("in") == "path" for p in operations.get("parameters", []))
        for method in OPERATIONS:
            operation = operations.get(method)
            if operation is None:
                continue
            takes_input = in_path or "requestBody" in operation or any(
                isinstance(p, dict) and p.get("in") in ("query", "header")
                for p in operation.get("parameters", [])
            )
            if takes_input:
                operation["responses"].setdefault("400", bad_request)


LOCATION = {"description": "The URL of the created resource.",
            "schema": {"type": "string", "format": "uri-reference"}}
RETRY_AFTER = {"description": "Seconds to wait.", "schema": {"type": "integer"}}


def _document_headers(api: Api) -> None:
    """A 201 names what it created (`Location`); a 429 or 503 says when to come back
    (`Retry-After`, on those answers only: app/observability.py)."""
    for operations in api.spec._paths.values():
        for method in OPERATIONS:
            responses = operations.get(method, {}).get("responses", {})
            for status, header, doc in (("201", "Location", LOCATION),
                                        ("429", "Retry-After", RETRY_AFTER),
                                        ("503", "Retry-After", RETRY_AFTER)):
                response = responses.get(status)
                if isinstance(response, dict) and "$ref" not in response:
                    response.setdefault("headers", {})[header] = copy.deepcopy(doc)


def _enum_names(schema: dict[str, Any]) -> None:
    """Names a client generator can give enum values (`x-enum-varnames`): `-created_at`
    is CREATED_AT_DESC rather than VALUE_3."""
    values = schema.get("enum")
    if not values or not all(isinstance(v, str) for v in values):
        return
    schema["x-enum-varnames"] = [
        v.lstrip("-").replace(".", "_").replace("-", "_").replace(":", "_").upper()
        + ("_DESC" if v.startswith("-") else "") for v in values
    ]


def _document_for_generators(api: Api) -> None:
    """What generated clients need beyond what marshmallow says: enum value names, and
    query parameters that are optional rather than nullable (a query string cannot carry
    JSON's null: an absent parameter is what `None` means there)."""
    for operations in api.spec._paths.values():
        for method in OPERATIONS:
            body = operations.get(method, {}).get("requestBody", {})
            for media in body.get("content", {}).values() if isinstance(body, dict) else ():
                for prop in media.get("schema", {}).get("properties", {}).values():
                    _enum_names(prop)
            for parameter in operations.get(method, {}).get("parameters", []):
                schema = parameter.get("schema") if isinstance(parameter, dict) else None
                if not isinstance(schema, dict):
                    continue
                if parameter.get("in") == "query" and schema.pop("nullable", False):
                    if schema.get("default", 0) is None:
                        del schema["default"]
                    if "enum" in schema:
                        schema["enum"] = [v for v in schema["enum"] if v is not None]
                _enum_names(schema)
    for schema in api.spec.components.schemas.values():
        for prop in schema.get("properties", {}).values():
            if isinstance(prop, dict):
                _enum_names(prop)
                if isinstance(prop.get("items"), dict):
                    _enum_names(prop["items"])
    add_examples(api.spec.components.schemas)
    if_match = api.spec.components.parameters.get("IF_MATCH")
    if if_match is not None:
        if_match["schema"]["pattern"] = ETAGS


def init_app(app: Flask) -> Api:
    from app.api import (
        assets,
        audit,
        auth,
        events,
        galleries,
        invitations,
        keys,
        members,
        oauth,
        oauth_clients,
        ops,
        orgs,
        sites,
    )

    app.json = JSONProvider(app)
    api = Api(
        app,
        spec_kwargs={
            "info": {"description": "Multi-tenant REST API authorized by Oso/Polar policies."},
            "security": [{"bearerAuth": []}],
        },
    )
    api.spec.components.security_scheme("bearerAuth", BEARER)
    api.spec.components.security_scheme("oauth2", _oauth2(app))
    app.extensions["api"] = api
    app.add_url_rule("/docs/assets/<path:filename>", "swagger_ui_assets", _swagger_asset)
    blueprints = (
        ops.blp, auth.blp, auth.wellknown, orgs.blp, sites.blp, members.blp,
        invitations.blp, keys.blp, oauth_clients.blp, oauth.blp, assets.blp, galleries.blp,
        events.blp, audit.blp,
    )
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    _document_needs(app, api)
    _document_errors(api)
    _document_validation(api)
    _document_headers(api)
    _document_operation_ids(app, api)
    _document_for_generators(api)
    return api

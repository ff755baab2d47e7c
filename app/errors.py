"""problem+json (RFC 9457) rendering, and the exceptions services raise.

Every error leaves the app through `problem()`: HTTP exceptions from werkzeug and
flask-smorest (with their validation messages and headers), the app's own `ApiError`s,
unavailable dependencies (503 with `Retry-After`), and anything unexpected, which becomes
an opaque 500 and is logged with its stack.

Invalid input of any kind (body, query, path, header, cursor) is a 400 whose `errors` maps
each field to its messages; a 400 always carries `errors`, and what belongs to no one field
(a body that is not JSON, or not an object) is filed under `_schema`, marshmallow's name
for the input as a whole. 422 is kept for one case: an `Idempotency-Key` reused with
another payload (app/idempotency.py).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, json
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger("app.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://errors.tenant-api.dev/"


class ApiError(Exception):
    """An error a client can act on. `detail` must never carry secrets or internals."""

    status = 400
    title: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        type_: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.type_ = type_

    @classmethod
    def of(cls, status: int, detail: str, **kw: Any) -> ApiError:
        error = cls(detail, **kw)
        error.status = status
        return error


class BadRequest(ApiError):
    """Invalid input: name the offending fields in `errors`."""

    status = 400


class Unauthorized(ApiError):
    status = 401

    def __init__(self, detail: str = "Missing or invalid credentials.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="api"'})
        super().__init__(detail, **kw)


class Forbidden(ApiError):
    status = 403


@dataclass(frozen=True)
class Missing:
    """What a lookup by id did not find: the audit log records the refusal (an id of
    another tenant looks exactly like one that exists nowhere)."""

    resource_type: str
    resource_id: object
    org_id: uuid.UUID | None


class NotFound(ApiError):
    status = 404

    def __init__(
        self, detail: str = "The resource does not exist.", *, missing: Missing | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(detail, **kw)
        self.missing = missing


class Conflict(ApiError):
    status = 409


class Unprocessable(ApiError):
    """Only for an `Idempotency-Key` reused with another payload; invalid input is a 400."""

    status = 422


class Unavailable(ApiError):
    """A dependency (the database, the file storage) cannot serve: retry later."""

    status = 503

    def __init__(self, detail: str = "A dependency is unavailable; retry later.", *,
                 logged: bool = False, **kw: Any):
        kw.setdefault("headers", {"Retry-After": "5"})
        super().__init__(detail, **kw)
        # The outage was logged once already (app/health.py): not one line per request.
        self.logged = logged


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    type_: str | None = None,
) -> Response:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": TYPE_BASE + (type_ or phrase.lower().replace(" ", "-").replace("'", "")),
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase + ".",
        "request_id": g.get("request_id"),
    }
    if status == 400 and not errors:
        errors = {"_schema": [body["detail"]]}  # a 400 always says what was wrong in `errors`
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_detail(exc: HTTPException, errors: dict[str, Any] | None) -> str | None:
    data = getattr(exc, "data", None) or {}
    if "message" in data:
        return str(data["message"])
    if exc.code == 400 and "messages" in data:
        return "The request is invalid; see `errors`." if errors else (
            "The request body is not valid JSON."
        )
    if exc.code == 404:
        return "The resource does not exist."
    return exc.description if exc.code and exc.code < 500 else None


def handle_http_exception(exc: HTTPException) -> Response:
    """flask-smorest's Api calls this for every HTTPException (webargs' 400s included)."""
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    # webargs nests messages by location ({"json": {...}}); clients want field -> messages.
    if isinstance(errors, dict) and len(errors) == 1:
        (location, inner), = errors.items()
        if location in ("json", "query", "headers", "files", "form", "view_args", "path"):
            errors = inner
    if not isinstance(errors, dict):
        errors = None  # webargs' unparseable body ({"json": [...]}): problem() files it
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    return problem(status, _http_detail(exc, errors), errors=errors, headers=headers)


def render(exc: ApiError) -> Response:
    # A dependency failed: operators alert on this line (or on the one its Health wrote).
    if exc.status >= 500 and not (isinstance(exc, Unavailable) and exc.logged):
        log.warning("%s", exc.detail, exc_info=exc)
    return problem(
        exc.status, exc.detail, title=exc.title, errors=exc.errors, headers=exc.headers,
        type_=exc.type_,
    )


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, render)

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError) -> Response:
        """PostgreSQL unreachable or the connection lost, at any step of any request."""
        unavailable = Unavailable("The database cannot be reached; retry later.")
        unavailable.__cause__ = exc
        return render(unavailable)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return handle_http_exception(exc)
        log.exception("unhandled error", exc_info=exc)
        return handle_http_exception(InternalServerError())

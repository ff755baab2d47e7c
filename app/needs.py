"""What a view needs from the request pipeline (app/pipeline.py), declared next to it:
`@blp.needs(...)`.

Undeclared, a view takes an access token or an API key, no rate limit, and honours
`Idempotency-Key` on POST: secure by default, so forgetting the declaration cannot open a
route. The pipeline looks the declaration up per request (`of`); the OpenAPI document and
`docs/endpoints.md` read the same declarations.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Request
from werkzeug.exceptions import HTTPException, MethodNotAllowed


class Credential(enum.Enum):
    ACCESS_TOKEN = "access token"  # noqa: S105 - a name. A person's JWT
    API_KEY = "API key"  # `sk_`: a machine with a role
    INGEST_KEY = "ingest key"  # `ik_`: a browser that may only send events


PEOPLE_AND_MACHINES = frozenset({Credential.ACCESS_TOKEN, Credential.API_KEY})


@dataclass(frozen=True)
class Limit:
    """A rate limit: the rate is the Settings field `setting`, counted per client address
    (`per="ip"`) or per account (`per="account"`: the email a body names, else the actor)
    in the counter `name`. Without the counters' storage a limit fails closed (503), unless
    `fails_open` (README, Operating it): where it only spares the server work, the request
    presenting a random token no one can guess (refresh, verification, reset)."""

    setting: str
    per: str
    name: str
    fails_open: bool = False


def per_ip(name: str, *, fails_open: bool = False) -> Limit:
    return Limit("ratelimit_per_ip", "ip", name, fails_open)


def per_account(name: str) -> Limit:
    return Limit("ratelimit_per_account", "account", name)


def per_client(name: str) -> Limit:
    """Per OAuth client: the `client_id` its HTTP Basic credentials or form name."""
    return Limit("ratelimit_per_client", "client", name)


def per_ip_mail(name: str) -> Limit:
    """Requests that send mail: the tighter `ratelimit_mail`, per client address."""
    return Limit("ratelimit_mail", "ip", name)


def per_account_mail(name: str) -> Limit:
    return Limit("ratelimit_mail", "account", name)


@dataclass(frozen=True)
class Needs:
    credentials: frozenset[Credential] = PEOPLE_AND_MACHINES  # empty: public
    limits: tuple[Limit, ...] = ()
    # Browsers on other origins call it: CORS headers on every answer, preflight served.
    cors: bool = False
    idempotent: bool = True  # POST honours Idempotency-Key
    # Browsers' beacons reach it: `sendBeacon` sets no header, so the ingest key may come in
    # the body's `key` field, and a `text/plain` body (CORS-safelisted) is read as JSON.
    beacon: bool = False
    # The OAuth endpoints (RFC 6749): the body is `application/x-www-form-urlencoded`.
    forms: bool = False
    # The policy questions the view asks, as docs/endpoints.md lists them ("ACTION Type"):
    # `checks` of one object (`authorize`), `lists` the filters of rows it returns
    # (`authorized`, `condition`). tests/test_endpoint_reference.py holds them to the code.
    checks: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        return not self.credentials


DEFAULT = Needs()
PUBLIC = Needs(credentials=frozenset(), idempotent=False)
FORMS_PUBLIC = Needs(credentials=frozenset(), idempotent=False, forms=True)
_declared: dict[Callable[..., Any], Needs] = {}


def declare(func: Callable[..., Any], needs: Needs) -> None:
    _declared[func] = needs


def of_function(func: Any) -> Needs | None:
    """The declaration of `func` or of a function it wraps (decorators use functools.wraps)."""
    while func is not None:
        if func in _declared:
            return _declared[func]
        func = getattr(func, "__wrapped__", None)
    return None


def handler(app: Flask, endpoint: str | None, method: str) -> Any:
    """The function that serves `method` on `endpoint`: a MethodView's method, or the view."""
    view = app.view_functions.get(endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    method = method.lower()
    return getattr(view_class, "get" if method == "head" else method, None)


# Endpoints that are not views of ours: the OpenAPI document and its UI. Public.
# `/metrics` checks its own token (app/metrics.py): no API credential is one.
FOREIGN_PUBLIC = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui",
                  "swagger_ui_assets", "metrics"}


def of(app: Flask, request: Request) -> Needs:
    """What the view serving `request` declared; public for no view at all (404, 405, an
    automatic OPTIONS) and for the document endpoints. A 405 on a route whose views read
    forms reads them too (its body's type must not turn the 405 into a 415)."""
    if request.endpoint is None:
        return _unserved(app, request)
    if request.endpoint in FOREIGN_PUBLIC:
        return PUBLIC
    func = handler(app, request.endpoint, request.method)
    if func is None:  # e.g. OPTIONS, answered by Flask itself
        cors = of_function(handler(app, request.endpoint, "POST"))
        return Needs(credentials=frozenset(), cors=bool(cors and cors.cors), idempotent=False)
    return of_function(func) or DEFAULT


def _unserved(app: Flask, request: Request) -> Needs:
    exc = request.routing_exception
    if not isinstance(exc, MethodNotAllowed):
        return PUBLIC
    for method in sorted(exc.valid_methods or ()):
        try:
            endpoint, _ = app.url_map.bind_to_environ(request.environ).match(method=method)
        except HTTPException:
            continue
        declared = of_function(handler(app, str(endpoint), method))
        if declared is not None and declared.forms:
            return FORMS_PUBLIC
    return PUBLIC


def needs(**declared: Any) -> Callable[[Any], Any]:
    """Declare what a view needs (see `Needs`); `public=True` takes no credential."""
    if declared.pop("public", False):
        declared.setdefault("credentials", frozenset())
        declared.setdefault("idempotent", False)
    spec = Needs(**declared)

    def mark(func: Any) -> Any:
        declare(func, spec)
        return func

    return mark


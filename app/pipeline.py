"""The request pipeline: every step a request goes through, in this order.

    before the view
      1. request id        a well-formed `X-Request-ID` is kept, else one is made; a URI
                           too long is a 414 (app/uri.py), a path whose ids are malformed
                           a 400 (app/api/paths.py)
      2. authenticate      the credential the view accepts (`needs.credentials`), else 401;
                           a beacon's ingest key may be in its body (`needs.beacon`)
      3. tenant scope      the path's organization, when the policy lets the actor
                           `access` it (else 404, audited): row-level security's scope
      4. media type        a request body is JSON (else 415); beacons may say text/plain
      5. limits            the view's declared rate limits (else 429)
      6. idempotency       an `Idempotency-Key` is claimed, or its first answer replayed
    the view               parses, authorizes, calls a service, responds
    after the view
      7. commit            a success commits the unit of work once, with the key's record,
                           then wakes the mail sender if it wrote mail; anything else
                           rolls it back and releases the key
      8. denial audit      the refusals of the request, written apart: they survive 7
      9. response headers  `X-Request-ID`, CORS where declared, one access log line

What a view needs (public, which credentials, its limits, CORS) is declared next to it
with `@blp.needs(...)` (app/needs.py). Flask runs `before` ahead of the view,
`after` once a response exists (an error's too) and `teardown` at the very end, which
closes the unit of work whatever happened. No other module of the app registers request
hooks: this list is the whole story.

Per request, on `flask.g`: `request_id`, `needs`, `actor` (None when public), `unit` (the
unit of work), `denials` (audit rows to write), `claim` (the Idempotency-Key held),
`batch_body` (an events batch's decoded JSON: `ingest.Body`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import NotFound

from app import errors, idempotency, mail, metrics, observability, ratelimit, uri
from app import needs as declared
from app.api import paths
from app.auth.current import authenticate
from app.authz import engine as authz_engine
from app.db import UnitOfWork, current_unit
from app.models import Organization
from app.models.resource import polar_name
from app.services import audit, ingest

if TYPE_CHECKING:  # annotations only: nothing here can test an actor's class
    from app.authz.actors import Principal

BODY_METHODS = {"POST", "PUT", "PATCH"}


# -- before the view -------------------------------------------------------------------------


def assign_request_id() -> None:
    g.request_id = observability.request_id_of(request)
    g.needs = declared.of(current_app, request)
    g.actor = None
    if uri.target_bytes(request.environ) > uri.MAX_TARGET_BYTES:
        raise errors.ApiError.of(
            414, f"The request URI is longer than {uri.MAX_TARGET_BYTES} bytes."
        )
    if isinstance(request.routing_exception, NotFound):  # no route: malformed ids?
        malformed = paths.malformed(current_app, request)
        if malformed:
            raise errors.BadRequest("A path parameter is invalid.", errors=malformed)


def authenticate_actor() -> None:
    if not g.needs.public:
        body_key = beacon_key() if g.needs.beacon else None
        g.actor = authenticate(g.needs.credentials, body_key=body_key)


def beacon_key() -> str | None:
    """The ingest key a beacon sends in its body's `key` field (it can set no header). The
    body is read only when its type is one the route takes; a key in the URL is refused,
    since access logs and proxies keep URLs."""
    if "key" in request.args:
        raise errors.BadRequest(
            "Keys do not belong in URLs: send it in the body's `key` field or in "
            "`Authorization`.", errors={"key": ["Not accepted in the query string."]},
        )
    if request.method not in BODY_METHODS or not takes_media_type(request.mimetype):
        return None
    key = batch_body().key
    if key is not None and not isinstance(key, str):
        raise errors.BadRequest("`key` is a string.", errors={"key": ["Not a valid string."]})
    return key


def scope_tenant() -> None:
    """Row-level security's scope: the organization in the path when the policy lets the
    actor `access` it; a key's own organization on routes without one; the signed-in
    person (who may read its organizations). An organization the actor may not access is
    answered 404 at once (row-level security would hide all of it anyway), and the probe
    is audited (rate limited per actor: probing ids must not flood the log)."""
    actor: Principal | None = g.actor
    if actor is None:
        return
    path_org = (request.view_args or {}).get("org_id")
    org_id = actor.home_org_id() if path_org is None else path_org
    if path_org is not None:
        policy = authz_engine()
        org = Organization(id=path_org)
        if not policy.is_allowed(actor, "access", org):
            org_id = None
            policy.deny(actor, "access", org, probe=True)
            if policy.enforce:  # off only in the test proving row-level security alone
                raise errors.NotFound()
    current_unit().scope(org_id=org_id, user_id=actor.person_id)


def batch_body() -> ingest.Body:
    """An events batch's JSON (gunzipped, size-checked), decoded once per request: the
    pipeline reads a beacon's key from it, the view its events."""
    if "batch_body" not in g:
        g.batch_body = ingest.decode_body(  # cached: the Idempotency-Key's fingerprint reads it
            request.get_data(), request.headers.get("Content-Encoding", ""),
            current_app.extensions["settings"].ingest_max_body_bytes,
        )
    return g.batch_body


def check_media_type() -> None:
    if (request.method in BODY_METHODS and request.content_length
            and not takes_media_type(request.mimetype)):
        wanted = ("application/x-www-form-urlencoded" if g.needs.forms
                  else "application/json")
        raise errors.ApiError.of(415, f"Send the body as {wanted}.")


def takes_media_type(mimetype: str) -> bool:
    """JSON; for beacons also `text/plain` (any charset), which browsers send without a
    CORS preflight and `sendBeacon` sends for a string; for the OAuth endpoints (declared
    `forms`) only `application/x-www-form-urlencoded`, as RFC 6749 says."""
    if g.needs.forms:
        return mimetype == "application/x-www-form-urlencoded"
    return (mimetype == "application/json" or mimetype.endswith("+json")
            or (g.needs.beacon and mimetype == "text/plain"))


def apply_limits() -> None:
    ratelimit.check(g.needs.limits)


def claim_idempotency() -> Response | None:
    if g.actor is None or not g.needs.idempotent:
        return None
    return idempotency.claim_or_replay(current_unit(), g.actor)


# -- after the view ----------------------------------------------------------------------------


def commit(response: Response) -> Response:
    unit = current_unit()
    if response.status_code < 400:
        idempotency.record(unit, response)  # with the work: both commit, or neither
        try:
            unit.commit()
        except Exception:
            unit.rollback()
            idempotency.release(unit, None)  # nothing was done: the key may be retried
            raise
        mail.after_commit(unit, current_app.extensions.get("mailer"))
        return response
    unit.rollback()
    idempotency.release(unit, response)
    return response


def write_denials(response: Response) -> Response:
    denials = g.pop("denials", None)
    if denials:
        current_unit().rollback()  # SQLite allows one writer: end the request's first
        with current_unit().apart(org_id=None) as session:
            audit.write(session, denials)
    return response


def finish_response(response: Response) -> Response:
    return observability.finish(response, cors=g.get("needs", declared.DEFAULT).cors)


BEFORE: tuple[Callable[[], Response | None], ...] = (
    assign_request_id, authenticate_actor, scope_tenant, check_media_type, apply_limits,
    claim_idempotency,
)
AFTER: tuple[Callable[[Response], Response], ...] = (commit, write_denials, finish_response)


def before() -> Response | None:
    for step in BEFORE:
        answer = step()
        if answer is not None:
            return answer
    return None


def after(response: Response) -> Response:
    """Each step runs, whatever the one before did: a step that fails (a commit refused
    by the database) turns the answer into that failure's problem, never a lost write."""
    for step in AFTER:
        try:
            response = step(response)
        except Exception as exc:
            response = current_app.make_response(current_app.handle_user_exception(exc))
    return response


def teardown(exc: BaseException | None) -> None:
    unit: UnitOfWork | None = g.pop("unit", None)
    if unit is not None:
        unit.close()


# -- what the audit step writes -----------------------------------------------------------------


def note_denial(
    actor: Principal, action: str, resource: object, visible: bool, probe: bool
) -> None:
    """The policy refused (AuthzEngine.on_denial): write it at step 8."""
    metrics.denied(action, polar_name(type(resource)))
    settings = current_app.extensions["settings"]
    # Without the counters the cap fails open: every denial is audited (a longer log, never a
    # refusal turned into a 503).
    if probe and ratelimit.consume(settings.audit_probe_limit, "audit-probes", str(actor.id), 1,
                                   fails_open=True):
        return  # this actor's probes fill no more of the log this minute
    g.setdefault("denials", []).append(audit.denial(actor, action, resource, g.get("request_id")))


def note_missing(exc: errors.NotFound) -> Response:
    """A lookup by a path id found nothing: a refusal too (another tenant's id looks
    exactly like one that exists nowhere), unless the policy already recorded one."""
    actor: Principal | None = g.get("actor")
    if exc.missing is not None and actor is not None and not g.get("denials"):
        metrics.denied("lookup", exc.missing.resource_type)
        g.setdefault("denials", []).append(audit.refusal(
            actor, exc.missing, request.method, str(request.url_rule), g.get("request_id")
        ))
    return errors.render(exc)


def init_app(app: Flask) -> None:
    app.before_request(before)
    app.after_request(after)
    app.teardown_appcontext(teardown)
    app.register_error_handler(errors.NotFound, note_missing)


"""The OAuth 2.1 endpoints (RFC 6749, 7636, 7009, 7662, 8414) and the small sign-in and
consent page of `/oauth/authorize`.

The protocol is authlib's (app/auth/oauth.py); these views only hand it the request. Their
errors are RFC 6749's JSON (`{"error": ..., "error_description": ...}`), the one documented
exception to problem+json; authorization errors go back to the client's redirect URI only
once that URI is known to be registered. The page signs people in with the accounts
service's `sign_in` (throttling and timing of `POST /v1/auth/login`), in a short-lived
browser session cookie (HttpOnly, SameSite=Lax, Secure in production) with a CSRF token on
both forms, and refuses to be framed.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from flask import Response, current_app, render_template_string, request
from flask.views import MethodView
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app import db
from app.api import Blueprint
from app.api.helpers import settings
from app.auth.oauth import server
from app.auth.throttle import Throttle
from app.errors import Unauthorized
from app.models import Organization
from app.models.oauth import SCOPES
from app.needs import per_client, per_ip
from app.services import identity
from schemas.oauth import REDIRECT_URI_MAX_LENGTH

blp = Blueprint("oauth", __name__, description="OAuth 2.1 authorization server")

COOKIE = "oauth_browser"
BROWSER_SESSION_SECONDS = 600
FRAME_DENIED = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
SCOPE_TEXT = {
    "read": "read what you can read",
    "write": "change what you can change",
    "admin": "administer what you administer (members, keys, clients)",
    "events:write": "send analytics events",
}

# -- the contract: what the OpenAPI document says of these endpoints -------------------------

OAUTH_ERROR = {
    "application/json": {"schema": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string", "example": "invalid_grant"},
                       "error_description": {"type": "string"}},
    }},
}
ERROR_DOC = ("RFC 6749 error JSON (`error`, `error_description`): the one exception to "
             "problem+json.")


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": required, "properties": properties}}}}


TOKEN = {"type": "string", "maxLength": 4096}
VISIBLE_ASCII = r"^[\x21-\x7e]+$"
CLIENT_ID = {"type": "string", "format": "uuid"}
CLIENT_FIELDS = {"client_id": {**CLIENT_ID, "description": "Public clients (and "
                                              "`client_secret_post`) name themselves here."},
                 "client_secret": {"type": "string", "maxLength": 200}}
SCOPE = {"type": "string", "maxLength": 200, "pattern": r"^[a-z: ]*$",
         "description": f"Space-separated, of: {', '.join(SCOPES)}."}


def _param(name: str, schema: dict[str, Any], required: bool = False,
           description: str = "") -> dict[str, Any]:
    return {"in": "query", "name": name, "required": required, "schema": schema,
            "description": description}


AUTHORIZE_PARAMS = [
    _param("response_type", {"type": "string", "enum": ["code"]}, True),
    _param("client_id", CLIENT_ID, True),
    _param("redirect_uri", {"type": "string", "maxLength": REDIRECT_URI_MAX_LENGTH,
                            "pattern": VISIBLE_ASCII}, True,
           "Exactly one of the client's registered redirect URIs."),
    _param("scope", SCOPE),
    _param("state", {"type": "string", "maxLength": 500, "pattern": r"^[\x20-\x7e]+$"}, True,
           "Returned unchanged with the code or the error (RFC 6749: VSCHAR)."),
    _param("code_challenge", {"type": "string", "minLength": 43, "maxLength": 128,
                              "pattern": "^[A-Za-z0-9._~-]+$"}, True,
           "BASE64URL(SHA-256(code_verifier)) (RFC 7636)."),
    _param("code_challenge_method", {"type": "string", "enum": ["S256"]}, True),
]
HTML = {"text/html": {"schema": {"type": "string"}}}


# Marks the operations whose errors are RFC 6749's JSON, not problem+json: the contract
# tests hold exactly these to that other format (tests/test_client_generation.py).
ERROR_FORMAT = {"x-error-format": "RFC 6749"}


def _doc(**responses: Any) -> dict[str, Any]:
    return {**ERROR_FORMAT,
            "responses": {str(k.lstrip("_")): v for k, v in responses.items()}}


# -- the browser session -------------------------------------------------------------------------


@dataclass(frozen=True)
class Browser:
    user_id: uuid.UUID | None
    csrf: str


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings().secret_key, salt="oauth-browser-session")


def _browser() -> Browser:
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            data = _signer().loads(raw, max_age=BROWSER_SESSION_SECONDS)
            return Browser(uuid.UUID(data["u"]) if data.get("u") else None, str(data["c"]))
        except (BadSignature, KeyError, ValueError, TypeError):
            pass
    return Browser(None, secrets.token_urlsafe(32))


def _with_browser(response: Response, browser: Browser) -> Response:
    value = _signer().dumps({"u": str(browser.user_id) if browser.user_id else None,
                             "c": browser.csrf})
    response.set_cookie(COOKIE, value, max_age=BROWSER_SESSION_SECONDS, path="/oauth",
                        httponly=True, samesite="Lax", secure=settings().is_production)
    return response


def _page(template: str, browser: Browser, status: int = 200, **context: Any) -> Response:
    content = render_template_string(template, csrf=browser.csrf, **context)
    body = render_template_string(PAGE, content=content, **context)
    response = Response(body, status=status, headers=FRAME_DENIED, mimetype="text/html")
    return _with_browser(response, browser)


def _csrf_ok(browser: Browser) -> bool:
    sent = request.form.get("csrf_token", "")
    return bool(request.cookies.get(COOKIE)) and hmac.compare_digest(sent, browser.csrf)


# RFC 6749 Appendix A: every authorization parameter is printable ASCII (VSCHAR at most).
_VSCHAR = re.compile(r"[\x20-\x7e]*")
_AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state",
                     "code_challenge", "code_challenge_method")


def _consent_grant() -> Any:
    """authlib's grant for this authorization request. A parameter outside RFC 6749's
    characters is refused first (authlib would echo it into its error description, which
    it then refuses to build: a 500)."""
    for name in _AUTHORIZE_PARAMS:
        if not all(_VSCHAR.fullmatch(value) for value in request.args.getlist(name)):
            raise InvalidRequestError(f"`{name}` holds characters RFC 6749 does not allow.")
    return server().get_consent_grant(end_user=None)


def _oauth_error(error: OAuth2Error) -> Response:
    response: Response = server().handle_error_response(None, error)
    response.headers.update(FRAME_DENIED)
    return response


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
label,input,button{display:block;width:100%;margin:.4rem 0}button{padding:.5rem}
.error{color:#a00}</style></head><body><h1>{{ title }}</h1>{{ content|safe }}</body></html>"""
SIGN_IN = """{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<p>Sign in to continue to <strong>{{ client_name }}</strong>.</p>
<form method="post"><input type="hidden" name="csrf_token" value="{{ csrf }}">
<input type="hidden" name="action" value="sign_in">
<label for="email">Email</label><input id="email" name="email" type="email" required
 autocomplete="username" maxlength="320">
<label for="password">Password</label><input id="password" name="password" type="password"
 required autocomplete="current-password" maxlength="1024">
<button type="submit">Sign in</button></form>"""
CONSENT = """<p><strong>{{ client_name }}</strong> of <strong>{{ org_name }}</strong> asks to
act for you, within what you may do yourself:</p>
<ul>{% for scope, text in scopes %}<li><code>{{ scope }}</code>: {{ text }}</li>{% endfor %}</ul>
<form method="post"><input type="hidden" name="csrf_token" value="{{ csrf }}">
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button></form>"""


# -- the endpoints ----------------------------------------------------------------------------


@blp.route("/oauth/authorize")
class Authorize(MethodView):
    @blp.needs(public=True, forms=True)
    @blp.doc(parameters=AUTHORIZE_PARAMS, **_doc(
        _200={"description": "The sign-in page, or the consent page once signed in.",
              "content": HTML},
        _302={"description": "Back to the client's redirect URI with `code` and `state`, "
                             "or with `error` (RFC 6749 4.1.2.1)."},
        _400={"description": "No registered redirect URI to send the error to. " + ERROR_DOC,
              "content": OAUTH_ERROR},
    ))
    def get(self) -> Response:
        """Authorization code with PKCE (S256): sign in, then approve or deny."""
        try:
            grant = _consent_grant()
        except OAuth2Error as error:
            return _oauth_error(error)
        return self._show(grant, _browser())

    @blp.needs(public=True, forms=True, limits=(per_ip("oauth-sign-in"),))
    @blp.doc(parameters=AUTHORIZE_PARAMS, requestBody=_form({
        "csrf_token": {"type": "string", "maxLength": 100},
        "action": {"type": "string", "enum": ["sign_in", "approve", "deny"]},
        "email": {"type": "string", "maxLength": 320},
        "password": {"type": "string", "maxLength": 1024},
    }, ["csrf_token", "action"]), **_doc(
        _200={"description": "The page again (a failed sign-in).", "content": HTML},
        _302={"description": "Approved or denied: back to the client's redirect URI."},
        _303={"description": "Signed in: on to the consent page."},
        _400={"description": "A missing or wrong CSRF token, or no registered redirect URI "
                             "to send the error to. " + ERROR_DOC, "content": OAUTH_ERROR},
    ))
    def post(self) -> Response:
        """The page's forms: sign in, approve, deny."""
        try:
            grant = _consent_grant()
        except OAuth2Error as error:
            return _oauth_error(error)
        browser = _browser()
        if not _csrf_ok(browser):
            return Response('{"error": "invalid_request", "error_description": '
                                '"Missing or wrong CSRF token."}', status=400,
                                mimetype="application/json", headers=FRAME_DENIED)
        action = request.form.get("action")
        if action == "sign_in":
            return self._sign_in(grant, browser)
        if browser.user_id is None:
            return self._show(grant, browser)
        session = db.session()
        try:
            identity.account(session, browser.user_id)
        except Unauthorized:
            return self._show(grant, Browser(None, browser.csrf))
        user = browser.user_id if action == "approve" else None
        response: Response = server().create_authorization_response(grant=grant,
                                                                     grant_user=user)
        response.headers.update(FRAME_DENIED)
        return response

    def _show(self, grant: Any, browser: Browser, error: str | None = None) -> Response:
        client = grant.client.row
        if browser.user_id is None:
            return _page(SIGN_IN, browser, 200, title="Sign in", client_name=client.name,
                         error=error)
        org = db.session().get(Organization, client.org_id)
        scopes = [(s, SCOPE_TEXT[s]) for s in (grant.request.scope or "").split() if s]
        return _page(CONSENT, browser, title="Allow access?", client_name=client.name,
                     org_name=org.name if org else "", scopes=scopes)

    def _sign_in(self, grant: Any, browser: Browser) -> Response:
        email = request.form.get("email", "").strip().lower()[:320]
        password = request.form.get("password", "")[:1024]
        try:
            user = identity.sign_in(db.session(), email, password, request.remote_addr or "",
                                    Throttle.of_app(current_app.extensions))
        except Unauthorized:
            return self._show(grant, browser, error=identity.INVALID_LOGIN)
        signed_in = Browser(user.id, secrets.token_urlsafe(32))  # a new CSRF token too
        see_consent = Response(status=303, headers={"Location": request.full_path})
        return _with_browser(see_consent, signed_in)


@blp.route("/oauth/token")
class Token(MethodView):
    @blp.needs(public=True, forms=True,
               limits=(per_ip("oauth-token"), per_client("oauth-token")))
    @blp.doc(requestBody=_form({
        "grant_type": {"type": "string",
                       "enum": ["authorization_code", "refresh_token", "client_credentials"]},
        "code": {"type": "string", "maxLength": 200},
        "redirect_uri": {"type": "string", "maxLength": 1000},
        "code_verifier": {"type": "string", "minLength": 43, "maxLength": 128},
        "refresh_token": {"type": "string", "maxLength": 200},
        "scope": SCOPE, **CLIENT_FIELDS,
    }, ["grant_type"]), **_doc(
        _200={"description": "Tokens (RFC 6749 5.1): a JWT access token (RFC 9068), and a "
                             "rotated refresh token for people.", "content": {
                                 "application/json": {"schema": {"type": "object", "properties": {
                                     "access_token": {"type": "string"},
                                     "token_type": {"type": "string"},
                                     "expires_in": {"type": "integer"},
                                     "scope": {"type": "string"},
                                     "refresh_token": {"type": "string"}}}}}},
        _400={"description": ERROR_DOC, "content": OAUTH_ERROR},
        _401={"description": "Client authentication failed. " + ERROR_DOC,
              "content": OAUTH_ERROR},
    ))
    def post(self) -> Response:
        """Authorization code (+ PKCE verifier), refresh token (rotated; reuse revokes the
        session) or client credentials (confidential clients with a role)."""
        response: Response = server().create_token_response()
        return response


@blp.route("/oauth/revoke")
class Revoke(MethodView):
    @blp.needs(public=True, forms=True, limits=(per_ip("oauth-revoke"),))
    @blp.doc(requestBody=_form({
        "token": TOKEN, "token_type_hint": {"type": "string",
                                            "enum": ["access_token", "refresh_token"]},
        **CLIENT_FIELDS,
    }, ["token"]), **_doc(
        _200={"description": "Revoked, or unknown (RFC 7009 2.2)."},
        _400={"description": ERROR_DOC, "content": OAUTH_ERROR},
        _401={"description": "Client authentication failed. " + ERROR_DOC,
              "content": OAUTH_ERROR},
    ))
    def post(self) -> Response:
        """Revoke a token the calling client holds (RFC 7009): a person's access or refresh
        token ends its session with the client."""
        response: Response = server().create_endpoint_response("revocation")
        return response


@blp.route("/oauth/introspect")
class Introspect(MethodView):
    @blp.needs(public=True, forms=True, limits=(per_ip("oauth-introspect"),))
    @blp.doc(requestBody=_form({
        "token": TOKEN, "token_type_hint": {"type": "string",
                                            "enum": ["access_token", "refresh_token"]},
        **CLIENT_FIELDS,
    }, ["token"]), **_doc(
        _200={"description": "RFC 7662 2.2: `active`, and for an active token `scope`, "
                             "`client_id`, `sub`, `exp`, `token_type`, `iss`.",
              "content": {"application/json": {"schema": {"type": "object"}}}},
        _400={"description": ERROR_DOC, "content": OAUTH_ERROR},
        _401={"description": "Client authentication failed. " + ERROR_DOC,
              "content": OAUTH_ERROR},
    ))
    def post(self) -> Response:
        """Introspect a token (RFC 7662): confidential clients, tokens issued to themselves
        only (any other token is `{"active": false}`)."""
        response: Response = server().create_endpoint_response("introspection")
        return response


@blp.route("/.well-known/oauth-authorization-server")
class Metadata(MethodView):
    @blp.needs(public=True)
    @blp.response(200)
    def get(self) -> dict[str, Any]:
        """Authorization server metadata (RFC 8414)."""
        base = settings().public_base_url.rstrip("/")
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "introspection_endpoint": f"{base}/oauth/introspect",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token",
                                      "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic",
                                                           "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic",
                                                              "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }

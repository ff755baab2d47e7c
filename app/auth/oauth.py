"""The OAuth 2.1 authorization server: authlib's (`authlib.integrations.flask_oauth2`),
given this project's clients, codes, sessions and tokens.

- authorization code with PKCE, S256 only (`plain` and a missing challenge are refused),
  `state` required; codes single use, 60 s, bound to client, redirect URI and challenge;
  a second use revokes the session the first opened;
- refresh_token: rotated, reuse revokes the session (app/services/sessions.py);
- client_credentials: confidential clients that hold a role;
- revocation (RFC 7009) and introspection (RFC 7662: confidential clients, tokens issued
  to themselves only).
Tokens are the project's own JWTs (app/auth/tokens.py, RFC 9068 profile). Errors are RFC
6749's JSON, the one exception to problem+json. authlib reads the Flask request: this
module is Flask's side; the work over the database is app/services/oauth.py.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, current_app, g, request

from app import db
from app.auth.secrets import matches
from app.auth.tokens import InvalidToken, TokenService
from app.errors import Unauthorized
from app.models import OAuthClient, OAuthCode
from app.models.oauth import SCOPES
from app.services import oauth, oauth_clients, sessions

log = logging.getLogger("app.auth.oauth")
SECRET_METHODS = ["client_secret_basic", "client_secret_post"]
ANY_METHOD = [*SECRET_METHODS, "none"]


def _tokens() -> TokenService:
    return current_app.extensions["tokens"]


def _audit(name: str, client_id: uuid.UUID | None, org_id: uuid.UUID | None, action: str,
           resource_type: str = "OAuthClient", resource_id: object = None, **data: Any) -> None:
    """Written apart: a refusal must survive the request's rollback."""
    unit = db.current_unit()
    unit.rollback()  # SQLite allows one writer: end the request's transaction first
    with unit.apart(org_id=None) as session:
        session.add(oauth.event(org_id, name, client_id, action, resource_type,
                                resource_id if resource_id is not None else client_id,
                                g.get("request_id"), **data))


class Client(ClientMixin):
    """A live OAuth client as authlib asks about it."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row
        self.id = row.id

    @property
    def confidential(self) -> bool:
        return self.row.secret_hash is not None

    def get_client_id(self) -> str:
        return str(self.row.id)

    def get_default_redirect_uri(self) -> str | None:
        return None  # `redirect_uri` is required: it is compared exactly

    def get_allowed_scope(self, scope: str | None) -> str | None:
        return oauth.allowed_scope(self.row, scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.row.secret_hash is not None and matches(client_secret, self.row.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in SECRET_METHODS if self.confidential else method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            return self.confidential and self.row.role is not None
        return grant_type in ("authorization_code", "refresh_token")


class Code:
    """A stored authorization code as authlib asks about it."""

    def __init__(self, row: OAuthCode) -> None:
        self.row = row

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class S256Only(CodeChallenge):
    """PKCE for every client (OAuth 2.1), S256 only: a missing challenge or method, or
    `plain`, is refused; and `state` is required (the client's CSRF defence)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("state"):
            raise InvalidRequestError("Missing 'state'.")
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code: Code) -> str:
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: Code) -> str:
        return "S256"


def _lifetimes() -> sessions.Lifetimes:
    s = current_app.extensions["settings"]
    return sessions.Lifetimes(idle=timedelta(seconds=s.session_idle_timeout_seconds),
                              absolute=timedelta(seconds=s.session_absolute_lifetime_seconds))


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_METHOD

    def save_authorization_code(self, code: str, req: Any) -> None:
        """Store the code's hash, bound to the client, redirect URI, challenge, scope and
        person (`grant_user`: the person's id)."""
        client: Client = req.client
        oauth.new_code(
            db.session(), client.row, req.user, code, redirect_uri=req.payload.redirect_uri,
            scope=req.scope or "", code_challenge=req.payload.data["code_challenge"],
        )
        db.session().add(oauth.event(client.row.org_id, "oauth.code_issued", client.id,
                                     "authorize", "OAuthClient", client.id,
                                     g.get("request_id"), user_id=str(req.user)))

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        row = oauth.find_code(db.session(), client.row, code)
        if row is None:
            return None
        if row.used_at is not None:  # replayed: revoke what its first use issued
            unit = db.current_unit()
            unit.rollback()
            with unit.apart(org_id=row.org_id) as session:
                replayed = session.get(OAuthCode, row.id)
                if replayed is not None:
                    oauth.revoke_replayed(session, replayed, g.get("request_id"))
            log.warning("authorization code replayed",
                        extra={"fields": {"client_id": str(client.id)}})
            return None
        if row.expires_at <= db.utcnow():
            return None
        return Code(row)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        pass  # spent in authenticate_user, atomically, before anything is issued

    def authenticate_user(self, authorization_code: Code) -> oauth.Grantee | None:
        session = db.session()
        if not oauth.spend_code(session, authorization_code.row):
            raise InvalidGrantError("The code was already used or has expired.")
        try:
            return oauth.open_session(
                session, self.request.client.row, authorization_code.row,
                idle_absolute=_lifetimes().absolute,
                user_agent=request.headers.get("User-Agent", ""), ip=request.remote_addr or "",
            )
        except LookupError:
            return None


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_METHOD
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation

    def authenticate_refresh_token(self, refresh_token: str) -> oauth.RefreshCredential | None:
        found = oauth.find_refresh(db.session(), refresh_token)
        if found is None:
            return None
        credential, spent = found
        if spent:
            self._reused(credential)
            return None
        return credential

    def _reused(self, credential: oauth.RefreshCredential) -> None:
        unit = db.current_unit()
        unit.rollback()
        with unit.apart(org_id=None) as session:
            sessions.revoke_reused(
                session, sessions.RefreshReuse(credential.session_id, credential.user_id),
                g.get("request_id"))

    def authenticate_user(self, credential: oauth.RefreshCredential) -> oauth.Grantee | None:
        try:
            auth_session, next_token = sessions.refresh(
                db.session(), credential.token, _lifetimes(), client_id=credential.client_id)
        except sessions.RefreshReuse:  # spent by a request that raced this one
            self._reused(credential)
            raise InvalidGrantError("The refresh token was already used.") from None
        except Unauthorized:
            raise InvalidGrantError("The session has ended.") from None
        scope = self.request.payload.scope or credential.scope
        return oauth.Grantee(auth_session.user_id, auth_session.id, next_token, scope)

    def revoke_old_credential(self, refresh_token: Any) -> None:
        pass  # spent atomically by sessions.refresh


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS

    def validate_token_request(self) -> None:
        """authlib checks the scope against the server's; a client gets no more than the
        scopes it was registered with (none asked: all of them, see _generate)."""
        super().validate_token_request()
        if self.request.client.get_allowed_scope(self.request.payload.scope) is None:
            raise InvalidScopeError("A scope the client may not ask for.")


@dataclass(frozen=True)
class TokenRef:
    """A token presented for revocation or introspection: whose, which session."""

    client_id: uuid.UUID
    user_id: uuid.UUID | None
    session_id: uuid.UUID | None
    scope: str
    token_type: str
    expires_at: int | None

    def check_client(self, client: Client) -> bool:
        return bool(client.id == self.client_id)

    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= int(db.utcnow().timestamp())

    def is_revoked(self) -> bool:
        if self.session_id is None:  # a client credentials token: live while its client is
            return oauth_clients.live(db.session(), self.client_id) is None
        return oauth.session_live(db.session(), self.session_id) is None


def _find_token(token: str, hint: str | None) -> TokenRef | None:
    if hint != "access_token":
        found = oauth.find_refresh(db.session(), token)
        if found is not None:
            credential, spent = found
            return TokenRef(credential.client_id, credential.user_id,
                            credential.session_id, credential.scope, "refresh_token",
                            0 if spent else None)
    try:
        claims = _tokens().verify_access_token(token)
    except InvalidToken:
        return None
    if claims.client_id is None:
        return None  # a first-party login's token: no client's business
    own = claims.for_client_itself
    return TokenRef(claims.client_id, None if own else claims.user_id,
                    None if own else claims.session_id, claims.scope or "",
                    "access_token", claims.expires_at)


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ANY_METHOD

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRef | None:
        return _find_token(token_string, token_type_hint)

    def revoke_token(self, token: TokenRef, req: Any) -> None:
        """A person's token (access or refresh) ends its session with the client. A client
        credentials token stays valid until it expires (short-lived) or its client is
        revoked: it has no session to end."""
        if token.session_id is not None:
            oauth.revoke_session(db.session(), token.session_id, req.client.row)
        _audit_event("oauth.token_revoked", req.client, token.token_type)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = SECRET_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRef | None:
        return _find_token(token_string, token_type_hint)

    def check_permission(self, token: TokenRef, client: Client, req: Any) -> bool:
        return token.check_client(client)  # only tokens issued to the asking client

    def introspect_token(self, token: TokenRef) -> dict[str, Any]:
        settings = current_app.extensions["settings"]
        payload: dict[str, Any] = {
            "active": True, "client_id": str(token.client_id), "scope": token.scope,
            "token_type": token.token_type,
            "iss": settings.jwt_issuer,
            "sub": str(token.user_id if token.user_id is not None else token.client_id),
        }
        if token.expires_at:
            payload["exp"] = token.expires_at
        return payload


def _audit_event(name: str, client: Client, token_type: str) -> None:
    db.session().add(oauth.event(client.row.org_id, name, client.id, "revoke", "OAuthClient",
                                 client.id, g.get("request_id"), token_type=token_type))


def _named_client() -> uuid.UUID | None:
    """The client id a request names (HTTP Basic, else its form or query), if well-formed."""
    auth = request.authorization
    named = auth.username if auth is not None and auth.username else request.values.get(
        "client_id")
    try:
        return uuid.UUID(named) if named else None
    except ValueError:
        return None


class Server(AuthorizationServer):
    def query_client(self, client_id: str) -> Client | None:
        try:
            key = uuid.UUID(client_id)
        except (ValueError, TypeError, AttributeError):
            return None
        row = oauth_clients.live(db.session(), key)
        if row is None:
            return None
        # The request now works in the client's organization (codes, row-level security).
        db.current_unit().enter(row.org_id)
        return Client(row)

    def save_token(self, token: dict[str, Any], req: Any) -> None:
        """Audit the issuance (never the token)."""
        user = req.user
        data = {"grant_type": req.payload.grant_type, "scope": token.get("scope", "")}
        if user is not None:
            data["user_id"] = str(user.user_id)
        db.session().add(oauth.event(
            req.client.row.org_id, "oauth.token_issued", req.client.id, "issue",
            "OAuthClient", req.client.id, g.get("request_id"), **data))

    def handle_error_response(self, req: Any, error: Any) -> Any:
        """Refused clients and grants are audited (the client as named, never a secret)."""
        if error.error in ("invalid_client", "unauthorized_client", "invalid_grant"):
            client = getattr(req, "client", None)
            client_id = getattr(client, "id", None) or _named_client()
            org_id = client.row.org_id if client is not None else None
            _audit("oauth.refused", client_id, org_id, request.path.rsplit("/", 1)[-1],
                   error=error.error)
        return super().handle_error_response(req, error)


def _generate(grant_type: str, client: Client, user: oauth.Grantee | None = None,
              scope: str | None = None, expires_in: int | None = None,
              include_refresh_token: bool = True) -> dict[str, Any]:
    if user is None:  # client credentials: the client itself, with its own role
        scope = client.get_allowed_scope(scope) or ""  # checked: validate_token_request
        token, ttl = _tokens().issue_access_token(client.id, client.id, client_id=client.id,
                                                  scope=scope)
    else:
        scope = scope or ""
        assert user.user_id is not None and user.session_id is not None
        token, ttl = _tokens().issue_access_token(user.user_id, user.session_id,
                                                  client_id=client.id, scope=scope)
    body: dict[str, Any] = {"token_type": "Bearer", "access_token": token, "expires_in": ttl,
                            "scope": scope}
    if user is not None and include_refresh_token and user.refresh_token:
        body["refresh_token"] = user.refresh_token
    return body


def init_app(app: Flask) -> Server:
    server = Server()
    server.register_token_generator("default", _generate)
    server.scopes_supported = list(SCOPES)
    server.register_grant(AuthorizationCodeGrant, [S256Only(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    app.extensions["oauth_server"] = server
    return server


def server() -> Server:
    return current_app.extensions["oauth_server"]

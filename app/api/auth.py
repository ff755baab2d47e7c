"""Accounts, logins and sessions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app, g, request
from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import Created, created, own_account, page, settings
from app.auth.current import actor, tokens
from app.authz import authorize
from app.errors import Missing, NotFound, Unauthorized
from app.models import AuthSession, User
from app.needs import per_account, per_ip
from app.pagination import Page
from app.services import identity, sessions
from schemas.auth import (
    LoginSchema,
    MeSchema,
    PasswordChangeSchema,
    RefreshSchema,
    RegisterSchema,
    SessionListArgs,
    SessionPageSchema,
    TokenSchema,
    UserSchema,
    session_out,
)
from schemas.common import Out

blp = Blueprint("auth", __name__, url_prefix="/v1", description="Accounts and sessions")


def _lifetimes() -> sessions.Lifetimes:
    s = settings()
    return sessions.Lifetimes(
        idle=timedelta(seconds=s.session_idle_timeout_seconds),
        absolute=timedelta(seconds=s.session_absolute_lifetime_seconds),
    )


def _token_pair(auth_session: AuthSession, refresh_token: str) -> dict[str, Any]:
    token, ttl = tokens().issue_access_token(auth_session.user_id, auth_session.id)
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": refresh_token,
    }


@blp.route("/auth/register")
class Register(MethodView):
    @blp.needs(public=True, limits=(per_ip("register"),))
    @blp.arguments(RegisterSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, description="The email is taken.")
    @blp.alt_response(429, description="Too many attempts; see `Retry-After`.")
    def post(self, data: dict[str, Any]) -> Created:
        """Create an account.

        `Location` is `/v1/me`, where the account reads itself once signed in."""
        user = identity.register(
            db.session(), data["email"], data["password"], data["display_name"]
        )
        return created(user, ".Me")


@blp.route("/auth/login")
class Login(MethodView):
    @blp.needs(public=True, limits=(per_ip("login"), per_account("login")))
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Unknown email or wrong password (the same answer).")
    @blp.alt_response(429, description="Too many attempts; see `Retry-After`.")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Exchange email and password for an access token and a refresh token."""
        session = db.session()
        account = identity.check_password(session, data["email"], data["password"])
        auth_session, refresh_token = sessions.open_session(
            session,
            account,
            _lifetimes(),
            user_agent=request.headers.get("User-Agent", ""),
            ip=request.remote_addr or "",
        )
        return _token_pair(auth_session, refresh_token)


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @blp.needs(public=True, limits=(per_ip("refresh"),))
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Unknown, spent or expired refresh token.")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Spend a refresh token for a new token pair. Presenting a spent refresh token
        again revokes its whole session."""
        session = db.session()
        try:
            auth_session, refresh_token = sessions.refresh(
                session, data["refresh_token"], _lifetimes()
            )
        except sessions.RefreshReuse as reuse:
            unit = db.current_unit()
            unit.rollback()  # the request fails; the revocation must not
            with unit.apart(org_id=None) as apart:
                sessions.revoke_reused(apart, reuse, g.get("request_id"))
            raise Unauthorized(sessions.SESSION_ENDED) from None
        return _token_pair(auth_session, refresh_token)


@blp.route("/auth/logout")
class Logout(MethodView):
    @blp.needs(checks=("manage Account",))
    @blp.response(204)
    def post(self) -> None:
        """End this session: its access and refresh tokens stop working at once."""
        authorize(actor(), "manage", own_account())
        sessions.revoke(db.session(), actor().id, actor().session_id)


@blp.route("/auth/logout-all")
class LogoutAll(MethodView):
    @blp.needs(checks=("manage Account",))
    @blp.response(204)
    def post(self) -> None:
        """End every session of the caller, this one included."""
        authorize(actor(), "manage", own_account())
        sessions.revoke_all(db.session(), actor().id)


@blp.route("/auth/password")
class Password(MethodView):
    @blp.needs(limits=(per_ip("password"),), checks=("manage Account",))
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    def post(self, data: dict[str, Any]) -> None:
        """Change the password; every other session ends."""
        authorize(actor(), "manage", own_account())
        sessions.change_password(
            db.session(), actor().id, data["current_password"], data["new_password"],
            actor().session_id,
        )


@blp.route("/auth/sessions")
class Sessions(MethodView):
    @blp.needs(checks=("manage Account",))
    @blp.arguments(SessionListArgs, location="query")
    @blp.response(200, SessionPageSchema)
    def get(self, args: dict[str, Any]) -> Page[Out]:
        """The caller's live sessions."""
        authorize(actor(), "manage", own_account())
        result = page(sessions.live_sessions(actor().id), args)
        return Page([session_out(s, actor().session_id) for s in result.items],
                     result.next_cursor)


@blp.route("/auth/sessions/<uuid:session_id>")
class SessionItem(MethodView):
    @blp.needs(checks=("manage Account",))
    @blp.response(204)
    def delete(self, session_id: uuid.UUID) -> None:
        """Revoke one of the caller's sessions."""
        authorize(actor(), "manage", own_account())
        if not sessions.revoke(db.session(), actor().id, session_id):
            raise NotFound(missing=Missing("AuthSession", session_id, None))


@blp.route("/me")
class Me(MethodView):
    @blp.needs(checks=("manage Account",))
    @blp.response(200, MeSchema)
    def get(self) -> dict[str, Any]:
        """The signed-in user and every role it holds."""
        authorize(actor(), "manage", own_account())
        session = db.session()
        account = session.get(User, actor().id)
        if account is None or account.deleted_at is not None:
            # Gone since its actor was resolved (or cached): what authentication answers.
            raise Unauthorized("The session of this access token has ended.")
        grants = identity.list_grants(session, account.id)
        return {
            "id": account.id,
            "email": account.email,
            "display_name": account.display_name,
            "created_at": account.created_at,
            "memberships": [grant.__dict__ for grant in grants],
        }


wellknown = Blueprint("jwks", __name__, description="Public signing keys")


@wellknown.route("/.well-known/jwks.json")
class Jwks(MethodView):
    @wellknown.needs(public=True)
    @wellknown.response(200)
    def get(self) -> dict[str, Any]:
        """Public keys that verify access tokens, by `kid`."""
        return current_app.extensions["keys"].ring().public_jwks()

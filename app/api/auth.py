"""Accounts, logins and sessions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app, g, request
from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import author, own_account, page, settings
from app.auth.current import actor, tokens
from app.auth.throttle import Throttle
from app.authz import authorize
from app.errors import Missing, NotFound, Unauthorized
from app.models import AuthSession
from app.needs import per_account, per_account_mail, per_ip, per_ip_mail
from app.pagination import Page
from app.services import accounts, identity, sessions
from schemas.auth import (
    AcceptedSchema,
    EmailOnlySchema,
    LoginSchema,
    MeSchema,
    PasswordChangeSchema,
    PasswordResetSchema,
    RefreshSchema,
    RegisterSchema,
    SessionListArgs,
    SessionPageSchema,
    TokenOnlySchema,
    TokenSchema,
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


REGISTERED = {"message": "Check your inbox: we sent a message to this address."}
RESET_REQUESTED = {"message": "If an account uses this address, we sent it a link."}


def _client() -> str:
    return request.remote_addr or ""


def _throttle() -> Throttle | None:
    return Throttle.of_app(current_app.extensions)


@blp.route("/auth/register")
class Register(MethodView):
    @blp.needs(public=True, limits=(per_ip("register"),))
    @blp.arguments(RegisterSchema)
    @blp.response(202, AcceptedSchema)
    @blp.alt_response(429, description="Too many attempts; see `Retry-After`.")
    def post(self, data: dict[str, Any]) -> dict[str, str]:
        """Create an account and mail it a verification link. An address that already has
        an account gets a warning mail instead, and the caller the same answer."""
        accounts.register(
            db.session(), settings(), data["email"], data["password"], data["display_name"]
        )
        return REGISTERED


@blp.route("/auth/verify")
class Verify(MethodView):
    @blp.needs(public=True, limits=(per_ip("verify", fails_open=True),))
    @blp.arguments(TokenOnlySchema)
    @blp.response(204)
    @blp.alt_response(429, description="Too many attempts; see `Retry-After`.")
    def post(self, data: dict[str, Any]) -> None:
        """Prove the address with the mailed token (single use; it expires)."""
        accounts.verify(db.session(), data["token"])


@blp.route("/auth/verify/resend")
class VerifyResend(MethodView):
    @blp.needs(limits=(per_ip("verify-resend"), per_account_mail("verify-resend")),
               checks=("manage Account",))
    @blp.response(204)
    @blp.alt_response(429, description="Too many attempts; see `Retry-After`.")
    def post(self) -> None:
        """Mail the caller a new verification link (none once verified)."""
        authorize(actor(), "manage", own_account())
        session = db.session()
        accounts.send_verification(session, settings(), identity.account(session, actor().id))


@blp.route("/auth/password/reset")
class PasswordResetRequest(MethodView):
    @blp.needs(public=True, limits=(per_ip_mail("reset"), per_account_mail("reset")))
    @blp.arguments(EmailOnlySchema)
    @blp.response(202, AcceptedSchema)
    @blp.alt_response(429, description="Too many attempts; see `Retry-After`.")
    def post(self, data: dict[str, Any]) -> dict[str, str]:
        """Mail a password reset link, when an account uses the address (the answer is
        the same when none does)."""
        accounts.request_reset(db.session(), settings(), data["email"])
        return RESET_REQUESTED


@blp.route("/auth/password/reset/complete")
class PasswordResetComplete(MethodView):
    @blp.needs(public=True, limits=(per_ip("reset-complete", fails_open=True),))
    @blp.arguments(PasswordResetSchema)
    @blp.response(204)
    @blp.alt_response(429, description="Too many attempts; see `Retry-After`.")
    def post(self, data: dict[str, Any]) -> None:
        """Set a new password with the mailed token (single use; it expires); every
        session of the account ends."""
        accounts.complete_reset(db.session(), data["token"], data["new_password"],
                                request_id=g.get("request_id"))


@blp.route("/auth/login")
class Login(MethodView):
    @blp.needs(public=True, limits=(per_ip("login"),))
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Unknown email or wrong password (the same answer).")
    @blp.alt_response(429, description="Too many failed attempts from this address; see "
                      "`Retry-After`. Other addresses are not refused, only slowed.")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Exchange email and password for an access token and a refresh token."""
        session = db.session()
        account = identity.sign_in(
            session, data["email"], data["password"], _client(), _throttle()
        )
        auth_session, refresh_token = sessions.open_session(
            session,
            account,
            _lifetimes(),
            user_agent=request.headers.get("User-Agent", ""),
            ip=_client(),
        )
        return _token_pair(auth_session, refresh_token)


@blp.route("/auth/refresh")
class Refresh(MethodView):
    @blp.needs(public=True, limits=(per_ip("refresh", fails_open=True),))
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
        sessions.revoke(db.session(), actor().id, actor().session_id, by=author())


@blp.route("/auth/logout-all")
class LogoutAll(MethodView):
    @blp.needs(checks=("manage Account",))
    @blp.response(204)
    def post(self) -> None:
        """End every session of the caller, this one included."""
        authorize(actor(), "manage", own_account())
        sessions.revoke_all(db.session(), actor().id, by=author())


@blp.route("/auth/password")
class Password(MethodView):
    @blp.needs(limits=(per_ip("password"), per_account("password")), checks=("manage Account",))
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    def post(self, data: dict[str, Any]) -> None:
        """Change the password; every other session ends. Wrong current passwords count
        as failed sign-ins of the account."""
        authorize(actor(), "manage", own_account())
        sessions.change_password(
            db.session(), actor().id, data["current_password"], data["new_password"],
            actor().session_id, _client(), _throttle(), by=author(),
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
        if not sessions.revoke(db.session(), actor().id, session_id, by=author()):
            raise NotFound(missing=Missing("AuthSession", session_id, None))


@blp.route("/me")
class Me(MethodView):
    @blp.needs(checks=("read_profile Account",))
    @blp.response(200, MeSchema)
    def get(self) -> dict[str, Any]:
        """The signed-in user and every role it holds."""
        authorize(actor(), "read_profile", own_account())
        account = identity.profile(db.session(), actor().id)
        if account is None:
            # Gone since its actor was resolved (or cached): what authentication answers.
            raise Unauthorized("The session of this access token has ended.")
        grants = identity.grants_of(actor())
        return {
            "id": account.id,
            "email": account.email,
            "display_name": account.display_name,
            "created_at": account.created_at,
            "email_verified": account.email_verified_at is not None,
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

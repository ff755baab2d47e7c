"""Accounts and logins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from app import db
from app.api import public
from app.api.helpers import settings
from app.auth.current import actor, tokens
from app.services import identity
from schemas.auth import LoginSchema, MeSchema, RegisterSchema, TokenSchema, UserSchema

blp = Blueprint("auth", __name__, url_prefix="/v1", description="Accounts and sessions")


@blp.route("/auth/register")
class Register(MethodView):
    @public(blp)
    @blp.arguments(RegisterSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, description="The email is taken.")
    def post(self, data: dict[str, Any]) -> Any:
        """Create an account."""
        return identity.register(
            db.session(), data["email"], data["password"], data["display_name"]
        )


@blp.route("/auth/login")
class Login(MethodView):
    @public(blp)
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Unknown email or wrong password (the same answer).")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Exchange email and password for an access token."""
        _user, auth_session = identity.login(
            db.session(),
            data["email"],
            data["password"],
            lifetime=timedelta(seconds=settings().session_absolute_lifetime_seconds),
            user_agent=request.headers.get("User-Agent", ""),
            ip=request.remote_addr or "",
        )
        token, ttl = tokens().issue_access_token(auth_session.user_id, auth_session.id)
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    def get(self) -> dict[str, Any]:
        """The signed-in user and every role it holds."""
        me = actor()
        session = db.session()
        user = session.get(identity.User, me.id)
        grants = identity.list_grants(session, me.id)
        return {
            "id": user.id,
            "email": user.email,
            "display_name": user.display_name,
            "created_at": user.created_at,
            "memberships": [g.__dict__ for g in grants],
        }


wellknown = Blueprint("jwks", __name__, description="Public signing keys")


@wellknown.route("/.well-known/jwks.json")
class Jwks(MethodView):
    @public(wellknown)
    @wellknown.response(200)
    def get(self) -> dict[str, Any]:
        """Public keys that verify access tokens, by `kid`."""
        return current_app.extensions["keys"].public_jwks()

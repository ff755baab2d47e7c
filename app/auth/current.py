"""Resolve the request's actor from its `Authorization: Bearer` access token."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, g, request

from app import db
from app.auth.tokens import InvalidToken, TokenService
from app.errors import Unauthorized
from app.services import identity

log = logging.getLogger("app.auth")


def tokens() -> TokenService:
    return current_app.extensions["tokens"]


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate() -> Any:
    """The actor behind the request's access token; 401 for anything else."""
    token = bearer_token()
    if token is None:
        raise Unauthorized("Send an access token: `Authorization: Bearer <token>`.")
    try:
        claims = tokens().verify_access_token(token)
    except InvalidToken as exc:
        log.info("access token refused", extra={"fields": {"reason": str(exc)}})
        raise Unauthorized("The access token is invalid or expired.") from None
    actor = identity.load_actor(db.session(), claims.user_id, claims.session_id)
    if actor is None:
        raise Unauthorized("The session of this access token has ended.")
    return actor


def actor() -> Any:
    """The authenticated actor of this request (set before the view runs)."""
    return g.actor

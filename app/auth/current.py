"""Resolve the request's actor from its `Authorization: Bearer` credential.

Three kinds of bearer: JWT access tokens (users), `sk_` API keys (machine clients) and
`ik_` ingest keys (browsers; accepted only by views marked `accepts_ingest_keys`).
Resolved actors are cached per process and dropped on change (see invalidation.py), so
an unchanged session costs no query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from app import db
from app.auth.invalidation import ActorCache
from app.auth.secrets import API_KEY_PREFIX, INGEST_KEY_PREFIX, digest, parse_key
from app.auth.tokens import InvalidToken, TokenService
from app.db import utcnow
from app.errors import Unauthorized
from app.services import credentials, identity

log = logging.getLogger("app.auth")
F = TypeVar("F", bound=Callable[..., Any])


def tokens() -> TokenService:
    return current_app.extensions["tokens"]


def actor_cache() -> ActorCache:
    return current_app.extensions["actor_cache"]


def accepts_ingest_keys(func: F) -> F:
    """Let an ingest key authenticate this view (every other view refuses them)."""
    func._accepts_ingest_keys = True  # type: ignore[attr-defined]
    return func


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(ingest_keys: bool = False) -> Any:
    """The actor behind the request's credential; 401 for anything else."""
    token = bearer_token()
    if token is None:
        raise Unauthorized("Send a credential: `Authorization: Bearer <token>`.")
    if token.startswith((API_KEY_PREFIX, INGEST_KEY_PREFIX)):
        return _key_actor(token, ingest_keys)
    try:
        claims = tokens().verify_access_token(token)
    except InvalidToken as exc:
        log.info("access token refused", extra={"fields": {"reason": str(exc)}})
        raise Unauthorized("The access token is invalid or expired.") from None
    cache = actor_cache()
    actor = cache.get(claims.user_id, claims.session_id)
    if actor is None:
        generation = cache.generation
        actor = identity.load_actor(db.session(), claims.user_id, claims.session_id)
        if actor is None:
            raise Unauthorized("The session of this access token has ended.")
        cache.put(claims.user_id, claims.session_id, actor, generation)
    return actor


def _key_actor(token: str, ingest_keys: bool) -> Any:
    refused = Unauthorized("The key is invalid or revoked.")
    parsed = parse_key(token)
    if parsed is None:
        raise refused
    prefix, key_id, secret = parsed
    if prefix == INGEST_KEY_PREFIX and not ingest_keys:
        raise Unauthorized("Ingest keys can only send events.")
    cache = actor_cache()
    credential = (prefix, digest(secret))  # the cache never matches another secret
    actor = cache.get(key_id, credential)
    if actor is not None and getattr(actor, "expires_at", None) and actor.expires_at <= utcnow():
        raise refused
    if actor is None:
        generation = cache.generation
        resolve = credentials.api_client if prefix == API_KEY_PREFIX else credentials.ingest_client
        actor = resolve(db.session(), key_id, secret)
        if actor is None:
            raise refused
        cache.put(key_id, credential, actor, generation)
    return actor


def actor() -> Any:
    """The authenticated actor of this request (set before the view runs)."""
    return g.actor

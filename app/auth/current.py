"""Resolve the request's actor from its `Authorization: Bearer` credential.

Three kinds of bearer: JWT access tokens (people), `sk_` API keys (machine clients) and
`ik_` ingest keys (browsers). Each view declares which it accepts (app/needs.py); the
pipeline authenticates before the view runs. Resolved actors are cached per process and
dropped on change (see invalidation.py), so an unchanged session costs no query.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from flask import current_app, g, request

from app import db
from app.auth.invalidation import ActorCache
from app.auth.secrets import API_KEY_PREFIX, INGEST_KEY_PREFIX, digest, parse_key
from app.auth.tokens import InvalidToken, TokenService
from app.db import utcnow
from app.errors import BadRequest, Unauthorized
from app.needs import Credential
from app.services import credentials, identity, oauth_clients

if TYPE_CHECKING:  # annotations only: nothing here can test an actor's class
    from app.authz.actors import Principal

log = logging.getLogger("app.auth")


def tokens() -> TokenService:
    return current_app.extensions["tokens"]


def actor_cache() -> ActorCache:
    return current_app.extensions["actor_cache"]


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(accepted: frozenset[Credential], body_key: str | None = None) -> Principal:
    """The actor behind the request's credential, when the view accepts its kind; 401 for
    anything else. `body_key`: an ingest key a beacon sent in its body (app/needs.py)."""
    token = bearer_token()
    if body_key is not None:
        if token is not None:
            raise BadRequest("Send the key once: in the body or in `Authorization`, not both.",
                             errors={"key": ["Also sent in Authorization."]})
        if not body_key.startswith(INGEST_KEY_PREFIX):  # secrets of people and machines
            raise Unauthorized("Only an ingest key may be sent in the body.")  # stay off pages
        return _key_actor(body_key, accepted)
    if token is None:
        raise Unauthorized("Send a credential: `Authorization: Bearer <token>`.")
    if token.startswith((API_KEY_PREFIX, INGEST_KEY_PREFIX)):
        return _key_actor(token, accepted)
    if Credential.ACCESS_TOKEN not in accepted:
        raise Unauthorized("Send this operation a key, not an access token.")
    try:
        claims = tokens().verify_access_token(token)
    except InvalidToken as exc:
        log.info("access token refused", extra={"fields": {"reason": str(exc)}})
        raise Unauthorized("The access token is invalid or expired.") from None
    cache = actor_cache()
    if claims.for_client_itself:
        return _client_actor(claims.user_id, claims.scope or "")
    # A client's tokens of one session may carry narrower scopes (a refresh may ask less).
    credential = claims.session_id if claims.client_id is None else (
        claims.session_id, claims.scope)
    actor = cache.get(claims.user_id, credential)
    if actor is None:
        generation = cache.generation
        actor = identity.load_actor(db.session(), claims.user_id, claims.session_id,
                                    claims.client_id, claims.scope)
        if actor is None:
            raise Unauthorized("The session of this access token has ended.")
        cache.put(claims.user_id, credential, actor, generation)
    return actor


def _client_actor(client_id: uuid.UUID, scope: str) -> Principal:
    """An OAuth client acting with its own role (a client credentials token): as long as
    the client is live (revoking it notifies the cache)."""
    cache = actor_cache()
    credential = ("oauth-client", scope)
    actor = cache.get(client_id, credential)
    if actor is None:
        generation = cache.generation
        row = oauth_clients.live(db.session(), client_id)
        actor = None if row is None else credentials.oauth_client_actor(row, scope)
        if actor is None:
            raise Unauthorized("The client of this access token was revoked.")
        cache.put(client_id, credential, actor, generation)
    return actor


def _key_actor(token: str, accepted: frozenset[Credential]) -> Principal:
    refused = Unauthorized("The key is invalid or revoked.")
    parsed = parse_key(token)
    if parsed is None:
        raise refused
    prefix, key_id, secret = parsed
    if prefix == INGEST_KEY_PREFIX and Credential.INGEST_KEY not in accepted:
        raise Unauthorized("Ingest keys can only send events.")
    if prefix == API_KEY_PREFIX and Credential.API_KEY not in accepted:
        raise Unauthorized("This operation takes no API key.")
    cache = actor_cache()
    credential = (prefix, digest(secret))  # the cache never matches another secret
    actor = cache.get(key_id, credential)
    if actor is None:
        generation = cache.generation
        resolve = credentials.api_client if prefix == API_KEY_PREFIX else credentials.ingest_client
        match = resolve(db.session(), key_id, secret)
        if match is None:
            raise refused
        now = utcnow()
        if credentials.touch_due(match, now):  # bookkeeping: kept whatever the request does
            with db.current_unit().apart(org_id=match.org_id) as session:
                credentials.touch(session, match, now)
        actor = match.actor
        cache.put(key_id, credential, actor, generation)
    # The request's clock decides, whether the actor was cached or just loaded (the lookup's
    # own clock may differ from it by the time it took).
    if actor.expires_at is not None and actor.expires_at <= utcnow():
        raise refused
    return actor


def actor() -> Principal:
    """The authenticated actor of this request (set before the view runs)."""
    return g.actor

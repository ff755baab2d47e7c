"""What `flask authz explain` names, found in the database: an actor (`user:EMAIL`,
`api-key:ID`, `ingest-key:ID`, `oauth-client:ID`) and a resource (a policy type and an
id). Each miss is an error that lists what is valid."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.authz.actors import Principal
from app.models import ApiKey, IngestKey, OAuthClient, User
from app.models.resource import described, polar_name


class LookupFailed(LookupError):
    pass


def _user(session: Session, email: str) -> Principal:
    from app.services.identity import actor_for

    user = session.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        raise LookupFailed(f"no user {email}")
    return actor_for(session, user)


def _api_key(session: Session, ident: str) -> Principal:
    from app.services.credentials import api_key_actor

    return api_key_actor(_live(session.get(ApiKey, _uuid(ident)), "ApiKey", ident))


def _ingest_key(session: Session, ident: str) -> Principal:
    from app.services.credentials import ingest_key_actor

    return ingest_key_actor(_live(session.get(IngestKey, _uuid(ident)), "IngestKey", ident))


def _oauth_client(session: Session, ident: str) -> Principal:
    """An OAuth client as its client credentials tokens act: its own role, with every
    scope it may ask for (a narrower token may do less)."""
    from app.services.credentials import oauth_client_actor

    row = _live(session.get(OAuthClient, _uuid(ident)), "OAuthClient", ident)
    actor = oauth_client_actor(row, " ".join(row.scopes))
    if actor is None:
        raise LookupFailed(f"OAuthClient {ident} holds no role: it acts only for people")
    return actor


K = TypeVar("K", ApiKey, IngestKey, OAuthClient)


def _live(row: K | None, name: str, ident: str) -> K:
    if row is None:
        raise LookupFailed(f"no {name} {ident}")
    if row.revoked_at is not None:
        raise LookupFailed(f"{name} {ident} is revoked: it is no actor")
    return row


# Actor kinds `explain` accepts; a new kind of credential adds its loader.
ACTORS: dict[str, Callable[[Session, str], Principal]] = {
    "user": _user, "api-key": _api_key, "ingest-key": _ingest_key,
    "oauth-client": _oauth_client,
}


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise LookupFailed(f"{text!r} is not an id") from None


def actor(session: Session, spec: str) -> Principal:
    """`KIND:WHO`; a bare email is a user."""
    kind, sep, who = spec.partition(":")
    if not sep:
        kind, who = "user", spec
    if kind not in ACTORS:
        raise LookupFailed(f"unknown actor kind {kind!r}: use one of "
                           + ", ".join(f"{k}:..." for k in ACTORS))
    return ACTORS[kind](session, who)


def types() -> dict[str, type]:
    """Policy type name -> model."""
    return {polar_name(model): model for model, _ in described()}


def model_of(name: str) -> type:
    """A policy type by name, in any case, with or without underscores (`api_key`)."""
    wanted = name.replace("_", "").replace("-", "").lower()
    for polar, model in types().items():
        if polar.lower() == wanted:
            return model
    raise LookupFailed(f"unknown resource type {name!r}: one of {', '.join(types())}")


def resource(session: Session, model: type, ident: str) -> Any:
    found = session.scalars(select(model).where(model.id == _uuid(ident))).first()  # type: ignore[attr-defined]
    if found is None:
        raise LookupFailed(f"no {polar_name(model)} {ident}")
    return found

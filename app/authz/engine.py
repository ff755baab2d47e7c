"""Oso setup, class registration, the decision helpers, and the compiled-filter cache."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from flask import current_app
from oso import Oso, Relation
from sqlalchemy import ColumnElement, Select, true
from sqlalchemy.orm import Session

from app.authz.actors import ApiClientActor, IngestClientActor, UserActor
from app.authz.adapter import SqlFilterAdapter
from app.errors import Forbidden, NotFound
from app.models import (
    ApiKey,
    Asset,
    AuditEvent,
    Event,
    Gallery,
    GalleryItem,
    IngestKey,
    Organization,
    OrgMembership,
    Site,
    SiteMembership,
    User,
)

S = TypeVar("S", bound=Select[Any])

# Resource classes and the fields Polar may filter on. Relations are many-to-one.
RESOURCES: dict[type, dict[str, Any]] = {
    User: {"id": uuid.UUID},  # Polar: Account (`User` names the signed-in actor)
    Organization: {"id": uuid.UUID},
    Site: {
        "id": uuid.UUID,
        "org_id": uuid.UUID,
        "parent": Relation("one", "Organization", "org_id", "id"),
    },
    OrgMembership: {
        "id": uuid.UUID,
        "user_id": uuid.UUID,
        "role": str,
        "organization": Relation("one", "Organization", "org_id", "id"),
    },
    SiteMembership: {
        "id": uuid.UUID,
        "user_id": uuid.UUID,
        "role": str,
        "site": Relation("one", "Site", "site_id", "id"),
    },
    AuditEvent: {
        "id": uuid.UUID,
        "organization": Relation("one", "Organization", "org_id", "id"),
    },
    ApiKey: {
        "id": uuid.UUID,
        "role": str,
        "site_id": uuid.UUID,
        "organization": Relation("one", "Organization", "org_id", "id"),
        "site": Relation("one", "Site", "site_id", "id"),
    },
    IngestKey: {
        "id": uuid.UUID,
        "site": Relation("one", "Site", "site_id", "id"),
    },
    Asset: {
        "id": uuid.UUID,
        "created_by": uuid.UUID,
        "site": Relation("one", "Site", "site_id", "id"),
    },
    Gallery: {
        "id": uuid.UUID,
        "created_by": uuid.UUID,
        "site": Relation("one", "Site", "site_id", "id"),
    },
    GalleryItem: {
        "id": uuid.UUID,
        "gallery": Relation("one", "Gallery", "gallery_id", "id"),
    },
    Event: {"site": Relation("one", "Site", "site_id", "id")},
}
POLAR_NAMES = {User: "Account"}


def polar_name(model: type) -> str:
    """The name the policies give a resource class."""
    return POLAR_NAMES.get(model, model.__name__)


# Resources on which the policies read nothing but these ids (their own, and those their
# relations follow): a decision about one is memoized on the actor asking (Principal).
DECIDED_BY_IDS: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    Organization: lambda org: (org.id,),
    Site: lambda site: (site.id, site.org_id),
}
MEMOIZED_DECISIONS = 1024  # per actor; a cached actor is rebuilt when its grants change
# Permissions asked of an object as it would be, before it exists (a new key, a new
# membership): never a filter over stored rows, so never compiled into one.
ASKED_BEFORE_EXISTING = frozenset({"create"})

ACTORS = {UserActor: "User", ApiClientActor: "ApiClient", IngestClientActor: "IngestClient"}

# Called with each denial: (actor, action, resource, visible, probe); set by the app
# (audit log). A probe is a denial about an organization the actor holds nothing in.
DenialHook = Callable[[Any, str, Any, bool, bool], None]

_EVERY_ROW = true()


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[Any, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get_or_build(self, key: Any, build: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        value = build()
        with self.lock:
            self.data[key] = value
            if len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


class AuthzEngine:
    """One Oso instance loaded with every policy file; fails loudly on a bad policy."""

    def __init__(
        self,
        policy_dir: str | Path,
        session: Callable[[], Session],
        cache_size: int = 4096,
    ) -> None:
        self.oso = Oso()
        self.oso.register_class(uuid.UUID, name="Uuid")
        for cls, name in ACTORS.items():
            self.oso.register_class(cls, name=name)
        for cls, fields in RESOURCES.items():
            self.oso.register_class(cls, name=POLAR_NAMES.get(cls), fields=fields)
        files = sorted(Path(policy_dir).glob("*.polar"))
        if not files:
            raise RuntimeError(f"no policy files in {policy_dir}")
        self.oso.load_files(files)
        # `session` serves the relation lookups of is_allowed (see adapter.py).
        self.oso.set_data_filtering_adapter(SqlFilterAdapter(session))
        self.filters = _LRU(cache_size)
        self.on_denial: DenialHook | None = None
        # Only tests turn this off, to prove row-level security holds on its own.
        self.enforce = True

    def is_allowed(self, actor: Any, action: str, resource: Any) -> bool:
        ids = DECIDED_BY_IDS.get(type(resource))
        if ids is None:
            return bool(self.oso.is_allowed(actor, action, resource))
        key = (action, type(resource), *ids(resource))
        decided = actor.decisions.get(key)
        if decided is None:
            decided = bool(self.oso.is_allowed(actor, action, resource))
            if len(actor.decisions) < MEMOIZED_DECISIONS:
                actor.decisions[key] = decided
        return decided

    def deny(
        self, actor: Any, action: str, resource: Any, visible: bool = False, probe: bool = False
    ) -> None:
        """Record a denial (the audit log) without raising."""
        if self.on_denial is not None:
            self.on_denial(actor, action, resource, visible, probe)

    def authorize(self, actor: Any, action: str, resource: Any) -> None:
        if not self.enforce or self.is_allowed(actor, action, resource):
            return
        visible = action != "read" and self.is_allowed(actor, "read", resource)
        self.deny(actor, action, resource, visible)
        if visible:
            raise Forbidden(f"You may not {action.replace('_', ' ')} this resource.")
        raise NotFound()

    def filter(self, actor: Any, action: str, model: type) -> ColumnElement[bool]:
        """The policy as a WHERE clause; compiled once per (grants, action, model)."""
        if action in ASKED_BEFORE_EXISTING:
            raise ValueError(f"`{action}` is asked of an object to be, never of stored rows")
        key = (actor.grants_key, action, model)
        return self.filters.get_or_build(
            key, lambda: self.oso.authorized_query(actor, action, model).where
        )

    def condition(self, actor: Any, action: str, model: type) -> ColumnElement[bool]:
        """`filter()`, or TRUE while enforcement is off. The same object for the same grants,
        so a statement built around it can be cached per grant set (see `galleries.listing`)."""
        return self.filter(actor, action, model) if self.enforce else _EVERY_ROW

    def authorized(self, stmt: S, actor: Any, action: str, model: type) -> S:
        if not self.enforce:
            return stmt
        return stmt.where(self.filter(actor, action, model))


def engine() -> AuthzEngine:
    return current_app.extensions["authz"]


def is_allowed(actor: Any, action: str, resource: Any) -> bool:
    return engine().is_allowed(actor, action, resource)


def authorize(actor: Any, action: str, resource: Any) -> None:
    engine().authorize(actor, action, resource)


def authorized(stmt: S, actor: Any, action: str, model: type) -> S:
    return engine().authorized(stmt, actor, action, model)


def condition(actor: Any, action: str, model: type) -> ColumnElement[bool]:
    return engine().condition(actor, action, model)

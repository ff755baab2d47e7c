"""Oso setup, class registration, the decision helpers, and the compiled-filter cache
(filled from the filter templates of app/authz/templates.py)."""

from __future__ import annotations

import logging
import re
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

from app.authz.actors import ApiClientActor, IngestClientActor, Principal, UserActor
from app.authz.adapter import SqlFilterAdapter
from app.authz.templates import Template
from app.errors import Forbidden, NotFound
from app.models.resource import described, polar_name

S = TypeVar("S", bound=Select[Any])
log = logging.getLogger(__name__)

def registrations() -> dict[type, dict[str, Any]]:
    """Model -> the fields Polar may read, from each model's `__resource__`: its columns
    with their Python types, and its many-to-one relations."""
    found = {}
    for model, resource in described():
        columns = model.__table__.columns
        fields: dict[str, Any] = {
            name: columns[name].type.python_type for name in resource.fields
        }
        for relation, (target, column) in resource.relations.items():
            fields[relation] = Relation("one", target, column, "id")
        found[model] = fields
    return found


def decided_by_ids(resource: object) -> tuple[object, ...] | None:
    """The values a decision about `resource` depends on, when the policy reads nothing
    else of it (Resource.decided_by: decisions are then memoized on the actor)."""
    description = type(resource).__dict__.get("__resource__")
    if description is None or not description.decided_by:
        return None
    return tuple(getattr(resource, column) for column in description.decided_by)


MEMOIZED_DECISIONS = 1024  # per actor; a cached actor is rebuilt when its grants change
# Permissions asked of an object as it would be, before it exists (a new key, a new
# membership): never a filter over stored rows, so never compiled into one.
ASKED_BEFORE_EXISTING = frozenset({"create"})

ACTORS = {UserActor: "User", ApiClientActor: "ApiClient", IngestClientActor: "IngestClient"}

# Called with each denial: (actor, action, resource, visible, probe); set by the app
# (audit log). A probe is a denial about an organization the actor holds nothing in.
DenialHook = Callable[[Principal, str, object, bool, bool], None]

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



def refusal(action: str, resource: object) -> str:
    """The 403's detail: the permission by its policy name and the kind of resource, e.g.
    "`create_gallery` is not allowed on this site." (no sentence is composed from the
    permission's words: "create gallery this resource" read wrong)."""
    kind = re.sub(r"(?<!^)(?=[A-Z])", " ", type(resource).__name__).lower()
    return f"`{action}` is not allowed on this {kind}."

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
        for cls, fields in registrations().items():
            self.oso.register_class(cls, name=polar_name(cls), fields=fields)
        files: list[Path | str] = [*sorted(Path(policy_dir).glob("*.polar"))]  # as oso types it
        if not files:
            raise RuntimeError(f"no policy files in {policy_dir}")
        self.oso.load_files(files)
        # `session` serves the relation lookups of is_allowed (see adapter.py).
        self.oso.set_data_filtering_adapter(SqlFilterAdapter(session))
        self.filters = _LRU(cache_size)
        # (actor class, action, model) -> its Template, or None where oso decides alone.
        self.templates: dict[tuple[Any, ...], Template | None] = {}
        self.on_denial: DenialHook | None = None
        # Only tests turn this off, to prove row-level security holds on its own.
        self.enforce = True

    def is_allowed(self, actor: Principal, action: str, resource: object) -> bool:
        ids = decided_by_ids(resource)
        if ids is None:
            return bool(self.oso.is_allowed(actor, action, resource))
        key = (action, type(resource), *ids)
        decided = actor.decisions.get(key)
        if decided is None:
            decided = bool(self.oso.is_allowed(actor, action, resource))
            if len(actor.decisions) < MEMOIZED_DECISIONS:
                actor.decisions[key] = decided
        return decided

    def deny(
        self, actor: Principal, action: str, resource: object, visible: bool = False,
        probe: bool = False,
    ) -> None:
        """Record a denial (the audit log) without raising."""
        if self.on_denial is not None:
            self.on_denial(actor, action, resource, visible, probe)

    def authorize(self, actor: Principal, action: str, resource: object) -> None:
        if not self.enforce or self.is_allowed(actor, action, resource):
            return
        visible = action != "read" and self.is_allowed(actor, "read", resource)
        self.deny(actor, action, resource, visible)
        if visible:
            raise Forbidden(refusal(action, resource))
        raise NotFound()

    def filter(self, actor: Principal, action: str, model: type) -> ColumnElement[bool]:
        """The policy as a WHERE clause; compiled once per (grants, action, model)."""
        if action in ASKED_BEFORE_EXISTING:
            raise ValueError(f"`{action}` is asked of an object to be, never of stored rows")
        key = (actor.grants_key, action, model)
        return self.filters.get_or_build(key, lambda: self._build(actor, action, model))

    def _build(self, actor: Principal, action: str, model: type) -> ColumnElement[bool]:
        """The actor's filter from its kind's template; from oso where none is exact."""
        template = self.template(type(actor), action, model, actor.policy_shape)
        filled = None if template is None else template.fill(actor)
        if filled is not None:
            return filled
        return self.oso.authorized_query(actor, action, model).where

    def template(self, cls: type[Principal], action: str, model: type,
                 shape: tuple[tuple[str, Any], ...] = ()) -> Template | None:
        """The filter template of an actor class (per `shape`: see Principal.POLICY_SHAPE),
        built on first use; None (said once, as a WARNING) where it could not stand for
        oso's filter and oso filters each actor."""
        key = (cls, shape, action, model)
        if key not in self.templates:
            try:
                self.templates[key] = Template.build(self.oso, cls, action, model, dict(shape))
            except Exception as exc:  # UnsupportedFilter, or the probe upset the policy
                log.warning("no filter template for %s %s %s (oso filters each actor): %s: %s",
                            cls.__name__, action, model.__name__, type(exc).__name__, exc)
                self.templates[key] = None
        return self.templates[key]

    def condition(self, actor: Principal, action: str, model: type) -> ColumnElement[bool]:
        """`filter()`, or TRUE while enforcement is off. The same object for the same grants,
        so a statement built around it can be cached per grant set (see `galleries.listing`)."""
        return self.filter(actor, action, model) if self.enforce else _EVERY_ROW

    def authorized(self, stmt: S, actor: Principal, action: str, model: type) -> S:
        if not self.enforce:
            return stmt
        return stmt.where(self.filter(actor, action, model))


def engine() -> AuthzEngine:
    return current_app.extensions["authz"]


def is_allowed(actor: Principal, action: str, resource: object) -> bool:
    return engine().is_allowed(actor, action, resource)


def authorize(actor: Principal, action: str, resource: object) -> None:
    engine().authorize(actor, action, resource)


def authorized(stmt: S, actor: Principal, action: str, model: type) -> S:
    return engine().authorized(stmt, actor, action, model)


def condition(actor: Principal, action: str, model: type) -> ColumnElement[bool]:
    return engine().condition(actor, action, model)

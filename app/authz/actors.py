"""Actors as Polar sees them: an identity plus the role grants loaded once per request."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar


@dataclass(frozen=True, eq=False)
class Principal:
    """Grants of an actor. Polar reads them through `org_ids` / `site_ids`."""

    id: uuid.UUID
    org_roles: Mapping[uuid.UUID, str] = field(default_factory=dict)
    site_roles: Mapping[uuid.UUID, str] = field(default_factory=dict)
    site_orgs: Mapping[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    # Polar's answers about resources decided by their ids alone (AuthzEngine.is_allowed),
    # kept as long as this actor: its grants never change.
    decisions: dict[tuple[object, ...], bool] = field(
        default_factory=dict, init=False, repr=False
    )

    kind = "principal"
    # The methods through which the policies read the grants: a filter template
    # (authz/templates.py) answers each call with a placeholder. Add one the policies call.
    POLICY_READS = ("org_ids", "site_ids", "guest_org_ids", "scoped_site_ids")
    # What the policies test by value rather than match ids against: a filter template is
    # built per value of these (few: a proven address or not), from the real actor's own.
    # The scopes of an OAuth token are tested by value (policies/scopes.polar).
    POLICY_SHAPE: ClassVar[tuple[str, ...]] = ("scopes",)

    @property
    def policy_shape(self) -> tuple[tuple[str, Any], ...]:
        return tuple((name, getattr(self, name)) for name in self.POLICY_SHAPE)

    def org_ids(self, role: str) -> list[uuid.UUID]:
        """Organizations on which this actor holds exactly `role`."""
        return [org for org, granted in self.org_roles.items() if granted == role]

    def site_ids(self, role: str) -> list[uuid.UUID]:
        """Sites on which this actor holds exactly `role`."""
        return [site for site, granted in self.site_roles.items() if granted == role]

    def held_org_ids(self) -> set[uuid.UUID]:
        """Organizations where this actor holds any role, on them or on one of their sites."""
        return set(self.org_roles) | set(self.site_orgs.values())

    def guest_org_ids(self) -> list[uuid.UUID]:
        """Organizations where this actor holds a role on some site only."""
        return [org for org in set(self.site_orgs.values()) if org not in self.org_roles]

    def scoped_site_ids(self) -> list[uuid.UUID]:
        """Sites this actor holds a role on directly (not through their organization)."""
        return list(self.site_roles)

    @property
    def person_id(self) -> uuid.UUID | None:
        """The signed-in person behind this actor, if any (row-level security's
        `app.user_id`, which lets a person read the organizations it belongs to)."""
        return None

    # What a kind of actor carries beyond its grants, read through any actor so that
    # Python never asks which kind it holds; each kind overrides its own with a field.
    @property
    def session_id(self) -> uuid.UUID | None:
        """The login session behind this actor (a person's), which logout ends."""
        return None

    @property
    def expires_at(self) -> datetime | None:
        """When this actor's credential stops working (an API key's expiry)."""
        return None

    @property
    def scopes(self) -> tuple[str, ...] | None:
        """The OAuth scopes capping what this actor may do (policies/scopes.polar); None:
        not an OAuth token, unrestricted."""
        return None

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """The origins whose browsers may send this actor's events (an ingest key's);
        empty for any origin."""
        return ()

    def home_org_id(self) -> uuid.UUID | None:
        """The one organization a key works in, for routes whose path names none."""
        held = self.held_org_ids()
        return next(iter(held)) if len(held) == 1 else None

    def home_site(self) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(site id, org id) of the one site this actor is scoped to, if it is scoped to
        exactly one and to no organization: where its events go."""
        if self.org_roles or len(self.site_orgs) != 1:
            return None
        return next(iter(self.site_orgs.items()))

    @cached_property
    def grants_key(self) -> tuple[object, ...]:
        """Everything a compiled data filter may depend on: the filter cache key."""
        return (
            self.kind,
            self.id,
            frozenset(self.org_roles.items()),
            frozenset(self.site_roles.items()),
            frozenset(self.site_orgs.items()),
            self.scopes,
        )


@dataclass(frozen=True, eq=False)
class UserActor(Principal):
    """A signed-in user (Polar: `User`)."""

    email: str = ""
    # The address was proven by mail (policies/invitations.polar reads it).
    verified: bool = False
    session_id: uuid.UUID | None = None
    # An OAuth client's token for the person: its scopes (None: a login, unrestricted).
    scopes: tuple[str, ...] | None = None

    kind = "user"
    POLICY_SHAPE = ("scopes", "verified")

    @cached_property
    def grants_key(self) -> tuple[object, ...]:
        """The invitation rules read the address and whether it is proven too."""
        return (*super().grants_key, self.email, self.verified)

    @property
    def person_id(self) -> uuid.UUID | None:
        return self.id

    def home_org_id(self) -> uuid.UUID | None:
        return None  # a person always names its organization in the path


@dataclass(frozen=True, eq=False)
class ApiClientActor(Principal):
    """A machine client authenticated by an API key (Polar: `ApiClient`): it holds the
    one role its key was created with, on the key's organization or site."""

    expires_at: datetime | None = None
    # An OAuth client acting with its own role (client credentials): its token's scopes.
    scopes: tuple[str, ...] | None = None

    kind = "api_key"


@dataclass(frozen=True, eq=False)
class IngestClientActor(Principal):
    """A browser sending events with an ingest key (Polar: `IngestClient`): it holds no
    role, only the right to write events to one site."""

    site_id: uuid.UUID | None = None
    allowed_origins: tuple[str, ...] = ()

    kind = "ingest_key"

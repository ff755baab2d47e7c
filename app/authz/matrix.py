"""The permission matrix, computed from the loaded policy (not written by hand).

For every resource type, every way an actor can hold a role on it (directly, or through
its organization), every kind of actor (a person, an API key, an ingest key) and every
permission the policy declares for that type, ask Oso. Rows the creator rules add (a
person's own asset or gallery) are asked of a resource that actor created. The role
ceilings (who may give which role, to a member or to a new API key) are asked of the
membership or key as it would be. The result renders `docs/permissions.md`, and the
tests compare it with their own tables.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from sqlalchemy.orm import Session

from app.authz.actors import ApiClientActor, IngestClientActor, Principal, UserActor
from app.authz.engine import AuthzEngine
from app.models import (
    ORG_ROLES,
    SITE_ROLES,
    ApiKey,
    Organization,
    OrgMembership,
    Site,
    SiteMembership,
    User,
)
from app.models.resource import Place, make, model_named

_BLOCK = re.compile(r"resource\s+(\w+)\s*\{(.*?)\n\}", re.S)
_PERMISSIONS = re.compile(r"permissions\s*=\s*\[(.*?)\];", re.S)

# Actor kinds, as the matrix's column groups name them.
KINDS: dict[str, type[Principal]] = {
    "user": UserActor,
    "API key": ApiClientActor,
    "ingest key": IngestClientActor,
}
# Resources a person may own (`created_by`), with the permissions a creator rule may add.
OWNED = {"Asset": ("update", "delete", "complete"), "Gallery": ("update", "delete")}
# Resources that are about the asking actor itself: asked of the actor's own.
OWN = {"Account"}
CREATOR = " (creator)"
# Resources addressed to a person's email, with the permissions its owner has once the
# address is verified: asked as that person.
ADDRESSED = {"Invitation": ("read", "accept", "decline")}
INVITEE = " (invitee)"


def declared_permissions(policy_dir: str | Path) -> dict[str, list[str]]:
    """Resource name -> permissions, in the order the policy declares them."""
    found: dict[str, list[str]] = {}
    for path in sorted(Path(policy_dir).glob("*.polar")):
        for name, body in _BLOCK.findall(path.read_text()):
            match = _PERMISSIONS.search(body)
            if match:
                listing = re.sub(r"#[^\n]*", "", match.group(1))
                found[name] = re.findall(r'"([^"]+)"', listing)
    return found


class Sample:
    """One organization with one site, and one resource of each type inside them (each
    model's `__resource__` says how to make one)."""

    def __init__(self) -> None:
        self.org = Organization(id=uuid.uuid4(), name="org")
        self.site = Site(id=uuid.uuid4(), org_id=self.org.id, name="site")
        self.objects: list[Any] = [self.org, self.site]

    def resource(self, name: str, actor: Principal) -> Any:
        """The resource of type `name`: someone else's when it can have a creator; for
        `Account`, the actor's own."""
        if name in OWN:
            return User(id=actor.id)
        return self.made(name, created_by=uuid.uuid4())

    def addressed_to(self, name: str, actor: Principal) -> tuple[Principal, Any]:
        """(the actor as the verified owner of an address, a resource addressed to it);
        an actor that is no person has no address and stays as it is."""
        row = self.made(name, created_by=uuid.uuid4())
        if isinstance(actor, UserActor):
            actor = replace(actor, email=row.email, verified=True)
        return actor, row

    def created_by(self, name: str, actor: Principal) -> Any:
        return self.made(name, created_by=actor.id)

    def made(self, name: str, created_by: uuid.UUID) -> Any:
        place = Place(self.org, self.site, created_by=created_by)
        row = make(model_named(name), place)
        self.objects += [row, *place.made.values()]
        return row


def _with(pair: tuple[Principal, Any], permission: str) -> tuple[Principal, str, Any]:
    return pair[0], permission, pair[1]


def holders(
    org: Organization, site: Site, kind: type[Principal] = UserActor
) -> dict[str, Principal]:
    """Column label -> an actor of `kind` holding that role ("org:" on the organization,
    "site:" on the site only); for ingest keys, the one key of the site."""
    if kind is IngestClientActor:
        return {"site key": IngestClientActor(uuid.uuid4(), site_id=site.id,
                                              site_orgs={site.id: org.id})}
    actors = {f"org:{role}": kind(uuid.uuid4(), org_roles={org.id: role}) for role in ORG_ROLES}
    for role in SITE_ROLES:
        actors[f"site:{role}"] = kind(
            uuid.uuid4(), site_roles={site.id: role}, site_orgs={site.id: org.id}
        )
    actors["none"] = kind(uuid.uuid4())
    return actors


class InMemoryLookup:
    """Stands in for the session when deciding on objects that are not in a database:
    oso's relation lookups (`Session.get`) find them here."""

    def __init__(self, objects: list[Any]) -> None:
        self.objects = objects

    def get(self, model: type[Any], key: uuid.UUID) -> object | None:
        for o in self.objects:
            if type(o) is model and o.id == key:
                return o
        return None


def _engine(policy_dir: str | Path, sample: Sample) -> AuthzEngine:
    lookup = InMemoryLookup(sample.objects)
    # Deciding on single objects, oso only follows relations by key: `get` is all it calls.
    return AuthzEngine(policy_dir, session=lambda: cast(Session, lookup))


Matrix = dict[str, dict[str, set[str]]]


def compute(policy_dir: str | Path, kind: type[Principal] = UserActor) -> Matrix:
    """Resource -> permission -> the labels of the `kind` actors allowed. Owned resources
    get extra rows `PERMISSION (creator)`: asked of a resource that actor created."""
    sample = Sample()
    engine = _engine(policy_dir, sample)
    actors = holders(sample.org, sample.site, kind)
    matrix: Matrix = {}
    for name, permissions in declared_permissions(policy_dir).items():
        rows = matrix[name] = {}
        resources = {label: sample.resource(name, actor) for label, actor in actors.items()}
        for permission in permissions:
            rows[permission] = {
                label for label, actor in actors.items()
                if engine.is_allowed(actor, permission, resources[label])
            }
        for permission in OWNED.get(name, ()):
            rows[permission + CREATOR] = {
                label for label, actor in actors.items()
                if engine.is_allowed(actor, permission, sample.created_by(name, actor))
            }
        for permission in ADDRESSED.get(name, ()):
            rows[permission + INVITEE] = {
                label for label, actor in actors.items()
                if engine.is_allowed(*_with(sample.addressed_to(name, actor), permission))
            }
    return matrix


def _scoped(actor: Principal, scope: str) -> Principal:
    """The actor as a token of one OAuth scope (people's and machines' kinds carry one)."""
    return replace(cast(Any, actor), scopes=(scope,))


def scope_ceilings(policy_dir: str | Path) -> Matrix:
    """Resource -> permission -> the OAuth scopes under which a token keeps it: a
    permission some person or machine of the matrix holds (the creator rows asked of its
    own resource) is kept by a scope when every such actor, with a token of that one
    scope, still holds it (policies/scopes.polar)."""
    from app.models.oauth import SCOPES

    sample = Sample()
    engine = _engine(policy_dir, sample)
    actors = [*holders(sample.org, sample.site, UserActor).values(),
              *holders(sample.org, sample.site, ApiClientActor).values()]
    matrix: Matrix = {}
    for name, permissions in declared_permissions(policy_dir).items():
        rows = matrix[name] = {}
        asked = [(p, lambda a, n=name: sample.resource(n, a)) for p in permissions]
        asked += [(p + CREATOR, lambda a, n=name: sample.created_by(n, a))
                  for p in OWNED.get(name, ())]
        for row, resource_of in asked:
            permission = row.removesuffix(CREATOR)
            cases = [(a, resource_of(a)) for a in actors]
            holding = [(a, r) for a, r in cases if engine.is_allowed(a, permission, r)]
            rows[row] = {
                scope for scope in SCOPES
                if holding and all(engine.is_allowed(_scoped(a, scope), permission, r)
                                   for a, r in holding)
            }
    return matrix


# Role ceilings: what each kind of grant is, as the object a grantor is asked about.
GRANTS: dict[str, tuple[tuple[str, ...], Callable[[Sample, str], Any]]] = {
    "org membership": (ORG_ROLES, lambda s, role: OrgMembership(
        id=uuid.uuid4(), org_id=s.org.id, user_id=uuid.uuid4(), role=role)),
    "site membership": (SITE_ROLES, lambda s, role: SiteMembership(
        id=uuid.uuid4(), org_id=s.org.id, site_id=s.site.id, user_id=uuid.uuid4(), role=role)),
    "API key for the organization": (ORG_ROLES, lambda s, role: ApiKey(
        id=uuid.uuid4(), org_id=s.org.id, site_id=None, role=role)),
    "API key for the site": (SITE_ROLES, lambda s, role: ApiKey(
        id=uuid.uuid4(), org_id=s.org.id, site_id=s.site.id, role=role)),
}


def ceilings(policy_dir: str | Path, kind: type[Principal] = UserActor) -> dict[
    str, dict[str, list[str]]
]:
    """Grantor label -> grant -> the roles that grantor (a `kind`) may give (`create`)."""
    sample = Sample()
    grants = {
        grant: [(role, build(sample, role)) for role in roles]
        for grant, (roles, build) in GRANTS.items()
    }
    sample.objects.extend(obj for pairs in grants.values() for _, obj in pairs)
    engine = _engine(policy_dir, sample)
    return {
        label: {
            grant: [role for role, obj in pairs if engine.is_allowed(actor, "create", obj)]
            for grant, pairs in grants.items()
        }
        for label, actor in holders(sample.org, sample.site, kind).items()
    }


def render_markdown(policy_dir: str | Path) -> str:
    by_kind = {name: compute(policy_dir, kind) for name, kind in KINDS.items()}
    sample = Sample()
    columns = [
        (name, label) for name, kind in KINDS.items()
        for label in holders(sample.org, sample.site, kind)
    ]
    lines = [
        "# Permissions",
        "",
        "Generated from `policies/*.polar` by `flask authz matrix`; do not edit by hand.",
        "",
        "Columns come in three groups, one per kind of actor: a **user** (a person signed",
        "in), an **API key** created with that role, an **ingest key** of the site.",
        "`org:ROLE` holds ROLE on the organization, `site:ROLE` on the site only, `none`",
        "holds nothing. `✓`: allowed. A resource an actor may not `read` answers 404; an",
        "action it may not take on a resource it can read answers 403.",
        "",
        "Rows marked *(creator)* are asked of an asset or gallery the actor created itself",
        "(the other rows: of someone else's). `Account` is the actor's own account.",
        "Rows marked *(invitee)* are asked of an invitation to the actor's own address,",
        "verified (an unverified address may do nothing with it).",
        "",
    ]
    header = "| permission | " + " | ".join(f"{kind} {label}" for kind, label in columns) + " |"
    for resource, permissions in by_kind["user"].items():
        lines += [f"## {resource}", "", header, "|---" * (len(columns) + 1) + "|"]
        for permission in permissions:
            cells = [
                "✓" if label in by_kind[kind][resource][permission] else ""
                for kind, label in columns
            ]
            lines.append(f"| `{permission}` | " + " | ".join(cells) + " |")
        lines.append("")
    from app.models.oauth import SCOPES

    lines += [
        "## OAuth scope ceilings",
        "",
        "A token an OAuth client obtained may do what its person (or, with client",
        "credentials, the client's own role) may do AND what one of its scopes allows",
        "(`policies/scopes.polar`). `✓`: a token of that one scope keeps the permission",
        "wherever its holder has it. Tokens without scopes (a login's, an API key's) are",
        "not capped. Permissions no person or API key holds are not listed.",
        "",
        "| resource | permission | " + " | ".join(f"`{s}`" for s in SCOPES) + " |",
        "|---" * (len(SCOPES) + 2) + "|",
    ]
    held = compute(policy_dir, UserActor), compute(policy_dir, ApiClientActor)
    for resource, rows in scope_ceilings(policy_dir).items():
        for permission, scopes in rows.items():
            if not any(m[resource].get(permission) for m in held):
                continue
            lines.append(f"| {resource} | `{permission}` | "
                         + " | ".join("✓" if s in scopes else "" for s in SCOPES) + " |")
    lines += [
        "",
        "## Role ceilings",
        "",
        "Which roles a grantor may give: to a member (a membership) or to a new API key.",
        "Only people give roles, and never one they do not hold there themselves. Actors",
        "not listed may give none: no API key or ingest key appears here.",
        "",
        "| grantor | " + " | ".join(GRANTS) + " |",
        "|---" * (len(GRANTS) + 1) + "|",
    ]
    for name, kind in KINDS.items():
        for label, given in ceilings(policy_dir, kind).items():
            if any(given.values()):
                lines.append(f"| {name} {label} | " + " | ".join(
                    ", ".join(roles) or "none" for roles in given.values()) + " |")
    lines.append("")
    return "\n".join(lines)


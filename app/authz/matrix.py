"""The permission matrix, computed from the loaded policy (not written by hand).

For every resource type, every way an actor can hold a role on it (directly, or through
its organization) and every permission the policy declares for that type, ask Oso. The
result renders `docs/permissions.md`, and the tests compare it with their own table.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from app.authz.actors import ApiClientActor, Principal, UserActor
from app.authz.engine import AuthzEngine
from app.models import (
    ORG_ROLES,
    SITE_ROLES,
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
)

_BLOCK = re.compile(r"resource\s+(\w+)\s*\{(.*?)\n\}", re.S)
_PERMISSIONS = re.compile(r"permissions\s*=\s*\[(.*?)\];", re.S)


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


def _samples() -> dict[str, object]:
    """One resource of each type, all inside the same organization and site."""
    org = Organization(id=uuid.uuid4(), name="org")
    site = Site(id=uuid.uuid4(), org_id=org.id, name="site")
    site.parent = org
    org_member = OrgMembership(id=uuid.uuid4(), org_id=org.id, user_id=uuid.uuid4())
    org_member.organization = org
    site_member = SiteMembership(id=uuid.uuid4(), org_id=org.id, site_id=site.id)
    site_member.site = site
    event = AuditEvent(id=uuid.uuid4(), org_id=org.id)
    event.organization = org
    api_key = ApiKey(id=uuid.uuid4(), org_id=org.id)
    api_key.organization = org
    ingest_key = IngestKey(id=uuid.uuid4(), org_id=org.id, site_id=site.id)
    ingest_key.site = site
    asset = Asset(id=uuid.uuid4(), org_id=org.id, site_id=site.id, created_by=uuid.uuid4())
    asset.site = site
    gallery = Gallery(id=uuid.uuid4(), org_id=org.id, site_id=site.id, created_by=uuid.uuid4())
    gallery.site = site
    item = GalleryItem(id=uuid.uuid4(), org_id=org.id, site_id=site.id, gallery_id=gallery.id)
    item.gallery = gallery
    analytics_event = Event(id=uuid.uuid4(), org_id=org.id, site_id=site.id)
    analytics_event.site = site
    return {
        "Organization": org,
        "Site": site,
        "OrgMembership": org_member,
        "SiteMembership": site_member,
        "AuditEvent": event,
        "ApiKey": api_key,
        "IngestKey": ingest_key,
        "Asset": asset,
        "Gallery": gallery,
        "GalleryItem": item,
        "Event": analytics_event,
    }


def holders(
    org: Organization, site: Site, kind: type[Principal] = UserActor
) -> dict[str, Principal]:
    """Column label -> an actor of `kind` holding that role ("org:" on the organization,
    "site:" on the site only)."""
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

    def __init__(self, objects: list[object]) -> None:
        self.by_key = {(type(o), o.id): o for o in objects}  # type: ignore[attr-defined]

    def get(self, model: type, key: uuid.UUID) -> object | None:
        return self.by_key.get((model, key))


def compute(
    policy_dir: str | Path, kind: type[Principal] = UserActor
) -> dict[str, dict[str, set[str]]]:
    """Resource -> permission -> the role labels whose holder (a `kind`) is allowed."""
    samples = _samples()
    lookup = InMemoryLookup(list(samples.values()))
    engine = AuthzEngine(policy_dir, session=lambda: lookup)  # type: ignore[arg-type,return-value]
    actors = holders(samples["Organization"], samples["Site"], kind)  # type: ignore[arg-type]
    matrix: dict[str, dict[str, set[str]]] = {}
    for resource_name, permissions in declared_permissions(policy_dir).items():
        resource = samples[resource_name]
        matrix[resource_name] = {
            permission: {
                label for label, actor in actors.items()
                if engine.is_allowed(actor, permission, resource)
            }
            for permission in permissions
        }
    return matrix


def render_markdown(policy_dir: str | Path) -> str:
    users = compute(policy_dir, UserActor)
    keys = compute(policy_dir, ApiClientActor)
    labels = list(holders(*list(_samples().values())[:2]).keys())  # type: ignore[arg-type]
    lines = [
        "# Permissions",
        "",
        "Generated from `policies/*.polar` by `flask authz matrix`; do not edit by hand.",
        "`org:ROLE` holds ROLE on the organization; `site:ROLE` holds ROLE on the site only;",
        "`none` holds nothing. `yes`: a user or an API key with that role may; `user`: only",
        "a user may. A resource an actor may not `read` answers 404, an action it may not",
        "take on a resource it can read answers 403. Ingest keys may only send events.",
        "The uploader of an asset may also update, complete and delete it while it may",
        "`upload` to the asset's site; the creator of a gallery may update and delete it",
        "while it may `create_gallery` there. The tables show someone else's asset/gallery.",
        "",
    ]
    for resource, permissions in users.items():
        lines += [f"## {resource}", "", "| permission | " + " | ".join(labels) + " |"]
        lines.append("|---" * (len(labels) + 1) + "|")
        for permission, allowed in permissions.items():
            by_key = keys[resource][permission]
            cells = [
                ("yes" if label in by_key else "user") if label in allowed else ""
                for label in labels
            ]
            lines.append(f"| `{permission}` | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)

"""The permission matrix, computed from the loaded policy (not written by hand).

For every resource type, every way an actor can hold a role on it (directly, or through
its organization) and every permission the policy declares for that type, ask Oso. The
result renders `docs/permissions.md`, and the tests compare it with their own table.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from app.authz.actors import UserActor
from app.authz.engine import AuthzEngine
from app.models import (
    ORG_ROLES,
    SITE_ROLES,
    AuditEvent,
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
    return {
        "Organization": org,
        "Site": site,
        "OrgMembership": org_member,
        "SiteMembership": site_member,
        "AuditEvent": event,
    }


def holders(org: Organization, site: Site) -> dict[str, UserActor]:
    """Column label -> an actor holding that role ("org:" on the organization, "site:" on
    the site only)."""
    actors = {
        f"org:{role}": UserActor(uuid.uuid4(), org_roles={org.id: role}) for role in ORG_ROLES
    }
    for role in SITE_ROLES:
        actors[f"site:{role}"] = UserActor(
            uuid.uuid4(), site_roles={site.id: role}, site_orgs={site.id: org.id}
        )
    actors["none"] = UserActor(uuid.uuid4())
    return actors


class _Samples:
    """Stands in for the session: relation lookups find the sample objects."""

    def __init__(self, objects: dict[str, object]) -> None:
        self.by_key = {(type(o), o.id): o for o in objects.values()}  # type: ignore[attr-defined]

    def get(self, model: type, key: uuid.UUID) -> object | None:
        return self.by_key.get((model, key))


def compute(policy_dir: str | Path) -> dict[str, dict[str, set[str]]]:
    """Resource -> permission -> the set of role labels allowed."""
    samples = _samples()
    lookup = _Samples(samples)
    engine = AuthzEngine(policy_dir, session=lambda: lookup)  # type: ignore[arg-type,return-value]
    actors = holders(samples["Organization"], samples["Site"])  # type: ignore[arg-type]
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
    matrix = compute(policy_dir)
    labels = list(holders(*list(_samples().values())[:2]).keys())  # type: ignore[arg-type]
    lines = [
        "# Permissions",
        "",
        "Generated from `policies/*.polar` by `flask authz matrix`; do not edit by hand.",
        "`org:ROLE` holds ROLE on the organization; `site:ROLE` holds ROLE on the site only;",
        "`none` holds nothing. A resource an actor may not `read` answers 404, an action it",
        "may not take on a resource it can read answers 403.",
        "",
    ]
    for resource, permissions in matrix.items():
        lines += [f"## {resource}", "", "| permission | " + " | ".join(labels) + " |"]
        lines.append("|---" * (len(labels) + 1) + "|")
        for permission, allowed in permissions.items():
            cells = ["yes" if label in allowed else "" for label in labels]
            lines.append(f"| `{permission}` | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)

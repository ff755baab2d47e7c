"""The permission matrix as a reviewer would write it, checked against the policy.

`docs/permissions.md` is rendered from the same decisions (tests/test_docs.py keeps it
fresh), so this table, the policy and the document cannot drift apart.
"""

import pytest

from app.authz.actors import ApiClientActor, UserActor
from app.authz.matrix import compute
from app.config import Settings

pytestmark = pytest.mark.portable

ORG = {"viewer": {"org:viewer", "org:member", "org:site_admin", "org:org_admin"}}
ORG["member"] = ORG["viewer"] - {"org:viewer"}
ORG["site_admin"] = ORG["member"] - {"org:member"}
ORG["org_admin"] = {"org:org_admin"}
SITE = {"viewer": {"site:viewer", "site:member", "site:site_admin"}}
SITE["member"] = SITE["viewer"] - {"site:viewer"}
SITE["site_admin"] = {"site:site_admin"}
ON_SITE = {role: ORG[role] | SITE[role] for role in SITE}  # org roles flow down to sites

# What a user holding each role may do.
EXPECTED = {
    "Organization": {
        "read": ORG["viewer"],
        "update": ORG["org_admin"],
        "delete": ORG["org_admin"],
        "create_site": ORG["org_admin"],
        "list_sites": ORG["viewer"] | SITE["viewer"],
        "list_members": ORG["viewer"],
        "manage_members": ORG["org_admin"],
        "read_audit": ORG["org_admin"],
        "manage_api_keys": ORG["org_admin"],
        "grant_viewer": ORG["viewer"],
        "grant_member": ORG["member"],
        "grant_site_admin": ORG["site_admin"],
        "grant_org_admin": ORG["org_admin"],
    },
    "OrgMembership": {"read": ORG["viewer"]},
    "Site": {
        "read": ON_SITE["viewer"],
        "update": ON_SITE["site_admin"],
        "delete": ORG["org_admin"],
        "list_members": ON_SITE["viewer"],
        "manage_members": ON_SITE["site_admin"],
        "manage_ingest_keys": ON_SITE["site_admin"],
        "upload": ON_SITE["member"],
        "create_gallery": ON_SITE["member"],
        "read_events": ON_SITE["member"],
        "write_events": set(),  # keys only: see test_event_writers
        "grant_viewer": ON_SITE["viewer"],
        "grant_member": ON_SITE["member"],
        "grant_site_admin": ON_SITE["site_admin"],
    },
    "SiteMembership": {"read": ON_SITE["viewer"]},
    "AuditEvent": {"read": ORG["org_admin"]},
    "ApiKey": {"read": ORG["org_admin"], "revoke": ORG["org_admin"]},
    "IngestKey": {"read": ON_SITE["site_admin"], "revoke": ON_SITE["site_admin"]},
    # Someone else's asset: the uploader's own rights are in test_asset_ownership.
    "Asset": {
        "read": ON_SITE["viewer"],
        "update": ON_SITE["site_admin"],
        "delete": ON_SITE["site_admin"],
        "complete": ON_SITE["site_admin"],
    },
    "Gallery": {
        "read": ON_SITE["viewer"],
        "update": ON_SITE["site_admin"],
        "delete": ON_SITE["site_admin"],
        "restore": ON_SITE["site_admin"],
    },
    "GalleryItem": {"read": ON_SITE["viewer"]},
    "Event": {"read": ON_SITE["member"]},
}

# Key management stays with people: an API key with the same role may not.
USER_ONLY = {
    ("Organization", "manage_api_keys"),
    ("Site", "manage_ingest_keys"),
    ("Site", "upload"),
    ("Site", "create_gallery"),
    ("ApiKey", "read"),
    ("ApiKey", "revoke"),
    ("IngestKey", "read"),
    ("IngestKey", "revoke"),
}


def test_users_get_exactly_the_table():
    assert compute(Settings().policy_dir, UserActor) == EXPECTED


# What an API key writes that a user does not: events.
KEY_ONLY = {("Site", "write_events"): ON_SITE["member"]}


def test_api_keys_get_the_table_minus_key_management():
    expected = {
        resource: {
            perm: set() if (resource, perm) in USER_ONLY
            else KEY_ONLY.get((resource, perm), allowed)
            for perm, allowed in perms.items()
        }
        for resource, perms in EXPECTED.items()
    }
    assert compute(Settings().policy_dir, ApiClientActor) == expected


def test_nobody_without_a_role_gets_anything():
    for kind in (UserActor, ApiClientActor):
        matrix = compute(Settings().policy_dir, kind)
        assert all("none" not in allowed for perms in matrix.values() for allowed in perms.values())


OWNED = {"Asset": {"update", "delete", "complete"}, "Gallery": {"update", "delete"}}


@pytest.mark.parametrize("model_name", sorted(OWNED))
@pytest.mark.parametrize(
    ("site_role", "keeps_rights"), [("viewer", False), ("member", True), ("site_admin", True)]
)
def test_creators_change_what_they_created(model_name, site_role, keeps_rights):
    """The creator changes its own asset or gallery only while it may still create one."""
    import uuid

    from app import models
    from app.authz.engine import AuthzEngine
    from app.authz.matrix import InMemoryLookup

    org = models.Organization(id=uuid.uuid4())
    site = models.Site(id=uuid.uuid4(), org_id=org.id)
    site.parent = org
    creator = UserActor(uuid.uuid4(), site_roles={site.id: site_role}, site_orgs={site.id: org.id})
    owned = getattr(models, model_name)(
        id=uuid.uuid4(), org_id=org.id, site_id=site.id, created_by=creator.id
    )
    owned.site = site
    lookup = InMemoryLookup([org, site])
    engine = AuthzEngine(Settings().policy_dir, session=lambda: lookup)
    granted = {a for a in OWNED[model_name] if engine.is_allowed(creator, a, owned)}
    assert granted == (OWNED[model_name] if keeps_rights else set())


def test_event_writers():
    """An ingest key writes to its own site only and holds nothing else."""
    import uuid

    from app.authz.actors import IngestClientActor
    from app.authz.engine import AuthzEngine
    from app.authz.matrix import InMemoryLookup
    from app.models import Organization, Site

    org = Organization(id=uuid.uuid4())
    site, other = (Site(id=uuid.uuid4(), org_id=org.id) for _ in range(2))
    key = IngestClientActor(uuid.uuid4(), site_id=site.id, site_orgs={site.id: org.id})
    lookup = InMemoryLookup([org, site, other])
    engine = AuthzEngine(Settings().policy_dir, session=lambda: lookup)
    assert engine.is_allowed(key, "write_events", site)
    assert not engine.is_allowed(key, "write_events", other)
    assert not any(engine.is_allowed(key, p, site) for p in ("read", "read_events", "upload"))

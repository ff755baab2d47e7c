"""The permission matrix as a reviewer would write it, checked against the policy.

`docs/permissions.md` is rendered from the same decisions (tests/test_docs.py keeps it
fresh), so this table, the policy and the document cannot drift apart.
"""

import pytest

from app.authz.actors import ApiClientActor, IngestClientActor, UserActor
from app.authz.matrix import ceilings, compute
from app.config import Settings
from app.models import ORG_ROLES, SITE_ROLES

ORG = {"viewer": {"org:viewer", "org:member", "org:site_admin", "org:org_admin"}}
ORG["member"] = ORG["viewer"] - {"org:viewer"}
ORG["site_admin"] = ORG["member"] - {"org:member"}
ORG["org_admin"] = {"org:org_admin"}
SITE = {"viewer": {"site:viewer", "site:member", "site:site_admin"}}
SITE["member"] = SITE["viewer"] - {"site:viewer"}
SITE["site_admin"] = {"site:site_admin"}
ON_SITE = {role: ORG[role] | SITE[role] for role in SITE}  # org roles flow down to sites

ANY = ORG["viewer"] | SITE["viewer"] | {"none"}  # every user, whatever it holds

# What a user holding each role may do.
EXPECTED = {
    "Account": {  # the actor's own
        "read": ANY,
        "read_profile": ANY,
        "manage": ANY,
        "create_organization": ANY,
    },
    "Organization": {
        "access": ORG["viewer"] | SITE["viewer"],
        "read": ORG["viewer"],
        "update": ORG["org_admin"],
        "delete": ORG["org_admin"],
        "create_site": ORG["org_admin"],
        "list_sites": ORG["viewer"] | SITE["viewer"],
        "list_members": ORG["viewer"],
        "manage_members": ORG["org_admin"],
        "read_audit": ORG["org_admin"],
        "manage_api_keys": ORG["org_admin"],
        "manage_oauth_clients": ORG["org_admin"],
    },
    # Someone else's membership, with the lowest role (the ceilings are tested below).
    "OrgMembership": {
        "read": ORG["viewer"],
        "create": ORG["org_admin"],
        "update": ORG["org_admin"],
        "delete": ORG["org_admin"],
    },
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
    },
    "SiteMembership": {
        "read": ON_SITE["viewer"],
        "create": ON_SITE["site_admin"],
        "update": ON_SITE["site_admin"],
        "delete": ON_SITE["site_admin"],
    },
    "AuditEvent": {"read": ORG["org_admin"]},
    "ApiKey": {"read": ORG["org_admin"], "create": ORG["org_admin"], "revoke": ORG["org_admin"]},
    # The sample client holds no role: any org_admin may register it.
    "OAuthClient": {"read": ORG["org_admin"], "create": ORG["org_admin"],
                    "update": ORG["org_admin"], "rotate_secret": ORG["org_admin"],
                    "revoke": ORG["org_admin"]},
    "IngestKey": {
        "read": ON_SITE["site_admin"],
        "create": ON_SITE["site_admin"],
        "revoke": ON_SITE["site_admin"],
    },
    # Someone else's asset; the creator rows ask of the actor's own.
    "Asset": {
        "read": ON_SITE["viewer"],
        "update": ON_SITE["site_admin"],
        "delete": ON_SITE["site_admin"],
        "complete": ON_SITE["site_admin"],
        "update (creator)": ON_SITE["member"],
        "delete (creator)": ON_SITE["member"],
        "complete (creator)": ON_SITE["member"],
    },
    "Gallery": {
        "read": ON_SITE["viewer"],
        "update": ON_SITE["site_admin"],
        "delete": ON_SITE["site_admin"],
        "restore": ON_SITE["site_admin"],
        "update (creator)": ON_SITE["member"],
        "delete (creator)": ON_SITE["member"],
    },
    "GalleryItem": {"read": ON_SITE["viewer"]},
    "Event": {"read": ON_SITE["member"]},
    # An open invitation of the organization to someone else's address: its admins manage
    # it; only the verified owner of the address answers it (tests/api/test_members.py).
    "Invitation": {
        "read": ORG["org_admin"],
        "resend": ORG["org_admin"],
        "revoke": ORG["org_admin"],
        "accept": set(),
        "decline": set(),
        "read (invitee)": ANY,  # whatever it holds: the address decides
        "accept (invitee)": ANY,
        "decline (invitee)": ANY,
    },
}

# Power stays with people (policies/base.polar): an API key with the same role may not
# make a credential, give a role, or delete an organization or a site; it has no account.
USER_ONLY = {
    ("Account", "read_profile"),
    ("Account", "manage"),
    ("Account", "create_organization"),
    ("Organization", "delete"),
    ("Organization", "manage_members"),
    ("Organization", "manage_api_keys"),
    ("Organization", "manage_oauth_clients"),
    ("OrgMembership", "create"),
    ("OrgMembership", "update"),
    ("OrgMembership", "delete"),
    ("Site", "delete"),
    ("Site", "manage_members"),
    ("Site", "manage_ingest_keys"),
    ("Site", "upload"),
    ("Site", "create_gallery"),
    ("SiteMembership", "create"),
    ("SiteMembership", "update"),
    ("SiteMembership", "delete"),
    ("ApiKey", "read"),
    ("ApiKey", "create"),
    ("ApiKey", "revoke"),
    ("OAuthClient", "read"),
    ("OAuthClient", "create"),
    ("OAuthClient", "update"),
    ("OAuthClient", "rotate_secret"),
    ("OAuthClient", "revoke"),
    ("IngestKey", "read"),
    ("IngestKey", "create"),
    ("IngestKey", "revoke"),
    ("Invitation", "read"),
    ("Invitation", "resend"),
    ("Invitation", "revoke"),
    ("Invitation", "read (invitee)"),  # a key has no address
    ("Invitation", "accept (invitee)"),
    ("Invitation", "decline (invitee)"),
    # The creator rules name people: a key's rights on an asset or gallery are its role's.
    ("Asset", "update (creator)"),
    ("Asset", "delete (creator)"),
    ("Asset", "complete (creator)"),
    ("Gallery", "update (creator)"),
    ("Gallery", "delete (creator)"),
}
KEY_CREATOR_ROWS = {
    ("Asset", "update (creator)"): "update",
    ("Asset", "delete (creator)"): "delete",
    ("Asset", "complete (creator)"): "complete",
    ("Gallery", "update (creator)"): "update",
    ("Gallery", "delete (creator)"): "delete",
}


def test_users_get_exactly_the_table():
    assert compute(Settings().policy_dir, UserActor) == EXPECTED


# What an API key does that a user does not: writing events, to the one site it is for.
KEY_ONLY = {("Site", "write_events"): SITE["member"]}
# Every actor sees itself.
KEY_SELF = {("Account", "read"): ANY}


def test_api_keys_get_the_table_minus_what_is_for_people():
    expected = {
        resource: {
            perm: (
                allowed & EXPECTED[resource][KEY_CREATOR_ROWS[(resource, perm)]]
                if (resource, perm) in KEY_CREATOR_ROWS
                else set() if (resource, perm) in USER_ONLY
                else KEY_ONLY.get((resource, perm), KEY_SELF.get((resource, perm), allowed))
            )
            for perm, allowed in perms.items()
        }
        for resource, perms in EXPECTED.items()
    }
    assert compute(Settings().policy_dir, ApiClientActor) == expected


def test_ingest_keys_write_events_to_their_site_and_see_only_themselves():
    matrix = compute(Settings().policy_dir, IngestClientActor)
    granted = {
        (resource, perm)
        for resource, perms in matrix.items()
        for perm, allowed in perms.items()
        if allowed
    }
    assert granted == {("Site", "write_events"), ("Account", "read")}


def test_nobody_without_a_role_gets_anything_but_its_own_account():
    """...and the invitations to its own verified address, which it holds no role for."""
    for kind in (UserActor, ApiClientActor):
        matrix = compute(Settings().policy_dir, kind)
        assert all(
            "none" not in allowed
            for resource, perms in matrix.items() if resource != "Account"
            for perm, allowed in perms.items() if not perm.endswith("(invitee)")
        )


# Role ceilings: who may give which role. Only people; never a role they do not hold.
CEILINGS = {
    "org:org_admin": {
        "org membership": list(ORG_ROLES),
        "site membership": list(SITE_ROLES),
        "API key for the organization": list(ORG_ROLES),
        "API key for the site": list(SITE_ROLES),
    },
    "org:site_admin": {
        "org membership": [],
        "site membership": list(SITE_ROLES),
        "API key for the organization": [],
        "API key for the site": [],
    },
    "site:site_admin": {
        "org membership": [],
        "site membership": list(SITE_ROLES),
        "API key for the organization": [],
        "API key for the site": [],
    },
}


def test_role_ceilings():
    given = ceilings(Settings().policy_dir, UserActor)
    nothing = {grant: [] for grant in CEILINGS["org:org_admin"]}
    assert given == {label: CEILINGS.get(label, nothing) for label in given}
    for kind in (ApiClientActor, IngestClientActor):
        assert not any(
            roles for grants in ceilings(Settings().policy_dir, kind).values()
            for roles in grants.values()
        )


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


def test_oauth_scopes_are_ceilings_as_the_table_says():
    """policies/scopes.polar, as docs/permissions.md shows it: `read` reads, `write` also
    changes content, `admin` is everything, `events:write` only sends events."""
    from app.authz.matrix import scope_ceilings

    table = scope_ceilings(Settings().policy_dir)
    assert table["Site"]["read"] == {"read", "write", "admin"}
    assert table["Site"]["upload"] == {"write", "admin"}
    assert table["Site"]["write_events"] == {"events:write", "admin"}
    assert table["Gallery"]["update (creator)"] == {"write", "admin"}
    assert table["Account"]["read_profile"] == {"read", "write", "admin"}  # GET /v1/me
    # Power stays behind `admin`: credentials, roles, deletion of tenants, settings.
    powers = ("Organization", "OrgMembership", "SiteMembership", "ApiKey", "IngestKey",
              "OAuthClient", "Account")
    for resource, permission in USER_ONLY | {("Organization", "update"), ("Site", "update")}:
        site_power = resource == "Site" and permission.startswith(("delete", "manage", "update"))
        if permission not in ("read", "read_profile") and (resource in powers or site_power):
            assert table[resource][permission] <= {"admin"}, (resource, permission)

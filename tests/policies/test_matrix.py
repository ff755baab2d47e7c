"""The permission matrix as a reviewer would write it, checked against the policy.

`docs/permissions.md` is rendered from the same decisions (tests/test_docs.py keeps it
fresh), so this table, the policy and the document cannot drift apart.
"""

import pytest

from app.authz.matrix import compute
from app.config import Settings

pytestmark = pytest.mark.portable

ORG_VIEWER_UP = {"org:viewer", "org:member", "org:site_admin", "org:org_admin"}
SITE_VIEWER_UP = {"site:viewer", "site:member", "site:site_admin"}
ORG_ADMIN = {"org:org_admin"}
SITE_ADMINS = {"org:site_admin", "org:org_admin", "site:site_admin"}

EXPECTED = {
    "Organization": {
        "read": ORG_VIEWER_UP,
        "update": ORG_ADMIN,
        "delete": ORG_ADMIN,
        "create_site": ORG_ADMIN,
        "list_sites": ORG_VIEWER_UP | SITE_VIEWER_UP,
        "list_members": ORG_VIEWER_UP,
        "manage_members": ORG_ADMIN,
        "read_audit": ORG_ADMIN,
    },
    "OrgMembership": {"read": ORG_VIEWER_UP},
    "Site": {
        "read": ORG_VIEWER_UP | SITE_VIEWER_UP,
        "update": SITE_ADMINS,
        "delete": ORG_ADMIN,
        "list_members": ORG_VIEWER_UP | SITE_VIEWER_UP,
        "manage_members": SITE_ADMINS,
    },
    "SiteMembership": {"read": ORG_VIEWER_UP | SITE_VIEWER_UP},
    "AuditEvent": {"read": ORG_ADMIN},
}


def test_policy_matches_the_permission_table():
    assert compute(Settings().policy_dir) == EXPECTED


def test_nobody_without_a_role_gets_anything():
    matrix = compute(Settings().policy_dir)
    assert all("none" not in allowed for perms in matrix.values() for allowed in perms.values())

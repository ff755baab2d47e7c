# Organizations: the tenant. Roles are granted by org memberships.

resource Organization {
  # "guest" is never granted: it is held by whoever has a role on one of the
  # organization's sites and none on the organization itself.
  roles = ["guest", "viewer", "member", "site_admin", "org_admin"];
  permissions = [
    "access",          # any role in it: the request may enter its rows (else 404)
    "read",            # see the organization
    "update",          # rename it
    "delete",          # soft-delete it: people only
    "create_site",
    "list_sites",      # list the sites of the organization the actor may read
    "list_members",
    "manage_members",  # add, change the role of, or remove org members: people only
    "read_audit",      # the audit log of the organization
    "manage_api_keys", "manage_oauth_clients", # API keys, OAuth clients: people only
  ];

  "guest" if "viewer";
  "viewer" if "member";
  "member" if "site_admin";
  "site_admin" if "org_admin";

  "access" if "guest";
  "list_sites" if "guest";
  "read" if "viewer";
  "list_members" if "viewer";
  "update" if "org_admin";
  "create_site" if "org_admin";
  "read_audit" if "org_admin";
}

# The actor's org grants are loaded once per request (see UserActor.org_ids).
has_role(user: User, role: String, org: Organization) if
  org.id in user.org_ids(role);

has_role(user: User, "guest", org: Organization) if
  org.id in user.guest_org_ids();

has_role(client: ApiClient, role: String, org: Organization) if
  org.id in client.org_ids(role);

has_role(client: ApiClient, "guest", org: Organization) if
  org.id in client.guest_org_ids();

# People only (see base.polar): an org_admin API key cannot do these.
has_permission(user: User, "delete", org: Organization) if
  has_role(user, "org_admin", org);

has_permission(user: User, "manage_members", org: Organization) if
  has_role(user, "org_admin", org);

has_permission(user: User, "manage_api_keys", org: Organization) if
  has_role(user, "org_admin", org);


# Org memberships: readable by whoever may list the organization's members. A role is
# given only by someone who manages the members and holds that role there itself (a
# ceiling): `create` and `update` are asked of the membership as it would be afterwards.

resource OrgMembership {
  permissions = ["read", "create", "update", "delete"];
  relations = { organization: Organization };

  "read" if "list_members" on "organization";
  "delete" if "manage_members" on "organization";
}

has_relation(org: Organization, "organization", membership: OrgMembership) if
  membership.organization = org;

has_permission(user: User, action: String, membership: OrgMembership) if
  action in ["create", "update"] and
  role in ["viewer", "member", "site_admin", "org_admin"] and
  membership.role = role and
  org matches Organization and
  has_relation(org, "organization", membership) and
  has_permission(user, "manage_members", org) and
  has_role(user, role, org);

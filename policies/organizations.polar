# Organizations: the tenant. Roles are granted by org memberships.

resource Organization {
  # "guest" is never granted: it is held by whoever has a role on one of the
  # organization's sites and none on the organization itself.
  roles = ["guest", "viewer", "member", "site_admin", "org_admin"];
  permissions = [
    "read",            # see the organization
    "update",          # rename it
    "delete",          # soft-delete it
    "create_site",
    "list_sites",      # list the sites of the organization the actor may read
    "list_members",
    "manage_members",  # add, change the role of, or remove org members
    "read_audit",      # the audit log of the organization
    "manage_api_keys", # users only: see has_permission below
    # Role ceilings: whoever grants a role (to a member or an API key) must hold it.
    "grant_viewer", "grant_member", "grant_site_admin", "grant_org_admin"
  ];

  "guest" if "viewer";
  "viewer" if "member";
  "member" if "site_admin";
  "site_admin" if "org_admin";

  "list_sites" if "guest";
  "read" if "viewer";
  "list_members" if "viewer";
  "update" if "org_admin";
  "delete" if "org_admin";
  "create_site" if "org_admin";
  "manage_members" if "org_admin";
  "read_audit" if "org_admin";

  "grant_viewer" if "viewer";
  "grant_member" if "member";
  "grant_site_admin" if "site_admin";
  "grant_org_admin" if "org_admin";
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

# Keys create keys only through a person: a leaked key cannot mint its successors.
has_permission(user: User, "manage_api_keys", org: Organization) if
  has_role(user, "org_admin", org);


# Org memberships are readable by whoever may list the organization's members.

resource OrgMembership {
  permissions = ["read"];
  relations = { organization: Organization };

  "read" if "list_members" on "organization";
}

has_relation(org: Organization, "organization", membership: OrgMembership) if
  membership.organization = org;

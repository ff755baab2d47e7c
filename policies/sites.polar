# Sites belong to one organization. Site roles stop at site_admin: deleting a site is
# an organization decision.

resource Site {
  roles = ["viewer", "member", "site_admin"];
  permissions = [
    "read",
    "update",
    "delete",             # people only: an org_admin
    "list_members",
    "manage_members",     # grant, change or remove site roles: people only
    "manage_ingest_keys", # people only
    "upload",             # people only: create assets (see assets.polar)
    "create_gallery",     # people only: see galleries.polar
    "read_events",
    "write_events",       # keys only: see events.polar
  ];
  relations = { parent: Organization };

  "viewer" if "member";
  "member" if "site_admin";

  # Organization roles flow down to every site of the organization.
  "viewer" if "viewer" on "parent";
  "member" if "member" on "parent";
  "site_admin" if "site_admin" on "parent";

  "read" if "viewer";
  "list_members" if "viewer";
  "update" if "site_admin";
  "read_events" if "member";
}

has_role(user: User, role: String, site: Site) if
  site.id in user.site_ids(role);

has_role(client: ApiClient, role: String, site: Site) if
  site.id in client.site_ids(role);

has_relation(org: Organization, "parent", site: Site) if
  site.parent = org;

# People only (see base.polar).
has_permission(user: User, "delete", site: Site) if
  org matches Organization and
  has_relation(org, "parent", site) and
  has_role(user, "org_admin", org);

has_permission(user: User, "manage_members", site: Site) if
  has_role(user, "site_admin", site);

has_permission(user: User, "manage_ingest_keys", site: Site) if
  has_role(user, "site_admin", site);

# Uploads and galleries are owned by a person (see assets.polar, galleries.polar).
has_permission(user: User, "upload", site: Site) if
  has_role(user, "member", site);

has_permission(user: User, "create_gallery", site: Site) if
  has_role(user, "member", site);


# Site memberships: as org memberships (organizations.polar), on one site; a site role
# stops at site_admin.

resource SiteMembership {
  permissions = ["read", "create", "update", "delete"];
  relations = { site: Site };

  "read" if "list_members" on "site";
  "delete" if "manage_members" on "site";
}

has_relation(site: Site, "site", membership: SiteMembership) if
  membership.site = site;

has_permission(user: User, action: String, membership: SiteMembership) if
  action in ["create", "update"] and
  role in ["viewer", "member", "site_admin"] and
  membership.role = role and
  site matches Site and
  has_relation(site, "site", membership) and
  has_permission(user, "manage_members", site) and
  has_role(user, role, site);

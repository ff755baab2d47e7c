# Sites belong to one organization. Site roles stop at site_admin: deleting a site is
# an organization decision.

resource Site {
  roles = ["viewer", "member", "site_admin"];
  permissions = [
    "read",
    "update",
    "delete",
    "list_members",
    "manage_members",  # grant, change or remove site roles (at most site_admin)
    "manage_ingest_keys", # users only: see has_permission below
    "upload",          # users only: create assets (see assets.polar)
    "create_gallery",  # users only: see galleries.polar
    "read_events",
    "write_events",    # keys only: see events.polar
    # Role ceilings, as on organizations.
    "grant_viewer", "grant_member", "grant_site_admin"
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
  "manage_members" if "site_admin";
  "read_events" if "member";
  "delete" if "org_admin" on "parent";

  "grant_viewer" if "viewer";
  "grant_member" if "member";
  "grant_site_admin" if "site_admin";
}

has_role(user: User, role: String, site: Site) if
  site.id in user.site_ids(role);

has_role(client: ApiClient, role: String, site: Site) if
  site.id in client.site_ids(role);

has_permission(user: User, "manage_ingest_keys", site: Site) if
  has_role(user, "site_admin", site);

# Uploads and galleries are owned by a person (see assets.polar, galleries.polar), so
# keys do not create them.
has_permission(user: User, "upload", site: Site) if
  has_role(user, "member", site);

has_permission(user: User, "create_gallery", site: Site) if
  has_role(user, "member", site);

has_relation(org: Organization, "parent", site: Site) if
  site.parent = org;


# Site memberships are readable by whoever may list the site's members.

resource SiteMembership {
  permissions = ["read"];
  relations = { site: Site };

  "read" if "list_members" on "site";
}

has_relation(site: Site, "site", membership: SiteMembership) if
  membership.site = site;

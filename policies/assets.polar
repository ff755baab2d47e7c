# Assets: files uploaded to a site. Every site viewer reads them; a member uploads; the
# uploader (while still a member) or a site_admin changes, completes and deletes them.

resource Asset {
  permissions = ["read", "update", "delete", "complete"];
  relations = { site: Site };

  "read" if "viewer" on "site";
  "update" if "site_admin" on "site";
  "delete" if "site_admin" on "site";
  "complete" if "site_admin" on "site";
}

has_relation(site: Site, "site", asset: Asset) if
  asset.site = site;

has_permission(user: User, action: String, asset: Asset) if
  action in ["update", "delete", "complete"] and
  asset.created_by = user.id and
  site matches Site and
  has_relation(site, "site", asset) and
  has_permission(user, "upload", site);

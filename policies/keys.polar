# API keys (machine clients) and ingest keys (browsers). Only people manage keys:
# org_admins the API keys of their organization, site_admins the ingest keys of their
# site (see "manage_api_keys" and "manage_ingest_keys").

resource ApiKey {
  permissions = ["read", "create", "revoke"];
  relations = { organization: Organization, site: Site };

  "read" if "manage_api_keys" on "organization";
  "revoke" if "manage_api_keys" on "organization";
}

has_relation(org: Organization, "organization", key: ApiKey) if
  key.organization = org;

has_relation(site: Site, "site", key: ApiKey) if
  key.site = site;

# A new key holds a role no higher than its creator's (a ceiling), on the whole
# organization or on one of its sites. Like every `create`, it is asked of the key as it
# would be, before it exists: never a list filter.
has_permission(user: User, "create", key: ApiKey) if
  role in ["viewer", "member", "site_admin", "org_admin"] and
  key.role = role and
  key.site_id = nil and
  org matches Organization and
  has_relation(org, "organization", key) and
  has_permission(user, "manage_api_keys", org) and
  has_role(user, role, org);

has_permission(user: User, "create", key: ApiKey) if
  role in ["viewer", "member", "site_admin"] and
  key.role = role and
  org matches Organization and
  has_relation(org, "organization", key) and
  has_permission(user, "manage_api_keys", org) and
  site matches Site and
  has_relation(site, "site", key) and
  has_role(user, role, site);


resource IngestKey {
  permissions = ["read", "create", "revoke"];
  relations = { site: Site };

  "read" if "manage_ingest_keys" on "site";
  "create" if "manage_ingest_keys" on "site";
  "revoke" if "manage_ingest_keys" on "site";
}

has_relation(site: Site, "site", key: IngestKey) if
  key.site = site;

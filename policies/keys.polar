# API keys (machine clients) and ingest keys (browsers). Only people manage keys:
# org_admins the API keys of their organization, site_admins the ingest keys of their
# site (see "manage_api_keys" and "manage_ingest_keys").

resource ApiKey {
  permissions = ["read", "revoke"];
  relations = { organization: Organization };

  "read" if "manage_api_keys" on "organization";
  "revoke" if "manage_api_keys" on "organization";
}

has_relation(org: Organization, "organization", key: ApiKey) if
  key.organization = org;


resource IngestKey {
  permissions = ["read", "revoke"];
  relations = { site: Site };

  "read" if "manage_ingest_keys" on "site";
  "revoke" if "manage_ingest_keys" on "site";
}

has_relation(site: Site, "site", key: IngestKey) if
  key.site = site;

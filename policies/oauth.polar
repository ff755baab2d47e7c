# OAuth clients: third-party applications an organization registers. Only people manage
# them: the org_admins of the organization (see "manage_oauth_clients"), so a leaked key
# or token can never register a client that would mint more tokens.

resource OAuthClient {
  permissions = ["read", "create", "update", "rotate_secret", "revoke"];
  relations = { organization: Organization, site: Site };

  "read" if "manage_oauth_clients" on "organization";
  "update" if "manage_oauth_clients" on "organization";
  "rotate_secret" if "manage_oauth_clients" on "organization";
  "revoke" if "manage_oauth_clients" on "organization";
}

has_relation(org: Organization, "organization", client: OAuthClient) if
  client.organization = org;

has_relation(site: Site, "site", client: OAuthClient) if
  client.site = site;

has_permission(user: User, "manage_oauth_clients", org: Organization) if
  has_role(user, "org_admin", org);

# A client that only acts for people holds no role of its own.
has_permission(user: User, "create", client: OAuthClient) if
  client.role = nil and
  org matches Organization and
  has_relation(org, "organization", client) and
  has_permission(user, "manage_oauth_clients", org);

# A client's own role (client credentials) is capped like an API key's: no higher than
# its creator's, on the whole organization or on one of its sites. Asked of the client as
# it would be, before it exists: never a list filter.
has_permission(user: User, "create", client: OAuthClient) if
  role in ["viewer", "member", "site_admin", "org_admin"] and
  client.role = role and
  client.site_id = nil and
  org matches Organization and
  has_relation(org, "organization", client) and
  has_permission(user, "manage_oauth_clients", org) and
  has_role(user, role, org);

has_permission(user: User, "create", client: OAuthClient) if
  role in ["viewer", "member", "site_admin"] and
  client.role = role and
  org matches Organization and
  has_relation(org, "organization", client) and
  has_permission(user, "manage_oauth_clients", org) and
  site matches Site and
  has_relation(site, "site", client) and
  has_role(user, role, site);

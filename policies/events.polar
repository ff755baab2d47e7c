# Events: browsers (ingest keys) and machines (site-scoped API keys with at least the
# member role) write them; members of the site read them. The key alone decides the
# site a batch is written to.

resource Event {
  permissions = ["read"];
  relations = { site: Site };

  "read" if "read_events" on "site";
}

has_relation(site: Site, "site", event: Event) if
  event.site = site;

# An ingest key writes to the one site it was created for, and does nothing else.
has_permission(client: IngestClient, "write_events", site: Site) if
  site.id = client.site_id;

# A site-scoped API key writes to its own site. An organization-wide key does not: a
# batch names no site, and such a key has no site of its own.
has_permission(client: ApiClient, "write_events", site: Site) if
  site.id in client.scoped_site_ids() and
  has_role(client, "member", site);

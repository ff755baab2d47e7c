# OAuth scopes are ceilings. A token an OAuth client obtained may do what its person may
# do (or, with client credentials, what the client's own role allows) AND what one of the
# token's scopes allows (see base.polar's `allow`). A token without scopes (a login's, an
# API key's, an ingest key's: `actor.scopes` is nil) is not capped.
#
#   read          see what the actor may see
#   write         read, and change content: uploads, assets, galleries
#   admin         everything the actor may do: members, keys, clients, sites, deletion
#   events:write  send events to a site

scope_allows(actor: Actor, _action: String, _resource) if
  actor.scopes = nil;

scope_allows(actor: Actor, _action: String, _resource) if
  actor.scopes != nil and "admin" in actor.scopes;

# Reading, which both `read` and `write` allow.
reading(action: String) if
  action in ["access", "read", "read_profile", "list_sites", "list_members", "read_events"];

scope_allows(actor: Actor, action: String, _resource) if
  actor.scopes != nil and "read" in actor.scopes and reading(action);

scope_allows(actor: Actor, action: String, _resource) if
  actor.scopes != nil and "write" in actor.scopes and reading(action);

scope_allows(actor: Actor, action: String, _site: Site) if
  actor.scopes != nil and "write" in actor.scopes and action in ["upload", "create_gallery"];

scope_allows(actor: Actor, action: String, _asset: Asset) if
  actor.scopes != nil and "write" in actor.scopes and
  action in ["update", "delete", "complete"];

scope_allows(actor: Actor, action: String, _gallery: Gallery) if
  actor.scopes != nil and "write" in actor.scopes and
  action in ["update", "delete", "restore"];

scope_allows(actor: Actor, action: String, _resource) if
  actor.scopes != nil and "events:write" in actor.scopes and
  action in ["access", "write_events"];

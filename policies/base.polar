# Entry point and actors. Everything an actor may do is a permission granted in a
# resource block (organizations.polar, sites.polar, ...); nothing else is allowed.
#
# Role hierarchy: org_admin > site_admin > member > viewer.
# A role on an organization applies to all of its sites; a role on a site applies to
# that site only; the effective role is the higher of the two.
#
# Power stays with people. Whatever makes a credential (API keys, ingest keys), gives a
# role (members) or destroys a tenant (deleting an organization or a site) is granted to
# `User` only, by name, so a leaked key can never mint its successor, add a person, or
# lock the owners out. Keys get the rest of their role through the shorthand rules.

# A person with a login session.
actor User {}

# A machine client with an API key, or an OAuth client acting with its own role (client
# credentials): it holds that one role, on its organization or one of its sites.
actor ApiClient {}

# A browser with an ingest key: no role at all; it may only send events to its site.
actor IngestClient {}

# What a token's OAuth scopes allow caps every permission (scopes.polar). Asked first:
# it reads no grant, so what a scope refuses is refused before any grant is looked at.
allow(actor, action, resource) if
  scope_allows(actor, action, resource) and
  has_permission(actor, action, resource);

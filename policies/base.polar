# Entry point and actors. Everything an actor may do is a permission granted in a
# resource block (organizations.polar, sites.polar, ...); nothing else is allowed.
#
# Role hierarchy: org_admin > site_admin > member > viewer.
# A role on an organization applies to all of its sites; a role on a site applies to
# that site only; the effective role is the higher of the two.

# A person with a login session.
actor User {}

# A machine client with an API key: it holds the one role its key was created with, on
# the key's organization or site, and is otherwise treated like a user.
actor ApiClient {}

# A browser with an ingest key: no role at all; it may only send events to its site.
actor IngestClient {}

allow(actor, action, resource) if
  has_permission(actor, action, resource);

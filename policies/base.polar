# Entry point and actors. Everything an actor may do is a permission granted in a
# resource block (organizations.polar, sites.polar, ...); nothing else is allowed.
#
# Role hierarchy: org_admin > site_admin > member > viewer.
# A role on an organization applies to all of its sites; a role on a site applies to
# that site only; the effective role is the higher of the two.

actor User {}

allow(actor, action, resource) if
  has_permission(actor, action, resource);

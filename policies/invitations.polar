# Invitations: a role offered to an email address. The role is granted only when the
# owner of that address, signed in and verified, accepts: an account that merely claims
# the address (unverified) can neither see nor answer it. Inviting is adding a member by
# another name, under the same ceilings (organizations.polar, sites.polar).

resource Invitation {
  permissions = ["read", "create", "resend", "revoke", "accept", "decline"];
  relations = { organization: Organization, site: Site };

  # Who manages the members of the place: org invitations by org_admins, site ones
  # also by that site's site_admins.
  "read" if "manage_members" on "organization";
  "resend" if "manage_members" on "organization";
  "revoke" if "manage_members" on "organization";
  "read" if "manage_members" on "site";
  "resend" if "manage_members" on "site";
  "revoke" if "manage_members" on "site";
}

has_relation(org: Organization, "organization", invitation: Invitation) if
  invitation.organization = org;

has_relation(site: Site, "site", invitation: Invitation) if
  invitation.site = site;

# A role on the organization: as creating an OrgMembership.
has_permission(user: User, "create", invitation: Invitation) if
  role in ["viewer", "member", "site_admin", "org_admin"] and
  invitation.role = role and
  invitation.site_id = nil and
  org matches Organization and
  has_relation(org, "organization", invitation) and
  has_permission(user, "manage_members", org) and
  has_role(user, role, org);

# A role on one site: as creating a SiteMembership (at most site_admin).
has_permission(user: User, "create", invitation: Invitation) if
  role in ["viewer", "member", "site_admin"] and
  invitation.role = role and
  site matches Site and
  has_relation(site, "site", invitation) and
  has_permission(user, "manage_members", site) and
  has_role(user, role, site);

# The invitee: the signed-in person whose address is the invitation's and is verified.
has_permission(user: User, action: String, invitation: Invitation) if
  action in ["read", "accept", "decline"] and
  user.verified = true and
  invitation.email = user.email;

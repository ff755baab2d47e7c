# Invitations: a role offered to an email address. The role is granted only when the
# owner of that address, signed in and verified, accepts: an account that merely claims
# the address (unverified) can neither see nor answer it. Inviting is authorized as
# creating the membership it offers (`create` on OrgMembership or SiteMembership), so
# its ceilings are exactly those of organizations.polar and sites.polar.

resource Invitation {
  permissions = ["read", "resend", "revoke", "accept", "decline"];
  relations = { organization: Organization };
}

has_relation(org: Organization, "organization", invitation: Invitation) if
  invitation.organization = org;

# Open invitations are seen, resent and revoked by who manages the members of the place:
# an organization's by its org_admins (every one of them), a site's also by site_admins
# of the organization or of that site (sites.polar's "manage_members"). Written over the
# organization relation and the invitation's own fields, so that listing is one filter.
has_permission(user: User, action: String, invitation: Invitation) if
  action in ["read", "resend", "revoke"] and
  org matches Organization and
  has_relation(org, "organization", invitation) and
  has_permission(user, "manage_members", org);

has_permission(user: User, action: String, invitation: Invitation) if
  action in ["read", "resend", "revoke"] and
  invitation.site_id != nil and
  org matches Organization and
  has_relation(org, "organization", invitation) and
  has_role(user, "site_admin", org);

has_permission(user: User, action: String, invitation: Invitation) if
  action in ["read", "resend", "revoke"] and
  invitation.site_id != nil and
  invitation.site_id in user.site_ids("site_admin");

# The invitee: the signed-in person whose address is the invitation's and is verified.
has_permission(user: User, action: String, invitation: Invitation) if
  action in ["read", "accept", "decline"] and
  user.verified = true and
  invitation.email = user.email;

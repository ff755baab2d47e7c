# The audit log of an organization is for its org_admins only.

resource AuditEvent {
  permissions = ["read"];
  relations = { organization: Organization };

  "read" if "read_audit" on "organization";
}

has_relation(org: Organization, "organization", event: AuditEvent) if
  event.organization = org;

# Who an actor is. Every actor sees itself; only a person has an account to manage (its
# profile, login sessions and password) and may found organizations. Keys have neither.

resource Account {
  permissions = [
    "read",                 # itself: a refusal below is then a 403, not a 404
    "read_profile",         # a person's own profile and roles (what a `read` token may see)
    "manage",               # profile, sessions, password
    "create_organization",  # the founder becomes its org_admin
  ];
}

has_permission(actor: Actor, "read", account: Account) if
  account.id = actor.id;

has_permission(user: User, "read_profile", account: Account) if
  account.id = user.id;

has_permission(user: User, "manage", account: Account) if
  account.id = user.id;

has_permission(user: User, "create_organization", account: Account) if
  account.id = user.id;

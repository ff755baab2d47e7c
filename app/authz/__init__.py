"""Authorization: every decision goes through the Polar policies in `policies/`.

All oso calls live in this package so the engine stays replaceable. Endpoints use:
- `authorize(actor, action, resource)`: raise 404 when the actor may not even read the
  resource (its existence stays hidden), 403 when it may read it but not do `action`;
- `authorized(stmt, actor, action, Model)`: AND the policy's filter into a `select()`;
- `condition(actor, action, Model)`: that filter itself, for statements cached per grants.
"""

from app.authz.engine import (
    AuthzEngine,
    authorize,
    authorized,
    condition,
    engine,
    is_allowed,
)

__all__ = ["AuthzEngine", "authorize", "authorized", "condition", "engine", "is_allowed"]

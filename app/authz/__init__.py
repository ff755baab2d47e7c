"""Authorization: every decision goes through the Polar policies in `policies/`.

All oso calls live in this package so the engine stays replaceable. Endpoints use:
- `authorize(actor, action, resource)`: raise 404 when the actor may not even read the
  resource (its existence stays hidden), 403 when it may read it but not do `action`;
- `authorized(stmt, actor, action, Model)`: AND the policy's filter into a `select()`.
"""

from app.authz.engine import (
    AuthzEngine,
    authorize,
    authorized,
    engine,
    is_allowed,
)

__all__ = ["AuthzEngine", "authorize", "authorized", "engine", "is_allowed"]

"""The audit log of an organization."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import page
from app.auth.current import actor
from app.authz import authorize, authorized
from app.models import AuditEvent
from app.pagination import Page
from app.services import audit, tenancy
from schemas.audit import AuditListArgs, AuditPageSchema

blp = Blueprint("audit", __name__, url_prefix="/v1/orgs/<uuid:org_id>", description="Audit log")


@blp.route("/audit-events")
class AuditEvents(MethodView):
    @blp.needs(checks=("read_audit Organization",), lists=("read AuditEvent",))
    @blp.arguments(AuditListArgs, location="query")
    @blp.response(200, AuditPageSchema)
    def get(self, args: dict[str, Any], org_id: uuid.UUID) -> Page[AuditEvent]:
        """Security events of the organization, newest first (org_admin): denials, and
        changes (members, roles, keys, sites, the organization) with who made them and
        the resource before and after. Filter by `event`, `action` or `actor_id`."""
        org = tenancy.get_org(db.session(), org_id)
        authorize(actor(), "read_audit", org)
        events = audit.org_events(
            org.id, event=args["event"], action=args["action"], actor_id=args["actor_id"]
        )
        stmt = authorized(events, actor(), "read", AuditEvent)
        return page(stmt, args)

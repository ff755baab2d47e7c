from __future__ import annotations

from marshmallow import fields, validate

from app.models import AuditEvent
from app.services.audit import CHANGE
from schemas.common import NO_NUL, StrictSchema, list_args, page_of

SNAPSHOT = (
    "The resource's audited fields (never a secret or a hash) before the change, or "
    "after it; null for what did not exist or is gone, and for a denial."
)


class AuditEventSchema(StrictSchema):
    id = fields.UUID(required=True)
    event = fields.String(
        required=True,
        metadata={"description": f"`authz.denied`, `{CHANGE}`, or `auth.refresh_reuse`."},
    )
    actor_type = fields.String(required=True)
    actor_id = fields.UUID(allow_none=True, required=True)
    action = fields.String(required=True)
    resource_type = fields.String(required=True)
    resource_id = fields.String(allow_none=True, required=True)
    request_id = fields.String(allow_none=True, required=True)
    before = fields.Dict(allow_none=True, required=True, metadata={"description": SNAPSHOT})
    after = fields.Dict(allow_none=True, required=True, metadata={"description": SNAPSHOT})
    created_at = fields.DateTime(required=True)


class AuditListArgs(list_args({"created_at": AuditEvent.created_at}, "-created_at")):  # type: ignore[misc]  # a base made at run time: mypy cannot follow it
    event = fields.String(
        load_default=None, validate=[validate.Length(max=64), NO_NUL],
        metadata={"description": f"Only rows of this event, e.g. `{CHANGE}` or `authz.denied`."},
    )
    action = fields.String(
        load_default=None, validate=[validate.Length(max=64), NO_NUL],
        metadata={"description": "Only rows of this action, e.g. `org_member.role_changed` "
                  "(a change) or `update` (a denial's policy action)."},
    )
    actor_id = fields.UUID(
        load_default=None, metadata={"description": "Only rows whose actor is this one."}
    )
AuditPageSchema = page_of(AuditEventSchema, "AuditEventPage")

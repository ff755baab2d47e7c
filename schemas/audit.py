from __future__ import annotations

from marshmallow import fields

from app.models import AuditEvent
from schemas.common import StrictSchema, list_args, page_of


class AuditEventSchema(StrictSchema):
    id = fields.UUID(required=True)
    event = fields.String(required=True)
    actor_type = fields.String(required=True)
    actor_id = fields.UUID(allow_none=True, required=True)
    action = fields.String(required=True)
    resource_type = fields.String(required=True)
    resource_id = fields.String(allow_none=True, required=True)
    request_id = fields.String(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)


AuditListArgs = list_args({"created_at": AuditEvent.created_at}, "-created_at")
AuditPageSchema = page_of(AuditEventSchema, "AuditEventPage")

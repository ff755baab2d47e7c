"""Invitations: the contract of inviting by email, and of answering an invitation."""

from __future__ import annotations

from marshmallow import fields

from app.models import Invitation
from schemas.common import StrictSchema, list_args, page_of


class InvitationSchema(StrictSchema):
    id = fields.UUID(required=True)
    org_id = fields.UUID(required=True)
    site_id = fields.UUID(allow_none=True, required=True,
                          metadata={"description": "Null: a role on the organization."})
    email = fields.String(required=True)
    role = fields.String(required=True)
    invited_by = fields.UUID(allow_none=True, required=True)
    expires_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)


InvitationListArgs = list_args({"created_at": Invitation.created_at}, "created_at")
InvitationPageSchema = page_of(InvitationSchema, "InvitationPage")


class InvitationListSchema(StrictSchema):
    items = fields.List(fields.Nested(InvitationSchema), required=True)

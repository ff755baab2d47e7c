"""API keys and ingest keys. The secret appears once, in the creation response."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from app.models import ORG_ROLES, SITE_ROLES, ApiKey, IngestKey
from schemas.common import FullMatch, StrictSchema, Text, list_args, page_of

ORIGIN = FullMatch(
    r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$", error="An origin is scheme://host[:port]."
)


class ApiKeyCreateSchema(StrictSchema):
    name = Text(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ORG_ROLES))
    site_id = fields.UUID(
        load_default=None, allow_none=True,
        metadata={"description": "Scope the key to one site; omit for the whole organization."},
    )
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)

    @validates_schema
    def _consistent(self, data: dict[str, object], **_: object) -> None:
        if data.get("site_id") is not None and data.get("role") not in SITE_ROLES:
            raise ValidationError(
                f"A site-scoped key holds a site role: {', '.join(SITE_ROLES)}.", "role"
            )
        expires_at = data.get("expires_at")
        if isinstance(expires_at, datetime) and expires_at <= datetime.now(UTC):
            raise ValidationError("Must be in the future.", "expires_at")


class ApiKeySchema(StrictSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    site_id = fields.UUID(allow_none=True, required=True)
    created_by = fields.UUID(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(allow_none=True, required=True)
    last_used_at = fields.DateTime(allow_none=True, required=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    secret = fields.String(required=True, metadata={"description": "Shown once: store it now."})


class IngestKeyCreateSchema(StrictSchema):
    name = Text(required=True)
    allowed_origins = fields.List(
        fields.String(validate=ORIGIN), load_default=list, validate=validate.Length(max=50)
    )

    @validates("allowed_origins")
    def _lowercase(self, value: list[str], **_: object) -> None:
        if any(origin != origin.lower() for origin in value):
            raise ValidationError("Origins are lower case.")


class IngestKeySchema(StrictSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    site_id = fields.UUID(required=True)
    allowed_origins = fields.List(fields.String(), required=True)
    created_by = fields.UUID(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(allow_none=True, required=True)


class IngestKeyCreatedSchema(IngestKeySchema):
    secret = fields.String(required=True, metadata={"description": "Shown once: store it now."})


ApiKeyListArgs = list_args({"created_at": ApiKey.created_at}, "-created_at")
IngestKeyListArgs = list_args({"created_at": IngestKey.created_at}, "-created_at")
ApiKeyPageSchema = page_of(ApiKeySchema, "ApiKeyPage")
IngestKeyPageSchema = page_of(IngestKeySchema, "IngestKeyPage")

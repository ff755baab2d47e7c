"""OAuth clients of an organization. A confidential client's secret appears once, in the
answer that made it (registration or rotation)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from app.models import ORG_ROLES, SITE_ROLES, OAuthClient
from app.models.oauth import CLIENT_TYPES, SCOPES
from schemas.common import FullMatch, StrictSchema, Text, list_args, page_of

REDIRECT_URI_MAX_LENGTH = 1000
# https anywhere; plain http only to the loopback address of the device the app runs on,
# any port (RFC 8252 7.3). Visible ASCII, no fragment (RFC 6749 3.1.2). Compared exactly.
REDIRECT_URI = FullMatch(
    r"^(?:https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?|http://(?:127\.0\.0\.1|\[::1\])"
    r"(?::[0-9]{1,5})?)(?:/[\x21\x22\x24-\x7e]*)?$",
    error="An https URI without fragment, or http://127.0.0.1 or http://[::1] with any port.",
)


def redirect_uri_field(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=1, max=REDIRECT_URI_MAX_LENGTH), REDIRECT_URI], **kwargs
    )


def redirect_uris_field(**kwargs: Any) -> fields.List:
    return fields.List(redirect_uri_field(), validate=validate.Length(min=1, max=20), **kwargs)


class OAuthClientCreateSchema(StrictSchema):
    name = Text(required=True)
    client_type = fields.String(
        required=True, validate=validate.OneOf(CLIENT_TYPES),
        metadata={"description": "`public`: a single-page or native app (no secret, PKCE); "
                                 "`confidential`: a server that keeps a secret."},
    )
    redirect_uris = redirect_uris_field(required=True)
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPES)), load_default=lambda: ["read"],
        validate=validate.Length(min=1, max=len(SCOPES)),
        metadata={"description": "The scopes the client may ask for."},
    )
    role = fields.String(  # absent: none (no load_default, which would make it nullable)
        validate=validate.OneOf(ORG_ROLES),
        metadata={"description": "The client's own role for the client credentials grant "
                                 "(confidential clients only), no higher than yours."},
    )
    site_id = fields.UUID(
        load_default=None, allow_none=True,
        metadata={"description": "The site the role applies to; omit for the organization."},
    )

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: object) -> None:
        if data.get("role") is not None and data.get("client_type") != "confidential":
            raise ValidationError("Only a confidential client holds a role.", "role")
        if data.get("site_id") is not None and data.get("role") is None:
            raise ValidationError("A site is given for a role only.", "site_id")
        if data.get("site_id") is not None and data.get("role") not in SITE_ROLES:
            raise ValidationError(
                f"A site-scoped client holds a site role: {', '.join(SITE_ROLES)}.", "role")
        scopes = data.get("scopes") or []
        if len(set(scopes)) != len(scopes):
            raise ValidationError("Each scope once.", "scopes")


class OAuthClientUpdateSchema(StrictSchema):
    name = Text()
    redirect_uris = redirect_uris_field()


class OAuthClientSchema(StrictSchema):
    id = fields.UUID(required=True, metadata={"description": "The OAuth `client_id`."})
    name = fields.String(required=True)
    client_type = fields.String(required=True, validate=validate.OneOf(CLIENT_TYPES))
    redirect_uris = fields.List(fields.String(), required=True)
    scopes = fields.List(fields.String(), required=True)
    role = fields.String(allow_none=True, required=True)
    site_id = fields.UUID(allow_none=True, required=True)
    created_by = fields.UUID(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(allow_none=True, required=True)


class OAuthClientCreatedSchema(OAuthClientSchema):
    client_secret = fields.String(
        allow_none=True, required=True,
        metadata={"description": "Shown once: store it now (null for a public client)."},
    )


class OAuthClientSecretSchema(StrictSchema):
    client_secret = fields.String(required=True,
                                  metadata={"description": "Shown once: store it now."})


OAuthClientListArgs = list_args({"created_at": OAuthClient.created_at}, "-created_at")
OAuthClientPageSchema = page_of(OAuthClientSchema, "OAuthClientPage")

from __future__ import annotations

from marshmallow import fields, validate

from schemas.common import Email, StrictSchema, Text

PASSWORD = validate.Length(min=10, max=256)


class RegisterSchema(StrictSchema):
    email = Email(required=True)
    password = fields.String(required=True, load_only=True, validate=PASSWORD)
    display_name = Text(min_length=0, load_default="")


class LoginSchema(StrictSchema):
    email = Email(required=True)
    # Length is not checked at login: a wrong password is a wrong password.
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))


class TokenSchema(StrictSchema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds."})


class UserSchema(StrictSchema):
    id = fields.UUID(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class GrantSchema(StrictSchema):
    org_id = fields.UUID(required=True)
    site_id = fields.UUID(allow_none=True, required=True)
    role = fields.String(required=True)


class MeSchema(UserSchema):
    memberships = fields.List(fields.Nested(GrantSchema), required=True)

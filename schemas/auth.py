from __future__ import annotations

import uuid

from marshmallow import fields, validate

from app.models import AuthSession
from schemas.common import Email, Out, StrictSchema, Text, list_args, page_of

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
    refresh_token = fields.String(
        required=True,
        metadata={"description": "Opaque, single use: `POST /v1/auth/refresh` spends it."},
    )


class RefreshSchema(StrictSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=256))


class PasswordChangeSchema(StrictSchema):
    current_password = fields.String(
        required=True, load_only=True, validate=validate.Length(max=256)
    )
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD)


class SessionSchema(StrictSchema):
    id = fields.UUID(required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    user_agent = fields.String(required=True)
    ip = fields.String(required=True)
    current = fields.Boolean(required=True, metadata={"description": "The caller's session."})


SessionListArgs = list_args({"created_at": AuthSession.created_at}, "-created_at")
SessionPageSchema = page_of(SessionSchema, "SessionPage")


class UserSchema(StrictSchema):
    id = fields.UUID(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    email_verified = fields.Boolean(required=True)


class GrantSchema(StrictSchema):
    org_id = fields.UUID(required=True)
    site_id = fields.UUID(allow_none=True, required=True)
    role = fields.String(required=True)


class MeSchema(UserSchema):
    memberships = fields.List(fields.Nested(GrantSchema), required=True)


def session_out(session: AuthSession, current_id: uuid.UUID | None) -> Out:
    """A login session as SessionSchema dumps it: `current` when it is the caller's own."""
    return Out(session, current=session.id == current_id)


class AcceptedSchema(StrictSchema):
    """The same answer whatever the address: it tells nobody whether an account uses it."""

    message = fields.String(required=True)


class TokenOnlySchema(StrictSchema):
    token = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class EmailOnlySchema(StrictSchema):
    email = Email(required=True)


class PasswordResetSchema(StrictSchema):
    token = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))
    new_password = fields.String(required=True, load_only=True, validate=PASSWORD)

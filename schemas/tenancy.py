"""Organizations, sites and their members."""

from __future__ import annotations

from marshmallow import fields, validate

from app.models import ORG_ROLES, SITE_ROLES, Organization, OrgMembership, Site, SiteMembership
from schemas.common import Email, FullMatch, StrictSchema, Text, list_args, page_of

HOSTNAME = FullMatch(
    r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$",
    error="Not a valid host name.",
)


class OrgCreateSchema(StrictSchema):
    name = Text(required=True)


class OrgUpdateSchema(StrictSchema):
    name = Text()


class OrgSchema(StrictSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class SiteCreateSchema(StrictSchema):
    name = Text(required=True)
    domain = fields.String(load_default=None, allow_none=True, validate=HOSTNAME)


class SiteUpdateSchema(StrictSchema):
    name = Text()
    domain = fields.String(allow_none=True, validate=HOSTNAME)


class SiteSchema(StrictSchema):
    id = fields.UUID(required=True)
    org_id = fields.UUID(required=True)
    name = fields.String(required=True)
    domain = fields.String(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class OrgMemberAddSchema(StrictSchema):
    email = Email(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ORG_ROLES))


class OrgMemberUpdateSchema(StrictSchema):
    role = fields.String(required=True, validate=validate.OneOf(ORG_ROLES))


class SiteMemberAddSchema(StrictSchema):
    email = Email(required=True)
    role = fields.String(required=True, validate=validate.OneOf(SITE_ROLES))


class SiteMemberUpdateSchema(StrictSchema):
    role = fields.String(required=True, validate=validate.OneOf(SITE_ROLES))


class MemberSchema(StrictSchema):
    user_id = fields.UUID(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


OrgListArgs = list_args(
    {"created_at": Organization.created_at, "name": Organization.name}, "created_at"
)
SiteListArgs = list_args({"created_at": Site.created_at, "name": Site.name}, "created_at")
OrgMemberListArgs = list_args({"created_at": OrgMembership.created_at}, "created_at")
SiteMemberListArgs = list_args({"created_at": SiteMembership.created_at}, "created_at")
OrgPageSchema = page_of(OrgSchema, "OrgPage")
SitePageSchema = page_of(SiteSchema, "SitePage")
MemberPageSchema = page_of(MemberSchema, "MemberPage")

"""Members of an organization and of a site."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import Created, created, page
from app.auth.current import actor
from app.authz import authorize, authorized
from app.models import OrgMembership, SiteMembership
from app.pagination import Page
from app.services import memberships, tenancy
from schemas.tenancy import (
    MemberPageSchema,
    MemberSchema,
    OrgMemberAddSchema,
    OrgMemberListArgs,
    OrgMemberUpdateSchema,
    SiteMemberAddSchema,
    SiteMemberListArgs,
    SiteMemberUpdateSchema,
)

blp = Blueprint("members", __name__, url_prefix="/v1/orgs/<uuid:org_id>", description="Members")


def _page_with_users(
    result: Page[OrgMembership] | Page[SiteMembership],
) -> Page[dict[str, Any]]:
    return Page(memberships.with_users(db.session(), result.items), result.next_cursor)


@blp.route("/members")
class OrgMembers(MethodView):
    @blp.needs(checks=("list_members Organization",), lists=("read OrgMembership",))
    @blp.arguments(OrgMemberListArgs, location="query")
    @blp.response(200, MemberPageSchema)
    def get(self, args: dict[str, Any], org_id: uuid.UUID) -> Page[dict[str, Any]]:
        """The organization's members and their roles."""
        org = tenancy.get_org(db.session(), org_id)
        authorize(actor(), "list_members", org)
        stmt = authorized(memberships.org_members(org.id), actor(), "read", OrgMembership)
        return _page_with_users(
            page(stmt, args)
        )

    @blp.needs(checks=("create OrgMembership",))
    @blp.arguments(OrgMemberAddSchema)
    @blp.response(201, MemberSchema)
    def post(self, data: dict[str, Any], org_id: uuid.UUID) -> Created:
        """Give an existing account a role on the organization (org_admin)."""
        session = db.session()
        org = tenancy.get_org(session, org_id)
        authorize(actor(), "create", memberships.proposed_org_member(org, data["role"]))
        membership = memberships.add_org_member(session, org, data["email"], data["role"])
        return created(memberships.with_users(session, [membership])[0], ".OrgMember",
                       org_id=org_id, user_id=membership.user_id)


@blp.route("/members/<uuid:user_id>")
class OrgMember(MethodView):
    @blp.needs(checks=("update OrgMembership",))
    @blp.arguments(OrgMemberUpdateSchema)
    @blp.response(200, MemberSchema)
    @blp.alt_response(409, description="The organization would be left without an org_admin.")
    def patch(
        self, data: dict[str, Any], org_id: uuid.UUID, user_id: uuid.UUID
    ) -> dict[str, Any]:
        """Change a member's role on the organization (org_admin)."""
        session = db.session()
        org = tenancy.get_org(session, org_id, lock=True)
        membership = memberships.get_org_member(session, org.id, user_id)
        authorize(actor(), "update", memberships.with_role(membership, data["role"]))
        memberships.change_org_role(session, membership, data["role"])
        return memberships.with_users(session, [membership])[0]

    @blp.needs(checks=("delete OrgMembership",))
    @blp.response(204)
    @blp.alt_response(409, description="The organization would be left without an org_admin.")
    def delete(self, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Remove a member, with the roles it held on the organization's sites."""
        session = db.session()
        org = tenancy.get_org(session, org_id, lock=True)
        membership = memberships.get_org_member(session, org.id, user_id)
        authorize(actor(), "delete", membership)
        memberships.remove_org_member(session, membership)


@blp.route("/sites/<uuid:site_id>/members")
class SiteMembers(MethodView):
    @blp.needs(checks=("list_members Site",), lists=("read SiteMembership",))
    @blp.arguments(SiteMemberListArgs, location="query")
    @blp.response(200, MemberPageSchema)
    def get(
        self, args: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID
    ) -> Page[dict[str, Any]]:
        """The site's members and their roles."""
        site = tenancy.get_site(db.session(), org_id, site_id)
        authorize(actor(), "list_members", site)
        stmt = authorized(memberships.site_members(site), actor(), "read", SiteMembership)
        return _page_with_users(
            page(stmt, args)
        )

    @blp.needs(checks=("create SiteMembership",))
    @blp.arguments(SiteMemberAddSchema)
    @blp.response(201, MemberSchema)
    def post(
        self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID
    ) -> Created:
        """Give an account a role on this site (site_admin; at most site_admin)."""
        session = db.session()
        site = tenancy.get_site(session, org_id, site_id)
        authorize(actor(), "create", memberships.proposed_site_member(site, data["role"]))
        membership = memberships.add_site_member(session, site, data["email"], data["role"])
        return created(memberships.with_users(session, [membership])[0], ".SiteMember",
                       org_id=org_id, site_id=site_id, user_id=membership.user_id)


@blp.route("/sites/<uuid:site_id>/members/<uuid:user_id>")
class SiteMember(MethodView):
    @blp.needs(checks=("update SiteMembership",))
    @blp.arguments(SiteMemberUpdateSchema)
    @blp.response(200, MemberSchema)
    def patch(
        self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID, user_id: uuid.UUID
    ) -> dict[str, Any]:
        """Change a member's role on the site (site_admin; at most site_admin)."""
        session = db.session()
        site = tenancy.get_site(session, org_id, site_id)
        membership = memberships.get_site_member(session, site, user_id)
        authorize(actor(), "update", memberships.with_role(membership, data["role"]))
        memberships.change_site_role(session, membership, data["role"])
        return memberships.with_users(session, [membership])[0]

    @blp.needs(checks=("delete SiteMembership",))
    @blp.response(204)
    def delete(self, org_id: uuid.UUID, site_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Remove a member's role on the site (site_admin)."""
        session = db.session()
        site = tenancy.get_site(session, org_id, site_id)
        membership = memberships.get_site_member(session, site, user_id)
        authorize(actor(), "delete", membership)
        memberships.remove_site_member(session, membership)

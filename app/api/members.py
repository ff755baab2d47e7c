"""Members of an organization and of a site."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import author, page, settings
from app.auth.current import actor
from app.authz import authorize, authorized
from app.models import Invitation, OrgMembership, SiteMembership
from app.pagination import Page
from app.services import identity, invitations, memberships, tenancy
from schemas.invitations import InvitationListArgs, InvitationPageSchema, InvitationSchema
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
    @blp.response(202, InvitationSchema)
    @blp.alt_response(409, description="The address already holds a role here.")
    def post(self, data: dict[str, Any], org_id: uuid.UUID) -> Invitation:
        """Invite an address to a role on the organization (org_admin): the role is
        granted when its verified owner accepts. The answer is the same whether an
        account uses the address or not."""
        session = db.session()
        org = tenancy.get_org(session, org_id)
        # Authorized as the membership it offers: the ceilings of adding a member.
        authorize(actor(), "create", memberships.proposed_org_member(org, data["role"]))
        invitation = invitations.proposed(org, None, data["email"], data["role"])
        return invitations.create(session, settings(), invitation,
                                  identity.account(session, actor().id), org.name)


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
        memberships.change_org_role(session, membership, data["role"], by=author())
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
        memberships.remove_org_member(session, membership, by=author())


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
    @blp.response(202, InvitationSchema)
    @blp.alt_response(409, description="The address already holds a role here.")
    def post(self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID) -> Invitation:
        """Invite an address to a role on this site (site_admin; at most site_admin),
        granted when its verified owner accepts."""
        session = db.session()
        org = tenancy.get_org(session, org_id)
        site = tenancy.get_site(session, org_id, site_id)
        authorize(actor(), "create", memberships.proposed_site_member(site, data["role"]))
        invitation = invitations.proposed(org, site, data["email"], data["role"])
        return invitations.create(session, settings(), invitation,
                                  identity.account(session, actor().id),
                                  f"{site.name} ({org.name})")


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
        memberships.change_site_role(session, membership, data["role"], by=author())
        return memberships.with_users(session, [membership])[0]

    @blp.needs(checks=("delete SiteMembership",))
    @blp.response(204)
    def delete(self, org_id: uuid.UUID, site_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Remove a member's role on the site (site_admin)."""
        session = db.session()
        site = tenancy.get_site(session, org_id, site_id)
        membership = memberships.get_site_member(session, site, user_id)
        authorize(actor(), "delete", membership)
        memberships.remove_site_member(session, membership, by=author())


# -- invitations, as the admins of the place see them ------------------------------------------


def _place(org_id: uuid.UUID, site_id: uuid.UUID | None) -> tuple[str, uuid.UUID | None]:
    """The place's name for mails, and its site id (None: the organization); 404s."""
    session = db.session()
    org = tenancy.get_org(session, org_id)
    if site_id is None:
        return org.name, None
    site = tenancy.get_site(session, org_id, site_id)
    return f"{site.name} ({org.name})", site.id


def _list(args: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID | None) -> Page[Invitation]:
    _, site = _place(org_id, site_id)
    stmt = authorized(invitations.pending(org_id, site), actor(), "read", Invitation)
    return page(stmt, args)


def _resend(org_id: uuid.UUID, site_id: uuid.UUID | None, invitation_id: uuid.UUID) -> Invitation:
    session = db.session()
    place, site = _place(org_id, site_id)
    invitation = invitations.get(session, org_id, site, invitation_id, lock=True)
    authorize(actor(), "resend", invitation)
    invitations.resend(session, settings(), invitation, identity.account(session, actor().id),
                       place)
    return invitation


def _revoke(org_id: uuid.UUID, site_id: uuid.UUID | None, invitation_id: uuid.UUID) -> None:
    session = db.session()
    _, site = _place(org_id, site_id)
    invitation = invitations.get(session, org_id, site, invitation_id, lock=True)
    authorize(actor(), "revoke", invitation)
    invitations.revoke(session, invitation)


@blp.route("/invitations")
class OrgInvitations(MethodView):
    @blp.needs(lists=("read Invitation",))
    @blp.arguments(InvitationListArgs, location="query")
    @blp.response(200, InvitationPageSchema)
    def get(self, args: dict[str, Any], org_id: uuid.UUID) -> Page[Invitation]:
        """Open invitations to the organization (org_admin)."""
        return _list(args, org_id, None)


@blp.route("/invitations/<uuid:invitation_id>/resend")
class OrgInvitationResend(MethodView):
    @blp.needs(checks=("resend Invitation",))
    @blp.response(200, InvitationSchema)
    def post(self, org_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation:
        """Mail the invitation again; it is open for another full period."""
        return _resend(org_id, None, invitation_id)


@blp.route("/invitations/<uuid:invitation_id>")
class OrgInvitation(MethodView):
    @blp.needs(checks=("revoke Invitation",))
    @blp.response(204)
    def delete(self, org_id: uuid.UUID, invitation_id: uuid.UUID) -> None:
        """Revoke an open invitation."""
        _revoke(org_id, None, invitation_id)


@blp.route("/sites/<uuid:site_id>/invitations")
class SiteInvitations(MethodView):
    @blp.needs(lists=("read Invitation",))
    @blp.arguments(InvitationListArgs, location="query")
    @blp.response(200, InvitationPageSchema)
    def get(
        self, args: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID
    ) -> Page[Invitation]:
        """Open invitations to the site (its site_admins, org_admins)."""
        return _list(args, org_id, site_id)


@blp.route("/sites/<uuid:site_id>/invitations/<uuid:invitation_id>/resend")
class SiteInvitationResend(MethodView):
    @blp.needs(checks=("resend Invitation",))
    @blp.response(200, InvitationSchema)
    def post(
        self, org_id: uuid.UUID, site_id: uuid.UUID, invitation_id: uuid.UUID
    ) -> Invitation:
        """Mail the invitation again; it is open for another full period."""
        return _resend(org_id, site_id, invitation_id)


@blp.route("/sites/<uuid:site_id>/invitations/<uuid:invitation_id>")
class SiteInvitation(MethodView):
    @blp.needs(checks=("revoke Invitation",))
    @blp.response(204)
    def delete(self, org_id: uuid.UUID, site_id: uuid.UUID, invitation_id: uuid.UUID) -> None:
        """Revoke an open invitation."""
        _revoke(org_id, site_id, invitation_id)

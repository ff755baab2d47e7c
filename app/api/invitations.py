"""Invitations, as the invitee sees them: its own open ones, across organizations."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import author, own_account
from app.auth.current import actor
from app.authz import authorize, is_allowed
from app.models import Invitation
from app.services import invitations
from schemas.invitations import InvitationListSchema, InvitationSchema

blp = Blueprint("invitations", __name__, url_prefix="/v1/invitations",
                description="Invitations to the caller")


def _mine(invitation_id: uuid.UUID) -> Invitation:
    """The caller's open invitation, with the request moved into its organization (the
    invitee holds nothing there yet: row-level security needs the scope to write)."""
    authorize(actor(), "manage", own_account())  # a person's: keys are refused here
    session = db.session()
    found = invitations.mine_one(session, actor().id, invitation_id)
    db.current_unit().enter(found.org_id)
    return invitations.get(session, found.org_id, found.site_id, found.id, lock=True)


@blp.route("")
class MyInvitations(MethodView):
    @blp.needs(checks=("manage Account",))
    @blp.response(200, InvitationListSchema)
    def get(self) -> dict[str, Any]:
        """Open invitations to the caller's address (once it is verified)."""
        authorize(actor(), "manage", own_account())
        mine = invitations.mine(db.session(), actor().id)
        return {"items": [i for i in mine if is_allowed(actor(), "read", i)]}


@blp.route("/<uuid:invitation_id>/accept")
class Accept(MethodView):
    @blp.needs(checks=("manage Account", "accept Invitation"))
    @blp.response(200, InvitationSchema)
    def post(self, invitation_id: uuid.UUID) -> Invitation:
        """Accept: the invitation's role is granted to the caller."""
        invitation = _mine(invitation_id)
        authorize(actor(), "accept", invitation)
        invitations.accept(db.session(), invitation, actor().id, by=author())
        return invitation


@blp.route("/<uuid:invitation_id>/decline")
class Decline(MethodView):
    @blp.needs(checks=("manage Account", "decline Invitation"))
    @blp.response(204)
    def post(self, invitation_id: uuid.UUID) -> None:
        """Decline: the invitation closes; nothing is granted."""
        invitation = _mine(invitation_id)
        authorize(actor(), "decline", invitation)
        invitations.decline(db.session(), invitation)

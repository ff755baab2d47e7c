"""Organizations."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import Created, author, created, own_account, page
from app.auth.current import actor
from app.authz import authorize, authorized
from app.models import Organization
from app.pagination import Page
from app.services import tenancy
from schemas.tenancy import OrgCreateSchema, OrgListArgs, OrgPageSchema, OrgSchema, OrgUpdateSchema

blp = Blueprint("orgs", __name__, url_prefix="/v1/orgs", description="Organizations")



@blp.route("")
class Orgs(MethodView):
    @blp.needs(lists=("read Organization",))
    @blp.arguments(OrgListArgs, location="query")
    @blp.response(200, OrgPageSchema)
    def get(self, args: dict[str, Any]) -> Page[Organization]:
        """Organizations the caller may read."""
        stmt = authorized(tenancy.live_orgs(), actor(), "read", Organization)
        return page(stmt, args)

    @blp.needs(checks=("create_organization Account",))
    @blp.arguments(OrgCreateSchema)
    @blp.response(201, OrgSchema)
    def post(self, data: dict[str, Any]) -> Created:
        """Create an organization; the caller becomes its org_admin."""
        authorize(actor(), "create_organization", own_account())
        org_id = uuid.uuid4()
        db.current_unit().enter(org_id)  # its rows are written under its own scope
        org = tenancy.create_org(db.session(), org_id, actor().id, data["name"])
        return created(org, ".Org", org_id=org.id)


@blp.route("/<uuid:org_id>")
class Org(MethodView):
    @blp.needs(checks=("read Organization",))
    @blp.etag
    @blp.response(200, OrgSchema)
    def get(self, org_id: uuid.UUID) -> Organization:
        """Read an organization; its `ETag` serves `If-Match` on update."""
        org = tenancy.get_org(db.session(), org_id)
        authorize(actor(), "read", org)
        return org

    @blp.needs(checks=("update Organization",))
    @blp.etag
    @blp.arguments(OrgUpdateSchema)
    @blp.response(200, OrgSchema)
    def patch(self, data: dict[str, Any], org_id: uuid.UUID) -> Organization:
        """Rename; needs `If-Match` with the current ETag."""
        org = tenancy.get_org(db.session(), org_id)
        authorize(actor(), "update", org)
        blp.check_etag(org, OrgSchema)
        tenancy.update(org, data)
        db.session().flush()
        return org

    @blp.needs(checks=("delete Organization",))
    @blp.etag
    @blp.response(204)
    def delete(self, org_id: uuid.UUID) -> None:
        """Soft-delete; needs `If-Match` with the current ETag."""
        org = tenancy.get_org(db.session(), org_id)
        authorize(actor(), "delete", org)
        blp.check_etag(org, OrgSchema)
        tenancy.soft_delete(db.session(), org, by=author())

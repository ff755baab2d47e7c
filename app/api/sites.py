"""Sites of an organization."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import Created, author, created, page
from app.auth.current import actor
from app.authz import authorize, authorized
from app.models import Site
from app.pagination import Page
from app.services import tenancy
from schemas.tenancy import (
    SiteCreateSchema,
    SiteListArgs,
    SitePageSchema,
    SiteSchema,
    SiteUpdateSchema,
)

blp = Blueprint("sites", __name__, url_prefix="/v1/orgs/<uuid:org_id>/sites", description="Sites")



@blp.route("")
class Sites(MethodView):
    @blp.needs(checks=("list_sites Organization",), lists=("read Site",))
    @blp.arguments(SiteListArgs, location="query")
    @blp.response(200, SitePageSchema)
    def get(self, args: dict[str, Any], org_id: uuid.UUID) -> Page[Site]:
        """Sites of the organization that the caller may read."""
        org = tenancy.get_org(db.session(), org_id)
        authorize(actor(), "list_sites", org)
        stmt = authorized(tenancy.live_sites(org.id), actor(), "read", Site)
        return page(stmt, args)

    @blp.needs(checks=("create_site Organization",))
    @blp.arguments(SiteCreateSchema)
    @blp.response(201, SiteSchema)
    def post(self, data: dict[str, Any], org_id: uuid.UUID) -> Created:
        """Create a site in the organization (org_admin)."""
        org = tenancy.get_org(db.session(), org_id)
        authorize(actor(), "create_site", org)
        site = tenancy.create_site(db.session(), org, data["name"], data["domain"])
        return created(site, ".SiteItem", org_id=org_id, site_id=site.id)


@blp.route("/<uuid:site_id>")
class SiteItem(MethodView):
    @blp.needs(checks=("read Site",))
    @blp.etag
    @blp.response(200, SiteSchema)
    def get(self, org_id: uuid.UUID, site_id: uuid.UUID) -> Site:
        """Read a site; its `ETag` serves `If-Match` on update."""
        site = tenancy.get_site(db.session(), org_id, site_id)
        authorize(actor(), "read", site)
        return site

    @blp.needs(checks=("update Site",))
    @blp.etag
    @blp.arguments(SiteUpdateSchema)
    @blp.response(200, SiteSchema)
    def patch(self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID) -> Site:
        """Change name or domain; needs `If-Match` with the current ETag."""
        site = tenancy.get_site(db.session(), org_id, site_id)
        authorize(actor(), "update", site)
        blp.check_etag(site, SiteSchema)
        tenancy.update(site, data)
        db.session().flush()
        return site

    @blp.needs(checks=("delete Site",))
    @blp.etag
    @blp.response(204)
    def delete(self, org_id: uuid.UUID, site_id: uuid.UUID) -> None:
        """Soft-delete (org_admin); needs `If-Match` with the current ETag."""
        site = tenancy.get_site(db.session(), org_id, site_id)
        authorize(actor(), "delete", site)
        blp.check_etag(site, SiteSchema)
        tenancy.soft_delete(db.session(), site, by=author())

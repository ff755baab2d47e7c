"""Uploads (presigned POST) and the assets they create."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import Created, created, page, settings, storage
from app.auth.current import actor
from app.authz import authorize, authorized
from app.errors import PROBLEM_JSON
from app.models import Asset
from app.pagination import Page
from app.services import assets, tenancy
from schemas.assets import (
    AssetListArgs,
    AssetPageSchema,
    AssetSchema,
    AssetUpdateSchema,
    DownloadUrlSchema,
    UploadCreateSchema,
    UploadSchema,
)
from schemas.common import ProblemSchema

blp = Blueprint(
    "assets", __name__, url_prefix="/v1/orgs/<uuid:org_id>/sites/<uuid:site_id>",
    description="Uploads and assets",
)



def _asset(
    org_id: uuid.UUID, site_id: uuid.UUID, asset_id: uuid.UUID, *, lock: bool = False
) -> Asset:
    session = db.session()
    site = tenancy.get_site(session, org_id, site_id)
    return assets.get_asset(session, site, asset_id, lock=lock)


@blp.route("/uploads")
class Uploads(MethodView):
    @blp.needs(checks=("upload Site",))
    @blp.arguments(UploadCreateSchema)
    @blp.response(201, UploadSchema)
    @blp.alt_response(413, description="Larger than the configured maximum.")
    @blp.alt_response(415, description="Content type not on the allowlist.")
    def post(
        self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID
    ) -> Created:
        """Start an upload (member): a pending asset and a presigned POST that storage
        accepts only for its key, content type and exact size, for a few minutes."""
        session = db.session()
        site = tenancy.get_site(session, org_id, site_id)
        authorize(actor(), "upload", site)
        upload = assets.start_upload(
            session, storage(), settings(), site, created_by=actor().id, **data
        )
        return created({"asset": upload.asset, "upload": upload.post}, ".AssetItem",
                       org_id=org_id, site_id=site_id, asset_id=upload.asset.id)


@blp.route("/assets")
class Assets(MethodView):
    @blp.needs(checks=("read Site",), lists=("read Asset",))
    @blp.arguments(AssetListArgs, location="query")
    @blp.response(200, AssetPageSchema)
    def get(
        self, args: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID
    ) -> Page[Asset]:
        """Assets of the site, filtered by status and content type."""
        site = tenancy.get_site(db.session(), org_id, site_id)
        authorize(actor(), "read", site)
        stmt = assets.listing(site, status=args["status"], content_type=args["content_type"])
        return page(authorized(stmt, actor(), "read", Asset), args)


@blp.route("/assets/<uuid:asset_id>")
class AssetItem(MethodView):
    @blp.needs(checks=("read Asset",))
    @blp.response(200, AssetSchema)
    def get(self, org_id: uuid.UUID, site_id: uuid.UUID, asset_id: uuid.UUID) -> Asset:
        """Read an asset (viewer)."""
        asset = _asset(org_id, site_id, asset_id)
        authorize(actor(), "read", asset)
        return asset

    @blp.needs(checks=("update Asset",))
    @blp.arguments(AssetUpdateSchema)
    @blp.response(200, AssetSchema)
    def patch(
        self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID, asset_id: uuid.UUID
    ) -> Asset:
        """Change title, alt text or tags (the uploader or a site_admin)."""
        asset = _asset(org_id, site_id, asset_id)
        authorize(actor(), "update", asset)
        tenancy.update(asset, data)
        db.session().flush()
        return asset

    @blp.needs(checks=("delete Asset",))
    @blp.response(204)
    def delete(self, org_id: uuid.UUID, site_id: uuid.UUID, asset_id: uuid.UUID) -> None:
        """Soft-delete; `flask assets purge` removes the object later."""
        asset = _asset(org_id, site_id, asset_id)
        authorize(actor(), "delete", asset)
        assets.soft_delete(asset)


@blp.route("/assets/<uuid:asset_id>/complete")
class Complete(MethodView):
    @blp.needs(checks=("complete Asset",))
    @blp.response(200, AssetSchema)
    @blp.alt_response(
        409, schema=ProblemSchema, content_type=PROBLEM_JSON,
        description="Nothing was uploaded yet (type `.../upload-missing`), or the stored file "
        "differs from the declared one (`.../upload-mismatch`, with `errors`).",
    )
    @blp.alt_response(503, description="Storage is unavailable; see `Retry-After`.")
    def post(self, org_id: uuid.UUID, site_id: uuid.UUID, asset_id: uuid.UUID) -> Asset:
        """Check the stored object (size, type, checksum) and mark the asset ready.

        What is checked and then served is a copy the upload form cannot reach."""
        asset = _asset(org_id, site_id, asset_id, lock=True)
        authorize(actor(), "complete", asset)
        assets.complete(storage(), asset)
        db.session().flush()
        return asset


@blp.route("/assets/<uuid:asset_id>/download-url")
class DownloadUrl(MethodView):
    @blp.needs(checks=("read Asset",))
    @blp.response(200, DownloadUrlSchema)
    @blp.alt_response(409, description="The asset is not ready.")
    def get(self, org_id: uuid.UUID, site_id: uuid.UUID, asset_id: uuid.UUID) -> dict[str, Any]:
        """A short-lived presigned GET that downloads the file as an attachment."""
        asset = _asset(org_id, site_id, asset_id)
        authorize(actor(), "read", asset)
        url, expires_at = assets.download_url(storage(), asset)
        return {"url": url, "expires_at": expires_at}

"""Galleries of a site and their items."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app import db
from app.api import Blueprint
from app.api.helpers import Created, created, page, storage
from app.auth.current import actor, actor_cache
from app.authz import authorize, authorized, condition
from app.models import Asset, Gallery, GalleryItem, Site
from app.pagination import Page
from app.services import galleries, tenancy
from schemas.common import Out
from schemas.galleries import (
    GalleryCreateSchema,
    GalleryListArgs,
    GalleryPageSchema,
    GallerySchema,
    GalleryUpdateSchema,
    ItemCreateSchema,
    ItemListArgs,
    ItemListSchema,
    ItemOrderSchema,
    ItemPageSchema,
    ItemSchema,
    ItemUpdateSchema,
    gallery_out,
    item_out,
)

blp = Blueprint(
    "galleries", __name__, url_prefix="/v1/orgs/<uuid:org_id>/sites/<uuid:site_id>/galleries",
    description="Galleries",
)



def _urls(asset_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Download URLs of the ready assets among `asset_ids` the caller may read."""
    read = condition(actor(), "read", Asset)
    return galleries.download_urls(db.session(), storage(), asset_ids, read)


def _gallery_out(gallery: Gallery) -> Out:
    cover = gallery.cover_asset_id
    return gallery_out(gallery, _urls({cover}).get(cover) if cover else None)


def _items_out(rows: list[GalleryItem]) -> list[Out]:
    urls = _urls({item.asset_id for item in rows})
    return [item_out(item, urls) for item in rows]


def _site(org_id: uuid.UUID, site_id: uuid.UUID) -> Site:
    return tenancy.site_ref(db.session(), actor_cache(), org_id, site_id)


def _gallery(
    org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID, *, lock: bool = False,
) -> tuple[Site, Gallery]:
    site = _site(org_id, site_id)
    return site, galleries.get_gallery(db.session(), site, gallery_id, lock=lock)


@blp.route("")
class Galleries(MethodView):
    @blp.needs(checks=("read Site",), lists=("read Gallery", "read Asset"))
    @blp.arguments(GalleryListArgs, location="query")
    @blp.response(200, GalleryPageSchema)
    def get(self, args: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID) -> Page[Out]:
        """Galleries of the site: search, filter, sort, keyset pages."""
        site = _site(org_id, site_id)
        authorize(actor(), "read", site)
        stmt, values = galleries.listing(site, args, condition(actor(), "read", Gallery))
        stmt = galleries.with_covers(stmt, condition(actor(), "read", Asset))
        result = page(stmt, args, values, whole_rows=True)
        items = galleries.covered(storage(), result.items)
        return Page([gallery_out(g, url) for g, url in items], result.next_cursor)

    @blp.needs(checks=("create_gallery Site",), lists=("read Asset",))
    @blp.arguments(GalleryCreateSchema)
    @blp.response(201, GallerySchema)
    def post(self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID) -> Created:
        """Create a gallery (member); the cover must be a ready asset of the site."""
        site = _site(org_id, site_id)
        authorize(actor(), "create_gallery", site)
        gallery = galleries.create_gallery(db.session(), site, data, actor().id)
        return created(_gallery_out(gallery), ".GalleryResource", org_id=org_id,
                       site_id=site_id, gallery_id=gallery.id)


@blp.route("/<uuid:gallery_id>")
class GalleryResource(MethodView):
    @blp.needs(checks=("read Gallery",), lists=("read Asset",))
    @blp.etag
    @blp.response(200, GallerySchema)
    def get(self, org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID) -> Out:
        """Read a gallery (viewer); its `ETag` serves `If-Match` on update."""
        gallery, cover_url = galleries.get_covered(
            db.session(), storage(), _site(org_id, site_id), gallery_id,
            condition(actor(), "read", Asset))
        authorize(actor(), "read", gallery)
        blp.set_etag(galleries.etag(gallery))
        return gallery_out(gallery, cover_url)

    @blp.needs(checks=("update Gallery",), lists=("read Asset",))
    @blp.etag
    @blp.arguments(GalleryUpdateSchema)
    @blp.response(200, GallerySchema)
    def patch(
        self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID
    ) -> Out:
        """Change title, description or cover; needs `If-Match`."""
        site, gallery = _gallery(org_id, site_id, gallery_id, lock=True)
        authorize(actor(), "update", gallery)
        blp.check_etag(galleries.etag(gallery))
        galleries.update_gallery(db.session(), site, gallery, data)
        blp.set_etag(galleries.etag(gallery))
        return _gallery_out(gallery)

    @blp.needs(checks=("delete Gallery",))
    @blp.etag
    @blp.response(204)
    def delete(self, org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID) -> None:
        """Soft-delete (a site_admin can restore it); needs `If-Match`."""
        _, gallery = _gallery(org_id, site_id, gallery_id, lock=True)
        authorize(actor(), "delete", gallery)
        blp.check_etag(galleries.etag(gallery))
        galleries.soft_delete(gallery)


@blp.route("/<uuid:gallery_id>/restore")
class Restore(MethodView):
    @blp.needs(checks=("restore Gallery",), lists=("read Asset",))
    @blp.response(200, GallerySchema)
    def post(self, org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID) -> Out:
        """Bring back a deleted gallery (site_admin)."""
        site = _site(org_id, site_id)
        gallery = galleries.get_gallery(db.session(), site, gallery_id, deleted=True)
        authorize(actor(), "restore", gallery)
        galleries.restore(gallery)
        db.session().flush()
        return _gallery_out(gallery)


@blp.route("/<uuid:gallery_id>/items")
class Items(MethodView):
    @blp.needs(checks=("read Gallery",), lists=("read GalleryItem", "read Asset"))
    @blp.arguments(ItemListArgs, location="query")
    @blp.response(200, ItemPageSchema)
    def get(
        self, args: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID
    ) -> Page[Out]:
        """Items in order."""
        _, gallery = _gallery(org_id, site_id, gallery_id)
        authorize(actor(), "read", gallery)
        stmt = authorized(galleries.items(gallery), actor(), "read", GalleryItem)
        result = page(stmt, args)
        return Page(_items_out(result.items), result.next_cursor)

    @blp.needs(checks=("update Gallery",), lists=("read Asset",))
    @blp.arguments(ItemCreateSchema)
    @blp.response(201, ItemSchema)
    @blp.alt_response(409, description="The asset is already in the gallery.")
    def post(
        self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID
    ) -> Created:
        """Add a ready asset of the same site, at `position` or at the end."""
        site, gallery = _gallery(org_id, site_id, gallery_id, lock=True)
        authorize(actor(), "update", gallery)
        item = galleries.add_item(
            db.session(), site, gallery, data["asset_id"], data["caption"], data["position"]
        )
        return created(_items_out([item])[0], ".Item", org_id=org_id, site_id=site_id,
                       gallery_id=gallery_id, item_id=item.id)


@blp.route("/<uuid:gallery_id>/items/order")
class ItemOrder(MethodView):
    @blp.needs(checks=("update Gallery",), lists=("read Asset",))
    @blp.arguments(ItemOrderSchema)
    @blp.response(200, ItemListSchema)
    def put(
        self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID
    ) -> dict[str, list[Out]]:
        """Reorder every item at once: `item_ids` lists each item exactly once."""
        _, gallery = _gallery(org_id, site_id, gallery_id, lock=True)
        authorize(actor(), "update", gallery)
        ordered = galleries.reorder(db.session(), gallery, data["item_ids"])
        return {"items": _items_out(ordered)}


@blp.route("/<uuid:gallery_id>/items/<uuid:item_id>")
class Item(MethodView):
    @blp.needs(checks=("update Gallery",), lists=("read Asset",))
    @blp.arguments(ItemUpdateSchema)
    @blp.response(200, ItemSchema)
    def patch(
        self, data: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID,
        item_id: uuid.UUID,
    ) -> Out:
        """Change the caption or move the item."""
        _, gallery = _gallery(org_id, site_id, gallery_id, lock=True)
        authorize(actor(), "update", gallery)
        item = galleries.get_item(db.session(), gallery, item_id)
        galleries.update_item(db.session(), gallery, item, data)
        return _items_out([item])[0]

    @blp.needs(checks=("update Gallery",))
    @blp.response(204)
    def delete(
        self, org_id: uuid.UUID, site_id: uuid.UUID, gallery_id: uuid.UUID, item_id: uuid.UUID
    ) -> None:
        """Remove an item from the gallery (its asset stays)."""
        _, gallery = _gallery(org_id, site_id, gallery_id, lock=True)
        authorize(actor(), "update", gallery)
        item = galleries.get_item(db.session(), gallery, item_id)
        galleries.remove_item(db.session(), gallery, item)

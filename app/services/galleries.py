"""Galleries and their ordered items.

Item changes lock the gallery row, keep `item_count` in step (lists and `has_items` need
no aggregate), and bump the gallery's `updated_at`, which is its ETag.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, Uuid, and_, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import BadRequest, Conflict, Missing, NotFound
from app.models import Asset, Gallery, GalleryItem, Site
from app.services.lookups import one_or_missing
from app.storage import Storage


def scoped(site: Site, *, deleted: bool = False) -> Select[tuple[Gallery]]:
    """The site's galleries; the deleted ones instead when `deleted`."""
    alive = Gallery.deleted_at.is_not(None) if deleted else Gallery.deleted_at.is_(None)
    return select(Gallery).where(Gallery.org_id == site.org_id, Gallery.site_id == site.id, alive)


def get_gallery(
    session: Session, site: Site, gallery_id: uuid.UUID, *, deleted: bool = False,
    lock: bool = False,
) -> Gallery:
    stmt = scoped(site, deleted=deleted).where(Gallery.id == gallery_id)
    stmt = stmt.with_for_update() if lock else stmt
    return one_or_missing(session, stmt, Gallery, gallery_id, site.org_id)


# One live gallery of a site, its values bound per call (built once, as `_listing` is).
_ONE_GALLERY = select(Gallery).where(
    Gallery.org_id == bindparam("org_id"), Gallery.site_id == bindparam("site_id"),
    Gallery.id == bindparam("gallery_id"), Gallery.deleted_at.is_(None),
)


def get_covered(
    session: Session, storage: Storage, site: Site, gallery_id: uuid.UUID,
    read_filter: ColumnElement[bool],
) -> tuple[Gallery, str | None]:
    """A live gallery of the site and its cover's download URL (None unless the cover is a
    ready asset that passes `read_filter`, the policy's), in one query; 404 as
    `get_gallery`. What reading one gallery needs (`FOR UPDATE` cannot take the outer
    join: changes lock through `get_gallery`)."""
    found = session.execute(with_covers(_ONE_GALLERY, read_filter), {
        "org_id": site.org_id, "site_id": site.id, "gallery_id": gallery_id}).first()
    if found is None:
        raise NotFound(missing=Missing("Gallery", gallery_id, site.org_id))
    return covered(storage, [found])[0]


def etag(gallery: Gallery) -> dict[str, str]:
    """What the ETag covers: any change, items included, moves `updated_at`."""
    return {"id": str(gallery.id), "updated_at": gallery.updated_at.isoformat()}


def _ready_asset(session: Session, site: Site, asset_id: uuid.UUID, field: str) -> Asset:
    asset = session.scalar(
        select(Asset).where(
            Asset.id == asset_id,
            Asset.org_id == site.org_id,
            Asset.site_id == site.id,
            Asset.deleted_at.is_(None),
        )
    )
    if asset is None or asset.status != "ready":
        raise BadRequest(
            "Only ready assets of this site can be used.",
            errors={field: ["Not a ready asset of this site."]},
        )
    return asset


def create_gallery(
    session: Session, site: Site, data: dict[str, Any], created_by: uuid.UUID
) -> Gallery:
    if data.get("cover_asset_id"):
        _ready_asset(session, site, data["cover_asset_id"], "cover_asset_id")
    gallery = Gallery(
        org_id=site.org_id,
        site_id=site.id,
        title=data["title"],
        description=data.get("description", ""),
        cover_asset_id=data.get("cover_asset_id"),
        created_by=created_by,
        item_count=0,
    )
    session.add(gallery)
    session.flush()
    return gallery


def update_gallery(session: Session, site: Site, gallery: Gallery, changes: dict[str, Any]) -> None:
    if changes.get("cover_asset_id"):
        _ready_asset(session, site, changes["cover_asset_id"], "cover_asset_id")
    for name, value in changes.items():
        setattr(gallery, name, value)
    session.flush()


def soft_delete(gallery: Gallery) -> None:
    gallery.deleted_at = utcnow()


def restore(gallery: Gallery) -> None:
    gallery.deleted_at = None


# The list filters, each comparing a column with a named bind parameter of the same name.
LIST_FILTERS: dict[str, ColumnElement[bool]] = {
    "q": Gallery.title.ilike(bindparam("q"), escape="\\"),
    "created_by": Gallery.created_by == bindparam("created_by"),
    "created_after": Gallery.created_at >= bindparam("created_after"),
    "created_before": Gallery.created_at < bindparam("created_before"),
    "has_items": (Gallery.item_count > 0) == bindparam("has_items"),
}


def listing(
    site: Site, args: dict[str, Any], read_filter: ColumnElement[bool]
) -> tuple[Select[tuple[Gallery]], dict[str, Any]]:
    """The site's live galleries that pass `read_filter` (the policy's) and the filters in
    `args` (title search, creator, creation window, has items): a statement and the values
    of its bind parameters. The statement depends only on which filters are used and on
    `read_filter`, so it is built once and reused: the list costs what hand-written SQL does.
    """
    values: dict[str, Any] = {"org_id": site.org_id, "site_id": site.id}
    values.update((name, args[name]) for name in LIST_FILTERS if args.get(name) is not None)
    if "q" in values:
        values["q"] = f"%{_escape_like(values['q'])}%"
    return _listing(read_filter, tuple(name for name in LIST_FILTERS if name in values)), values


@lru_cache(maxsize=1024)
def _listing(
    read_filter: ColumnElement[bool], filters: tuple[str, ...]
) -> Select[tuple[Gallery]]:
    # Holding `read_filter` in the key keeps it alive: its identity stays its grants'.
    return select(Gallery).where(
        Gallery.org_id == bindparam("org_id"),
        Gallery.site_id == bindparam("site_id"),
        Gallery.deleted_at.is_(None),
        read_filter,
        *(LIST_FILTERS[name] for name in filters),
    )


@lru_cache(maxsize=1024)
def with_covers(
    stmt: Select[tuple[Gallery]], read_filter: ColumnElement[bool]
) -> Select[tuple[Any, ...]]:
    """`stmt` (galleries) with each one's cover, in the same query: the key, file name and
    type of a ready, live asset that passes `read_filter` (the policy's), else NULLs. One
    query for a page of galleries and its covers (`covered` signs their URLs). Built once
    per statement and filter, as `_listing` is."""
    return stmt.add_columns(*_DOWNLOAD).outerjoin(Asset, and_(
        Asset.id == Gallery.cover_asset_id, Asset.org_id == Gallery.org_id,
        *_downloadable(read_filter),
    ))


_DOWNLOAD = (Asset.key, Asset.filename, Asset.content_type)  # what a download URL is made of


def _downloadable(read_filter: ColumnElement[bool]) -> tuple[ColumnElement[bool], ...]:
    """The assets a download URL is given for: ready, live, and passing `read_filter`
    (the policy's): one rule for `with_covers` and `readable_assets`."""
    return Asset.status == "ready", Asset.deleted_at.is_(None), read_filter


def covered(storage: Storage, rows: Iterable[Any]) -> list[tuple[Gallery, str | None]]:
    """(gallery, its cover's download URL or None) for rows of a `with_covers` statement."""
    return [(gallery, None if key is None else storage.presign_get(key, filename, type_)[0])
            for gallery, key, filename, type_ in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def download_urls(
    session: Session, storage: Storage, ids: set[uuid.UUID], read_filter: ColumnElement[bool]
) -> dict[uuid.UUID, str]:
    """Asset id -> a presigned download URL, for the ready, live assets among `ids` that
    pass `read_filter` (the policy's): one query for a whole page of galleries or items."""
    if not ids:
        return {}
    postgresql = session.get_bind().dialect.name == "postgresql"
    return {
        asset_id: storage.presign_get(key, filename, content_type)[0]
        for asset_id, key, filename, content_type in session.execute(
            readable_assets(read_filter, postgresql), {"ids": list(ids)})
    }


@lru_cache(maxsize=1024)
def readable_assets(
    read_filter: ColumnElement[bool], postgresql: bool = True
) -> Select[tuple[Any, ...]]:
    """The ready, live assets among the bound `ids` that pass `read_filter`: what their
    download URLs are made of. Built once per filter, as `_listing` is. On PostgreSQL the
    ids are one array (`= ANY(:ids)`): the same SQL for any number of them, which the
    driver prepares once, where an IN list is rendered again for each count."""
    wanted = (Asset.id == any_(bindparam("ids", type_=ARRAY(Uuid()))) if postgresql
              else Asset.id.in_(bindparam("ids", expanding=True)))
    return select(Asset.id, *_DOWNLOAD).where(wanted, *_downloadable(read_filter))


# -- items --------------------------------------------------------------------------------------


def items(gallery: Gallery) -> Select[tuple[GalleryItem]]:
    return select(GalleryItem).where(
        GalleryItem.site_id == gallery.site_id, GalleryItem.gallery_id == gallery.id
    )


def get_item(session: Session, gallery: Gallery, item_id: uuid.UUID) -> GalleryItem:
    stmt = items(gallery).where(GalleryItem.id == item_id)
    return one_or_missing(session, stmt, GalleryItem, item_id, gallery.org_id)


def _touch(gallery: Gallery, delta: int = 0) -> None:
    gallery.item_count += delta
    gallery.updated_at = utcnow()


def _shift(session: Session, gallery: Gallery, start: int, by: int, end: int | None = None) -> None:
    """Move items with start <= position (< end) by `by` places."""
    stmt = update(GalleryItem).where(
        GalleryItem.gallery_id == gallery.id, GalleryItem.position >= start
    )
    if end is not None:
        stmt = stmt.where(GalleryItem.position < end)
    session.execute(stmt.values(position=GalleryItem.position + by))


def add_item(
    session: Session, site: Site, gallery: Gallery, asset_id: uuid.UUID, caption: str,
    position: int | None,
) -> GalleryItem:
    """Insert at `position` (default: the end); the caller holds the gallery's row lock."""
    _ready_asset(session, site, asset_id, "asset_id")
    if session.scalar(items(gallery).where(GalleryItem.asset_id == asset_id)) is not None:
        raise Conflict("This asset is already in the gallery.")
    end = gallery.item_count
    position = end if position is None else min(position, end)
    _shift(session, gallery, position, 1)
    item = GalleryItem(
        org_id=gallery.org_id, site_id=gallery.site_id, gallery_id=gallery.id,
        asset_id=asset_id, caption=caption, position=position,
    )
    session.add(item)
    _touch(gallery, +1)
    session.flush()
    return item


def update_item(
    session: Session, gallery: Gallery, item: GalleryItem, changes: dict[str, Any]
) -> None:
    """Change the caption, or move the item to another position."""
    if "caption" in changes:
        item.caption = changes["caption"]
    if changes.get("position") is not None:
        target = min(changes["position"], gallery.item_count - 1)
        if target < item.position:
            _shift(session, gallery, target, 1, end=item.position)
        elif target > item.position:
            _shift(session, gallery, item.position + 1, -1, end=target + 1)
        item.position = target
    _touch(gallery)
    session.flush()


def remove_item(session: Session, gallery: Gallery, item: GalleryItem) -> None:
    position = item.position
    session.delete(item)
    session.flush()
    _shift(session, gallery, position + 1, -1)
    _touch(gallery, -1)
    session.flush()


def reorder(session: Session, gallery: Gallery, item_ids: list[uuid.UUID]) -> list[GalleryItem]:
    """Set the order of every item at once; `item_ids` must name each item exactly once."""
    current = {item.id: item for item in session.scalars(items(gallery))}
    if len(item_ids) != len(set(item_ids)) or set(item_ids) != set(current):
        raise BadRequest(
            "Name every item of the gallery exactly once.",
            errors={"item_ids": ["Must be a permutation of the gallery's item ids."]},
        )
    for position, item_id in enumerate(item_ids):
        current[item_id].position = position
    _touch(gallery)
    session.flush()
    return [current[item_id] for item_id in item_ids]


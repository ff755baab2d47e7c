"""Builders and small clients shared by the gallery and gallery-item tests.

Rows written directly (fast: a ready asset is an INSERT, not an upload) and requests that
go through the API (create a gallery, add an item, upload a file for real to moto's S3).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import event, insert, select

from app.db import utcnow
from app.models import Asset, Gallery, GalleryItem, Site
from tests.support import Person, Tenant, World
from tests.support.http import etag, if_match

GALLERY_FIELDS = {
    "id", "site_id", "title", "description", "cover_asset_id", "cover_url", "item_count",
    "created_by", "created_at", "updated_at",
}
ITEM_FIELDS = {
    "id", "gallery_id", "asset_id", "caption", "position", "download_url", "created_at",
    "updated_at",
}


# -- rows written directly ---------------------------------------------------------------------


def new_asset(
    world: World, site: Site, uploader: Person | None = None, *, status: str = "ready",
    deleted: bool = False, filename: str = "photo.png",
) -> uuid.UUID:
    """An asset row (its object need not exist in storage unless something downloads it)."""
    asset_id = uuid.uuid4()
    with world.maker() as session, session.begin():
        session.add(
            Asset(
                id=asset_id,
                org_id=site.org_id,
                site_id=site.id,
                key=f"orgs/{site.org_id}/sites/{site.id}/assets/{asset_id}",
                filename=filename,
                content_type="image/png",
                size_bytes=1234,
                status=status,
                tags=[],
                created_by=uploader.id if uploader else None,
                completed_at=utcnow() if status == "ready" else None,
                deleted_at=utcnow() if deleted else None,
            )
        )
    return asset_id


def new_assets(world: World, site: Site, count: int) -> list[uuid.UUID]:
    """`count` ready assets in one statement."""
    ids = [uuid.uuid4() for _ in range(count)]
    now = utcnow()
    with world.maker() as session, session.begin():
        session.execute(
            insert(Asset),
            [
                {
                    "id": i, "org_id": site.org_id, "site_id": site.id,
                    "key": f"orgs/{site.org_id}/sites/{site.id}/assets/{i}",
                    "filename": f"f{n}.png", "content_type": "image/png", "size_bytes": 10,
                    "status": "ready", "tags": [], "completed_at": now,
                    "created_at": now, "updated_at": now,
                }
                for n, i in enumerate(ids)
            ],
        )
    return ids


def new_gallery(
    world: World, site: Site, creator: Person | None, *, title: str = "Holiday",
    items: Iterable[uuid.UUID] = (), cover: uuid.UUID | None = None, deleted: bool = False,
    created_at: datetime | None = None, updated_at: datetime | None = None,
) -> uuid.UUID:
    """A gallery row holding `items` (asset ids) in that order."""
    assets = list(items)
    gallery_id = uuid.uuid4()
    stamp = created_at or utcnow()
    with world.maker() as session, session.begin():
        session.add(
            Gallery(
                id=gallery_id, org_id=site.org_id, site_id=site.id, title=title,
                description="", cover_asset_id=cover,
                created_by=creator.id if creator else None, item_count=len(assets),
                deleted_at=utcnow() if deleted else None,
                created_at=stamp, updated_at=updated_at or stamp,
            )
        )
        session.flush()
        session.add_all(
            GalleryItem(
                org_id=site.org_id, site_id=site.id, gallery_id=gallery_id, asset_id=asset,
                caption=f"caption {n}", position=n,
            )
            for n, asset in enumerate(assets)
        )
    return gallery_id


def insert_galleries(world: World, rows: list[dict[str, Any]]) -> None:
    """Many gallery rows in one statement (keys as the Gallery columns)."""
    with world.maker() as session, session.begin():
        session.execute(insert(Gallery), rows)


def item_ids(world: World, gallery_id: uuid.UUID) -> list[uuid.UUID]:
    """The gallery's items, in position order, as stored."""
    with world.maker() as session:
        return list(
            session.scalars(
                select(GalleryItem.id)
                .where(GalleryItem.gallery_id == gallery_id)
                .order_by(GalleryItem.position)
            )
        )


def stored_positions(world: World, gallery_id: uuid.UUID) -> list[int]:
    with world.maker() as session:
        return sorted(
            session.scalars(
                select(GalleryItem.position).where(GalleryItem.gallery_id == gallery_id)
            )
        )


def stored_item_count(world: World, gallery_id: uuid.UUID) -> int:
    with world.maker() as session:
        return session.get(Gallery, gallery_id).item_count


def without_urls(body: Any) -> Any:
    """Presigned URLs are signed anew on every read (their date changes): drop them."""
    if isinstance(body, dict):
        return {k: without_urls(v) for k, v in body.items() if not k.endswith("_url")}
    if isinstance(body, list):
        return [without_urls(v) for v in body]
    return body


# -- paths and API calls -----------------------------------------------------------------------


def galleries_path(tenant: Tenant) -> str:
    return f"{tenant.site_path}/galleries"


def gallery_path(tenant: Tenant, gallery_id: Any) -> str:
    return f"{tenant.site_path}/galleries/{gallery_id}"


def items_path(tenant: Tenant, gallery_id: Any) -> str:
    return f"{gallery_path(tenant, gallery_id)}/items"


def item_path(tenant: Tenant, gallery_id: Any, item_id: Any) -> str:
    return f"{items_path(tenant, gallery_id)}/{item_id}"


def create_gallery(client: Any, tenant: Tenant, person: Person, **body: Any) -> dict:
    body.setdefault("title", "Holiday")
    response = client.post(galleries_path(tenant), json=body, headers=person.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def add_item(
    client: Any, tenant: Tenant, gallery_id: Any, person: Person, asset_id: Any, **body: Any
) -> Any:
    return client.post(
        items_path(tenant, gallery_id),
        json={"asset_id": str(asset_id), **body},
        headers=person.headers,
    )


def patch_gallery(client: Any, tenant: Tenant, gallery_id: Any, person: Person, **body: Any):
    path = gallery_path(tenant, gallery_id)
    tag = etag(client, path, person)
    return client.patch(path, json=body, headers=if_match(person.headers, tag))


def delete_gallery(client: Any, tenant: Tenant, gallery_id: Any, person: Person) -> Any:
    path = gallery_path(tenant, gallery_id)
    return client.delete(path, headers=if_match(person.headers, etag(client, path, person)))


def positions(client: Any, tenant: Tenant, gallery_id: Any, person: Person) -> list[tuple]:
    """(asset_id, position) of every item, in the order the API lists them."""
    response = client.get(
        items_path(tenant, gallery_id), query_string={"limit": 100}, headers=person.headers
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["next_cursor"] is None
    return [(i["asset_id"], i["position"]) for i in body["items"]]


def upload(client: Any, tenant: Tenant, person: Person, data: bytes, *,
           content_type: str = "image/png", filename: str = "photo.png") -> dict:
    """A file uploaded the real way: presigned POST to S3 over HTTP, then `complete`."""
    response = client.post(
        f"{tenant.site_path}/uploads",
        json={"filename": filename, "content_type": content_type, "size_bytes": len(data)},
        headers=person.headers,
    )
    assert response.status_code == 201, response.get_json()
    started = response.get_json()
    assert started["asset"]["status"] == "pending"
    post = started["upload"]
    stored = requests.post(
        post["url"], data=post["fields"], files={"file": (filename, data, content_type)},
        timeout=10,
    )
    assert stored.status_code in (200, 201, 204), stored.text
    done = client.post(
        f"{tenant.site_path}/assets/{started['asset']['id']}/complete", headers=person.headers
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "ready"
    return done.get_json()


# -- counting SQL statements -------------------------------------------------------------------


@dataclass
class StatementCounter:
    """Counts the statements sent to the database while active (a context manager)."""

    engine: Any
    statements: list[str] = field(default_factory=list)

    def _count(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        self.statements.clear()
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)

    @property
    def count(self) -> int:
        return len(self.statements)

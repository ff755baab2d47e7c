"""Uploads and assets: sign an upload, verify it for real, sign downloads, purge."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import one_or_404, utcnow
from app.errors import ApiError, BadRequest, Conflict
from app.media_types import extension_problem
from app.models import Asset, Site
from app.storage import PresignedPost, Storage

log = logging.getLogger("app.assets")


@dataclass(frozen=True)
class Upload:
    asset: Asset
    post: PresignedPost


def object_key(site: Site, asset_id: uuid.UUID) -> str:
    """Chosen by the server, under the site's prefix: clients never name storage keys."""
    return f"orgs/{site.org_id}/sites/{site.id}/assets/{asset_id}"


def start_upload(
    session: Session,
    storage: Storage,
    settings: Settings,
    site: Site,
    *,
    filename: str,
    content_type: str,
    size_bytes: int,
    sha256: str | None,
    created_by: uuid.UUID,
) -> Upload:
    if size_bytes > settings.upload_max_bytes:
        raise ApiError.of(
            413, f"Files may be at most {settings.upload_max_bytes} bytes.",
            errors={"size_bytes": [f"At most {settings.upload_max_bytes}."]},
        )
    if content_type not in settings.upload_content_types:
        raise ApiError.of(
            415, "This content type is not accepted.",
            errors={"content_type": [f"One of: {', '.join(settings.upload_content_types)}."]},
        )
    mismatch = extension_problem(filename, content_type)
    if mismatch:
        raise BadRequest("The file name's extension does not agree with its content type.",
                         errors={"filename": [mismatch]})
    asset_id = uuid.uuid4()
    asset = Asset(
        id=asset_id,
        org_id=site.org_id,
        site_id=site.id,
        key=object_key(site, asset_id),
        filename=filename,
        content_type=content_type,
        size_bytes=size_bytes,
        sha256=sha256,
        status="pending",
        tags=[],
        created_by=created_by,
    )
    session.add(asset)
    session.flush()
    return Upload(asset, storage.presign_post(asset.key, content_type, size_bytes))


def complete(storage: Storage, asset: Asset) -> None:
    """Mark the asset ready once storage holds exactly what was signed for.

    Both refusals are 409s, about the state of storage rather than the request:
    `upload-missing` (nothing stored yet) and `upload-mismatch` (the stored object differs
    from the declared size, type or checksum; `errors` says how)."""
    if asset.status == "ready":
        return
    info = storage.head(asset.key)
    if info is None:
        raise Conflict("The file has not been uploaded yet.", type_="upload-missing")
    problems: dict[str, list[str]] = {}
    if info.size != asset.size_bytes:
        problems["size_bytes"] = [f"Stored {info.size} bytes, declared {asset.size_bytes}."]
    if info.content_type != asset.content_type:
        problems["content_type"] = ["The stored content type differs from the declared one."]
    if not problems and asset.sha256 and storage.sha256(asset.key) != asset.sha256:
        problems["sha256"] = ["The stored bytes do not match the declared checksum."]
    if problems:
        raise Conflict("The uploaded file does not match the upload.", errors=problems,
                       type_="upload-mismatch")
    asset.status = "ready"
    asset.completed_at = utcnow()


def scoped(org_id: uuid.UUID, site_id: uuid.UUID) -> Any:
    return select(Asset).where(
        Asset.org_id == org_id, Asset.site_id == site_id, Asset.deleted_at.is_(None)
    )


def get_asset(session: Session, site: Site, asset_id: uuid.UUID) -> Asset:
    return one_or_404(session, scoped(site.org_id, site.id).where(Asset.id == asset_id))


def soft_delete(asset: Asset) -> None:
    asset.deleted_at = utcnow()


def download_url(storage: Storage, asset: Asset) -> tuple[str, datetime]:
    if asset.status != "ready":
        raise Conflict("The asset is not ready yet.", type_="asset-not-ready")
    return storage.presign_get(asset.key, asset.filename, asset.content_type)


def purge(session: Session, storage: Storage, pending_older_than: timedelta) -> int:
    """Remove the objects of deleted assets and of uploads never completed in time.
    Rows stay (deleted, purged) so the audit trail keeps its references. Deleting an
    object twice is harmless, so a failed commit only means the next run redoes it."""
    now = utcnow()
    stale = session.scalars(
        select(Asset).where(
            Asset.purged_at.is_(None),
            or_(
                Asset.deleted_at.is_not(None),
                (Asset.status == "pending") & (Asset.created_at < now - pending_older_than),
            ),
        )
    ).all()
    for asset in stale:
        storage.delete(asset.key)  # deleting a missing key succeeds
        asset.deleted_at = asset.deleted_at or now
        asset.purged_at = now
    return len(stale)

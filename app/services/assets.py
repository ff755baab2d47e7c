"""Uploads and assets: sign an upload, verify it for real, sign downloads, purge."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow
from app.errors import ApiError, BadRequest, Conflict
from app.media_types import extension_problem
from app.models import Asset, Site
from app.services.lookups import one_or_missing
from app.storage import PresignedPost, Storage, StorageError

log = logging.getLogger("app.assets")


@dataclass(frozen=True)
class Upload:
    asset: Asset
    post: PresignedPost


# Keys are chosen by the server, never from a client's input. An upload form writes to its
# asset's upload key for as long as the form lives, `complete` included and after: what was
# verified is a server-side copy under the final key, which no form names. Upload keys share
# one prefix so that `purge` can list what is left there.
UPLOADS_PREFIX = "uploads/"


def upload_key(asset: Asset) -> str:
    return f"{UPLOADS_PREFIX}orgs/{asset.org_id}/sites/{asset.site_id}/{asset.id}"


def final_key(asset: Asset) -> str:
    return f"orgs/{asset.org_id}/sites/{asset.site_id}/assets/{asset.id}"


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
    asset = Asset(
        id=uuid.uuid4(),
        org_id=site.org_id,
        site_id=site.id,
        filename=filename,
        content_type=content_type,
        size_bytes=size_bytes,
        sha256=sha256,
        status="pending",
        tags=[],
        created_by=created_by,
    )
    asset.key = upload_key(asset)  # `key`: where the object is now
    session.add(asset)
    session.flush()
    return Upload(asset, storage.presign_post(asset.key, content_type, size_bytes))


def complete(storage: Storage, asset: Asset) -> None:
    """Mark the asset ready once storage holds exactly what was signed for.

    The upload is copied to the final key, the copy is what is checked, and the asset then
    points at it: the form, still valid, can only ever replace the upload object. `asset`
    must be locked (`get_asset(..., lock=True)`), or a concurrent complete could overwrite
    a copy this one verified. With no upload object left, a copy an earlier attempt made
    (its commit failed after the upload object was removed) is checked instead: no form
    names a final key. Rows signed before uploads had keys of their own are checked in
    place, as they were then.

    Both refusals are 409s, about the state of storage rather than the request:
    `upload-missing` (nothing stored yet) and `upload-mismatch` (the stored object differs
    from the declared size, type or checksum; `errors` says how)."""
    if asset.status == "ready":
        return
    storage.require()  # known down: 503 at once, rather than after every call's retries
    final = final_key(asset)
    upload = asset.key if asset.key != final else None
    if upload:
        storage.copy(upload, final)
    info = storage.head(final)
    if info is None:
        raise Conflict("The file has not been uploaded yet.", type_="upload-missing")
    problems: dict[str, list[str]] = {}
    if info.size != asset.size_bytes:
        problems["size_bytes"] = [f"Stored {info.size} bytes, declared {asset.size_bytes}."]
    if info.content_type != asset.content_type:
        problems["content_type"] = ["The stored content type differs from the declared one."]
    if not problems and asset.sha256 and storage.sha256(final) != asset.sha256:
        problems["sha256"] = ["The stored bytes do not match the declared checksum."]
    if problems:
        storage.delete(final)  # the asset stays pending: the client may upload again
        raise Conflict("The uploaded file does not match the upload.", errors=problems,
                       type_="upload-mismatch")
    asset.key = final
    asset.status = "ready"
    asset.completed_at = utcnow()
    if upload:
        try:
            storage.delete(upload)
        except StorageError:  # the asset is sound: `purge` removes the upload object later
            log.warning("upload object left behind", exc_info=True,
                        extra={"fields": {"asset_id": str(asset.id)}})


def scoped(org_id: uuid.UUID, site_id: uuid.UUID) -> Select[tuple[Asset]]:
    return select(Asset).where(
        Asset.org_id == org_id, Asset.site_id == site_id, Asset.deleted_at.is_(None)
    )


def listing(
    site: Site, *, status: str | None, content_type: str | None
) -> Select[tuple[Asset]]:
    """The site's live assets, with the list's filters (the caller ANDs its read filter)."""
    stmt = scoped(site.org_id, site.id)
    if status:
        stmt = stmt.where(Asset.status == status)
    if content_type:
        stmt = stmt.where(Asset.content_type == content_type)
    return stmt


def get_asset(session: Session, site: Site, asset_id: uuid.UUID, *, lock: bool = False) -> Asset:
    """The live asset; `lock` holds its row (FOR UPDATE) until the transaction ends."""
    stmt = scoped(site.org_id, site.id).where(Asset.id == asset_id)
    stmt = stmt.with_for_update() if lock else stmt
    return one_or_missing(session, stmt, Asset, asset_id, site.org_id)


def soft_delete(asset: Asset) -> None:
    asset.deleted_at = utcnow()


def download_url(storage: Storage, asset: Asset) -> tuple[str, datetime]:
    if asset.status != "ready":
        raise Conflict("The asset is not ready yet.", type_="asset-not-ready")
    storage.require()  # a URL to a storage that is down would fail in the client's hands
    return storage.presign_get(asset.key, asset.filename, asset.content_type)


@dataclass(frozen=True)
class Purged:
    assets: int  # rows marked purged: deleted, or pending past the deadline
    uploads: int  # upload objects no live upload needs any more


def purge(session: Session, storage: Storage, pending_older_than: timedelta) -> Purged:
    """Remove the objects of deleted assets and of uploads never completed in time, then
    whatever is left under the upload prefix but a live upload's object (an upload form
    may write again after `complete`; a failed delete may have left one behind).
    Rows stay (deleted, purged) so the audit trail keeps its references. Deleting an
    object twice is harmless, so a failed commit only means the next run redoes it."""
    now = utcnow()
    deadline = now - pending_older_than
    stale = session.scalars(
        select(Asset).where(
            Asset.purged_at.is_(None),
            or_(
                Asset.deleted_at.is_not(None),
                (Asset.status == "pending") & (Asset.created_at < deadline),
            ),
        )
        # A row a `complete` holds is left to the next run.
        .with_for_update(skip_locked=True)
    ).all()
    for asset in stale:
        for key in {upload_key(asset), final_key(asset), asset.key}:
            storage.delete(key)  # deleting a missing key succeeds
        asset.deleted_at = asset.deleted_at or now
        asset.purged_at = now
    session.flush()
    return Purged(len(stale), _purge_uploads(session, storage, deadline))


def _purge_uploads(session: Session, storage: Storage, deadline: datetime) -> int:
    """Delete the upload objects of every asset but the pending ones younger than `deadline`
    (the rows just purged included, and keys of no row at all)."""
    removed = 0
    for keys in storage.keys(UPLOADS_PREFIX):
        owners = {key: _asset_id(key) for key in keys}
        live = set(session.scalars(select(Asset.id).where(
            Asset.id.in_([i for i in owners.values() if i is not None]),
            Asset.status == "pending",
            Asset.deleted_at.is_(None),
            Asset.created_at >= deadline,
        )))
        for key, asset_id in owners.items():
            if asset_id is not None and asset_id not in live:
                storage.delete(key)
                removed += 1
    return removed


_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_UPLOAD_KEY = re.compile(rf"{UPLOADS_PREFIX}orgs/{_UUID}/sites/{_UUID}/({_UUID})")


def _asset_id(key: str) -> uuid.UUID | None:
    """The asset an upload key belongs to; None for a key this app did not make."""
    match = _UPLOAD_KEY.fullmatch(key)
    return uuid.UUID(match[1]) if match else None

"""Helpers for the upload and asset tests: the API calls of an upload, the stored rows
and objects (read through the owner session and boto3 against moto's S3 server)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from botocore.exceptions import ClientError

from app.media_types import extensions
from app.models import Asset
from tests.support import Person, Tenant, World

ASSET_FIELDS = {
    "id", "site_id", "filename", "content_type", "size_bytes", "sha256", "status", "title",
    "alt_text", "tags", "created_by", "created_at", "updated_at", "completed_at",
}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # 1032 bytes


def uploads_path(tenant: Tenant) -> str:
    return f"{tenant.site_path}/uploads"


def assets_path(tenant: Tenant) -> str:
    return f"{tenant.site_path}/assets"


def asset_path(tenant: Tenant, asset_id: Any) -> str:
    return f"{tenant.site_path}/assets/{asset_id}"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start(
    client: Any, tenant: Tenant, person: Person, data: bytes = PNG, *,
    content_type: str = "image/png", filename: str | None = None, size: int | None = None,
    sha256: str | None = None, headers: dict[str, str] | None = None,
) -> Any:
    """POST .../uploads for `data` (or a declared `size`); by default `photo` with the first
    extension of `content_type` (app/media_types.py), or `.bin` for a type it does not know."""
    if filename is None:
        filename = "photo" + (extensions(content_type) or (".bin",))[0]
    body: dict[str, Any] = {
        "filename": filename, "content_type": content_type,
        "size_bytes": len(data) if size is None else size,
    }
    if sha256 is not None:
        body["sha256"] = sha256
    return client.post(uploads_path(tenant), json=body, headers=headers or person.headers)


def started(client: Any, tenant: Tenant, person: Person, data: bytes = PNG, **kw: Any) -> dict:
    response = start(client, tenant, person, data, **kw)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def send(post: dict, data: bytes, *, content_type: str | None = None) -> requests.Response:
    """What a browser does with the presigned POST: the form fields, then the file."""
    form = dict(post["fields"])
    if content_type is not None:
        form["Content-Type"] = content_type
    response = requests.post(
        post["url"], data=form, files={"file": ("upload", data, form["Content-Type"])},
        timeout=10,
    )
    assert response.status_code in (200, 201, 204), response.text
    return response


def complete(client: Any, tenant: Tenant, person: Person, asset_id: Any,
             headers: dict[str, str] | None = None) -> Any:
    return client.post(f"{asset_path(tenant, asset_id)}/complete",
                       headers=headers or person.headers)


def download_url(client: Any, tenant: Tenant, person: Person, asset_id: Any,
                 headers: dict[str, str] | None = None) -> Any:
    return client.get(f"{asset_path(tenant, asset_id)}/download-url",
                      headers=headers or person.headers)


def policy_of(post: dict) -> dict:
    return json.loads(base64.b64decode(post["fields"]["policy"]))


def stored(world: World, asset_id: Any) -> Asset:
    with world.maker() as session:
        asset = session.get(Asset, uuid.UUID(str(asset_id)))
        assert asset is not None
        session.expunge(asset)
        return asset


def s3(app: Any) -> Any:
    return app.extensions["storage"]


def put_object(app: Any, key: str, data: bytes, content_type: str = "image/png") -> None:
    storage = s3(app)
    storage.client.put_object(Bucket=storage.bucket, Key=key, Body=data, ContentType=content_type)


def object_exists(app: Any, key: str) -> bool:
    storage = s3(app)
    try:
        storage.client.head_object(Bucket=storage.bucket, Key=key)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"), exc.response
        return False
    return True


@dataclass
class Stored:
    """An asset row whose object is really in the bucket."""

    id: uuid.UUID
    key: str


def stored_asset(app: Any, world: World, site: Any, uploader: Person | None, *,
                 status: str = "ready", data: bytes = PNG, filename: str = "photo.png",
                 content_type: str = "image/png", **extra: Any) -> Stored:
    """Pending: the object is at its upload key; ready: at its final key (see complete)."""
    from app.db import utcnow
    from app.services.assets import final_key, upload_key

    asset = Asset(
        id=uuid.uuid4(), org_id=site.org_id, site_id=site.id, filename=filename,
        content_type=content_type, size_bytes=len(data), status=status, tags=[],
        created_by=uploader.id if uploader else None,
        completed_at=utcnow() if status == "ready" else None, **extra,
    )
    asset.key = final_key(asset) if status == "ready" else upload_key(asset)
    with world.maker() as session, session.begin():
        session.add(asset)
    put_object(app, asset.key, data, content_type)
    return Stored(asset.id, asset.key)

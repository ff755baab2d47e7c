"""Uploads and assets."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates

from app.models import ASSET_STATUSES, Asset
from schemas.common import (
    CONTROL_CHARS,
    FullMatch,
    StrictSchema,
    Text,
    list_args,
    no_format_chars,
    page_of,
)

# The pattern bounds it already; the maximum says so to clients (and to app/uri.py's sum).
CONTENT_TYPE = [
    validate.Length(max=127),
    FullMatch(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$"),
]
SHA256 = FullMatch(r"^[0-9a-f]{64}$", error="A lower-case hex SHA-256.")


class UploadCreateSchema(StrictSchema):
    filename = Text(required=True, max_length=255)
    content_type = fields.String(required=True, validate=CONTENT_TYPE)
    size_bytes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    sha256 = fields.String(load_default=None, allow_none=True, validate=SHA256)

    @validates("filename")
    def _no_paths(self, value: str, **_: object) -> None:
        if "/" in value or "\\" in value or value in (".", ".."):
            raise ValidationError("A file name, not a path.")


class AssetSchema(StrictSchema):
    id = fields.UUID(required=True)
    site_id = fields.UUID(required=True)
    filename = fields.String(required=True)
    content_type = fields.String(required=True)
    size_bytes = fields.Integer(required=True)
    sha256 = fields.String(allow_none=True, required=True)
    status = fields.String(required=True, metadata={"enum": list(ASSET_STATUSES)})
    title = fields.String(allow_none=True, required=True)
    alt_text = fields.String(allow_none=True, required=True)
    tags = fields.List(fields.String(), required=True)
    created_by = fields.UUID(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    completed_at = fields.DateTime(allow_none=True, required=True)


class PresignedPostSchema(StrictSchema):
    url = fields.String(required=True)
    fields_ = fields.Dict(
        data_key="fields", attribute="fields", keys=fields.String(), values=fields.String(),
        required=True, metadata={"description": "Form fields to send before the file."},
    )
    expires_at = fields.DateTime(required=True)


class UploadSchema(StrictSchema):
    asset = fields.Nested(AssetSchema, required=True)
    upload = fields.Nested(PresignedPostSchema, required=True)


class Tag(fields.String):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text or len(text) > 50 or CONTROL_CHARS.search(text):
            raise ValidationError("1 to 50 printable characters.")
        return no_format_chars(text)


class AssetUpdateSchema(StrictSchema):
    title = Text(allow_none=True)
    alt_text = Text(allow_none=True, max_length=1000)
    tags = fields.List(Tag(), validate=validate.Length(max=30))


class DownloadUrlSchema(StrictSchema):
    url = fields.String(required=True)
    expires_at = fields.DateTime(required=True, metadata={"description": (
        "When the URL stops working. The same URL is handed out for a while (so browsers "
        "reuse what they cached), hence at most DOWNLOAD_URL_TTL_SECONDS from now and at "
        "least that minus min(TTL/2, 5 minutes).")})


class AssetListArgs(list_args(  # type: ignore[misc]  # a base made at run time: mypy cannot follow it
    {"created_at": Asset.created_at, "filename": Asset.filename, "size_bytes": Asset.size_bytes},
    "-created_at",
)):
    status = fields.String(load_default=None, validate=validate.OneOf(ASSET_STATUSES))
    content_type = fields.String(load_default=None, validate=CONTENT_TYPE)


AssetPageSchema = page_of(AssetSchema, "AssetPage")

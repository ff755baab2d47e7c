"""Galleries and their items."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import fields, validate

from app.models import Gallery, GalleryItem
from schemas.common import (
    NO_NUL,
    PROSE,
    Out,
    StrictSchema,
    Text,
    list_args,
    no_format_chars,
    page_of,
)

# Captions may span lines, but are held to the names' rule on invisible characters.
CAPTION: list[Callable[[str], Any]] = [validate.Length(max=1000), NO_NUL, no_format_chars]


class GalleryCreateSchema(StrictSchema):
    title = Text(required=True)
    description = fields.String(load_default="", validate=[validate.Length(max=5000), PROSE])
    cover_asset_id = fields.UUID(load_default=None, allow_none=True)


class GalleryUpdateSchema(StrictSchema):
    title = Text()
    description = fields.String(validate=[validate.Length(max=5000), PROSE])
    cover_asset_id = fields.UUID(allow_none=True)


class GallerySchema(StrictSchema):
    id = fields.UUID(required=True)
    site_id = fields.UUID(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    cover_asset_id = fields.UUID(allow_none=True, required=True)
    cover_url = fields.String(
        allow_none=True, required=True,
        metadata={"description": "Short-lived download URL of the cover, when readable."},
    )
    item_count = fields.Integer(required=True)
    created_by = fields.UUID(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class GalleryListArgs(list_args(  # type: ignore[misc]  # a base made at run time: mypy cannot follow it
    {"created_at": Gallery.created_at, "updated_at": Gallery.updated_at, "title": Gallery.title},
    "-created_at",
)):
    q = fields.String(
        load_default=None, validate=[validate.Length(min=1, max=200), NO_NUL],
        metadata={"description": "Case-insensitive search in titles."},
    )
    created_by = fields.UUID(load_default=None)
    created_after = fields.AwareDateTime(load_default=None)
    created_before = fields.AwareDateTime(load_default=None)
    has_items = fields.Boolean(load_default=None)


class ItemCreateSchema(StrictSchema):
    asset_id = fields.UUID(required=True)
    caption = fields.String(load_default="", validate=CAPTION)
    position = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0),
        metadata={"description": "0-based; default: the end."},
    )


class ItemUpdateSchema(StrictSchema):
    caption = fields.String(validate=CAPTION)
    position = fields.Integer(strict=True, validate=validate.Range(min=0))


class ItemOrderSchema(StrictSchema):
    item_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(max=10_000))


class ItemSchema(StrictSchema):
    id = fields.UUID(required=True)
    gallery_id = fields.UUID(required=True)
    asset_id = fields.UUID(required=True)
    caption = fields.String(required=True)
    position = fields.Integer(required=True)
    download_url = fields.String(
        allow_none=True, required=True,
        metadata={"description": "Short-lived download URL of the asset, when readable."},
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class ItemListSchema(StrictSchema):
    items = fields.List(fields.Nested(ItemSchema), required=True)


ItemListArgs = list_args({"position": GalleryItem.position}, "position", max_limit=100)
GalleryPageSchema = page_of(GallerySchema, "GalleryPage")
ItemPageSchema = page_of(ItemSchema, "ItemPage")


def gallery_out(gallery: Gallery, cover_url: str | None) -> Out:
    """A gallery as GallerySchema dumps it: with its cover's download URL, when the caller
    may read the cover."""
    return Out(gallery, cover_url=cover_url)


def item_out(item: GalleryItem, urls: Mapping[uuid.UUID, str]) -> Out:
    """An item as ItemSchema dumps it: with its asset's download URL, when readable."""
    return Out(item, download_url=urls.get(item.asset_id))

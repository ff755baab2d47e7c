"""StrictSchema's dump reads attributes itself (schemas/common.py): it must answer exactly
what marshmallow's own path answers, for every schema and every kind of row it dumps."""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from datetime import UTC, datetime

import pytest
from marshmallow import Schema

import schemas
from app.models import Organization, Site
from app.models.resource import Place, described, make
from app.pagination import Page
from schemas.assets import AssetSchema
from schemas.auth import MeSchema
from schemas.common import Out, StrictSchema
from schemas.galleries import GalleryPageSchema, GallerySchema
from schemas.tenancy import SiteSchema


def _schemas() -> list[type[StrictSchema]]:
    for info in pkgutil.iter_modules(schemas.__path__):
        importlib.import_module(f"schemas.{info.name}")
    found, todo = set(), [StrictSchema]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return sorted(found, key=lambda s: s.__qualname__)


def _rows() -> list[object]:
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    org = Organization(id=uuid.uuid4(), name="o", created_at=now, updated_at=now)
    site = Site(id=uuid.uuid4(), org_id=org.id, name="s", created_at=now, updated_at=now)
    place = Place(org=org, site=site, created_by=uuid.uuid4())
    rows: list[object] = []
    for model, _ in described():
        row = make(model, place)
        for column in ("created_at", "updated_at"):
            if hasattr(row, column):
                setattr(row, column, now)
        rows += [row, Out(row, cover_url="https://x/y?z=1", download_url=None, current=True)]
    return rows


def _dumps(schema: type[Schema], objects: list[object]) -> list[object]:
    """Each object's dump, or the error it raised (both paths must raise alike)."""
    out: list[object] = []
    for many, obj in [(False, o) for o in objects] + [(True, objects[:6])]:
        try:
            out.append(schema(many=many).dump(obj))
        except Exception as exc:  # compared, not swallowed
            out.append(("raised", type(exc).__name__))
    return out


def _objects() -> list[object]:
    rows = _rows()
    pages = [Page(rows[i:i + 3], None if i else "next") for i in range(0, len(rows), 3)]
    mapping = {"id": uuid.uuid4(), "email": "a@b.test", "display_name": "A",
               "created_at": datetime.now(UTC), "email_verified": True,
               "memberships": [{"org_id": uuid.uuid4(), "site_id": None, "role": "viewer"}]}
    return [*rows, *pages, mapping]


@pytest.mark.parametrize("schema", _schemas(), ids=lambda s: s.__qualname__)
def test_dump_is_marshmallow_s(schema, monkeypatch):
    objects = _objects()
    fast = _dumps(schema, objects)
    monkeypatch.setattr(StrictSchema, "_serialize", Schema._serialize)
    assert fast == _dumps(schema, objects)


def test_the_comparison_dumps_whole_answers():
    """Non-vacuity: the objects fill every field of the schemas the hot endpoints dump."""
    complete = {}
    for schema in (GalleryPageSchema, GallerySchema, MeSchema, SiteSchema, AssetSchema):
        dumps = [d for d in _dumps(schema, _objects()) if isinstance(d, dict)]
        complete[schema.__name__] = any(set(d) == set(schema().dump_fields) for d in dumps)
    assert all(complete.values()), complete

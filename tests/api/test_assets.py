"""Assets (issue 4): GET .../assets (filters, sort, cursor pagination), GET/PATCH/DELETE
.../assets/{id}, GET .../assets/{id}/download-url (fetched for real from moto's S3)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import insert

from app.models import Asset
from app.storage import signing_window
from tests.support import Tenant, World
from tests.support.http import (
    BAD_NAMES,
    RoleCase,
    assert_problem,
    check_each,
    check_role_case,
    items,
    role_table,
)
from tests.support.uploads import (
    ASSET_FIELDS,
    PNG,
    asset_path,
    assets_path,
    complete,
    download_url,
    object_exists,
    send,
    started,
    stored,
    stored_asset,
)

pytestmark = pytest.mark.portable


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- list --------------------------------------------------------------------------------------

T0 = datetime(2030, 1, 1, tzinfo=UTC)
# (filename, size, minutes after T0, status, content type, deleted): ties on purpose.
ROWS = [
    ("delta.png", 30, 0, "ready", "image/png", False),
    ("alpha.png", 10, 1, "ready", "image/png", False),
    ("charlie.jpg", 30, 0, "pending", "image/jpeg", False),
    ("alpha.png", 20, 2, "ready", "image/jpeg", False),
    ("bravo.pdf", 10, 1, "pending", "application/pdf", False),
    ("echo.png", 50, 2, "ready", "image/png", False),
    ("alpha.png", 10, 0, "ready", "image/png", False),
    ("bravo.png", 40, 3, "ready", "image/png", False),
    ("zulu.png", 99, 4, "ready", "image/png", True),
]


@pytest.fixture
def listed(world, tenant) -> dict[uuid.UUID, tuple]:
    rows = {}
    values = []
    for name, size, step, status, ctype, deleted in ROWS:
        asset_id = uuid.uuid4()
        rows[asset_id] = (name, size, step, status, ctype, deleted)
        stamp = T0 + timedelta(minutes=step)
        values.append({
            "id": asset_id, "org_id": tenant.org.id, "site_id": tenant.site.id,
            "key": f"orgs/{tenant.org.id}/sites/{tenant.site.id}/assets/{asset_id}",
            "filename": name, "content_type": ctype, "size_bytes": size, "status": status,
            "tags": [], "created_at": stamp, "updated_at": stamp,
            "completed_at": stamp if status == "ready" else None,
            "deleted_at": stamp if deleted else None,
        })
    with world.maker() as session, session.begin():
        session.execute(insert(Asset), values)
    return rows


def test_list_shape_and_default_order(client, tenant, listed):
    response = client.get(assets_path(tenant), headers=tenant["viewer"].headers)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
    live = {i for i, r in listed.items() if not r[5]}
    assert {uuid.UUID(a["id"]) for a in body["items"]} == live
    for asset in body["items"]:
        assert set(asset) == ASSET_FIELDS
        assert "orgs/" not in str(asset)  # the storage key is never shown
    stamps = [_utc(a["created_at"]) for a in body["items"]]
    assert stamps == sorted(stamps, reverse=True)  # default: newest first


@pytest.mark.parametrize("sort", ["created_at", "-created_at", "filename", "-filename",
                                  "size_bytes", "-size_bytes"])
def test_sort_and_cursor_pagination(client, tenant, listed, sort):
    field = sort.lstrip("-")
    person = tenant["site_viewer"]
    whole = items(client, assets_path(tenant), person, sort=sort, limit=100)
    assert len(whole) == sum(1 for r in listed.values() if not r[5])
    keys = [_utc(a[field]) if field == "created_at" else a[field] for a in whole]
    assert keys == sorted(keys, reverse=sort.startswith("-")), keys
    for limit in (1, 2, 3):
        paged = items(client, assets_path(tenant), person, sort=sort, limit=limit)
        ids = [a["id"] for a in paged]
        assert len(ids) == len(set(ids)), "a duplicate across pages"
        assert ids == [a["id"] for a in whole], "pages skip, repeat or reorder rows"


@pytest.mark.parametrize(("query", "expected"), [
    ({"status": "pending"}, lambda r: r[3] == "pending"),
    ({"status": "ready"}, lambda r: r[3] == "ready"),
    ({"content_type": "image/jpeg"}, lambda r: r[4] == "image/jpeg"),
    ({"content_type": "image/png", "status": "ready"},
     lambda r: r[4] == "image/png" and r[3] == "ready"),
    ({"content_type": "video/mp4"}, lambda r: False),
])
def test_list_filters(client, tenant, listed, query, expected):
    got = items(client, assets_path(tenant), tenant["member"], limit=2, **query)
    want = {i for i, r in listed.items() if not r[5] and expected(r)}
    assert {uuid.UUID(a["id"]) for a in got} == want
    assert len(got) == len(want)


def test_bad_list_arguments_are_400(client, tenant):
    for query, field in [
        ({"status": "done"}, "status"), ({"status": "deleted"}, "status"),
        ({"content_type": "not a type"}, "content_type"), ({"sort": "key"}, "sort"),
        ({"sort": "-title"}, "sort"), ({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
        ({"unknown": 1}, "unknown"),
    ]:
        response = client.get(assets_path(tenant), query_string=query,
                              headers=tenant["member"].headers)
        assert_problem(response, 400, errors=[field])
    response = client.get(assets_path(tenant), query_string={"cursor": "garbage"},
                          headers=tenant["member"].headers)
    assert_problem(response, 400, errors=["cursor"])


# -- get, patch, delete ------------------------------------------------------------------------


def test_get(app, client, world, tenant):
    asset = stored_asset(app, world, tenant.site, tenant["member"], filename="a.png")
    response = client.get(asset_path(tenant, asset.id), headers=tenant["site_viewer"].headers)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == ASSET_FIELDS
    assert body["id"] == str(asset.id) and body["filename"] == "a.png"
    assert body["size_bytes"] == len(PNG) and body["status"] == "ready"
    assert asset.key not in response.get_data(as_text=True)
    assert_problem(client.get(asset_path(tenant, uuid.uuid4()), headers=tenant["member"].headers),
                   404)
    assert_problem(client.get(asset_path(tenant, "not-a-uuid"),
                              headers=tenant["member"].headers), 400, errors={"asset_id"})


def test_patch_metadata(app, client, world, tenant):
    asset = stored_asset(app, world, tenant.site, tenant["member"])
    path = asset_path(tenant, asset.id)
    response = client.patch(path, json={
        "title": "  Sunset  ", "alt_text": "A sunset over the sea", "tags": [" beach ", "2024"],
    }, headers=tenant["member"].headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["title"], body["alt_text"], body["tags"]) == (
        "Sunset", "A sunset over the sea", ["beach", "2024"])
    row = stored(world, asset.id)
    assert (row.title, row.alt_text, row.tags) == ("Sunset", "A sunset over the sea",
                                                   ["beach", "2024"])
    # Partial: only what is sent changes; null clears.
    response = client.patch(path, json={"alt_text": None}, headers=tenant["site_admin"].headers)
    assert response.status_code == 200
    assert (response.get_json()["title"], response.get_json()["alt_text"]) == ("Sunset", None)
    # Only metadata: the file's own fields are not writable.
    for field, value in [("filename", "b.png"), ("status", "ready"), ("size_bytes", 1),
                         ("content_type", "image/jpeg"), ("key", "orgs/x"), ("site_id", None)]:
        response = client.patch(path, json={field: value}, headers=tenant["member"].headers)
        assert_problem(response, 400, errors=[field])
    row = stored(world, asset.id)
    assert (row.filename, row.size_bytes, row.key) == ("photo.png", len(PNG), asset.key)


def test_patch_refuses_bad_values(app, client, world, tenant):
    asset = stored_asset(app, world, tenant.site, tenant["member"])
    path = asset_path(tenant, asset.id)
    headers = tenant["member"].headers

    def refused(field):
        def check(value):
            response = client.patch(path, json={field: value}, headers=headers)
            assert_problem(response, 400, errors=[field])
        return check

    check_each([v for v in BAD_NAMES if v is not None], refused("title"))
    check_each(["", "x" * 51, "a\x00b", "two\nlines", 5, None, ["nested"]],
               lambda tag: refused("tags")([tag]))
    check_each(["beach", None, 5, {"a": 1}, [f"t{n}" for n in range(31)]], refused("tags"))
    check_each(["x" * 1001, "a\x00b", 5], refused("alt_text"))
    row = stored(world, asset.id)
    assert (row.title, row.alt_text, row.tags) == (None, None, [])


def test_soft_delete(app, client, world, tenant):
    asset = stored_asset(app, world, tenant.site, tenant["member"])
    other = stored_asset(app, world, tenant.site, tenant["member"])
    path = asset_path(tenant, asset.id)
    response = client.delete(path, headers=tenant["member"].headers)
    assert response.status_code == 204 and response.get_data() == b""
    assert_problem(client.get(path, headers=tenant["member"].headers), 404)
    assert_problem(download_url(client, tenant, tenant["member"], asset.id), 404)
    assert_problem(client.patch(path, json={"title": "x"}, headers=tenant["member"].headers),
                   404)
    assert_problem(client.delete(path, headers=tenant["member"].headers), 404)
    listed = items(client, assets_path(tenant), tenant["member"])
    assert [a["id"] for a in listed] == [str(other.id)]
    row = stored(world, asset.id)
    assert row.deleted_at is not None and row.purged_at is None
    assert object_exists(app, asset.key)  # removed by `flask assets purge`, not here


# -- download-url ------------------------------------------------------------------------------


@pytest.mark.parametrize(("filename", "disposition"), [
    ("photo.png", "attachment; filename=\"photo.png\"; filename*=UTF-8''photo.png"),
    ("Résumé été.png",
     "attachment; filename=\"R_sum_ _t_.png\"; "
     "filename*=UTF-8''R%C3%A9sum%C3%A9%20%C3%A9t%C3%A9.png"),
    ('say "hi".png', "attachment; filename=\"say _hi_.png\"; filename*=UTF-8''say%20%22hi%22.png"),
])
def test_download_url_after_a_real_upload(app, client, tenant, filename, disposition):
    member = tenant["member"]
    body = started(client, tenant, member, filename=filename)
    send(body["upload"], PNG)
    assert complete(client, tenant, member, body["asset"]["id"]).status_code == 200
    before = datetime.now(UTC)
    for role in ("viewer", "site_viewer", "org_admin"):  # every reader of the site
        response = download_url(client, tenant, tenant[role], body["asset"]["id"])
        assert response.status_code == 200, response.get_json()
        got = response.get_json()
        assert set(got) == {"url", "expires_at"}
        ttl = app.extensions["settings"].download_url_ttl_seconds
        query = parse_qs(urlsplit(got["url"]).query)
        assert query["X-Amz-Expires"] == [str(ttl)]
        assert "X-Amz-Signature" in query
        # Signed at the start of its window (app/storage.py): never valid beyond now + TTL,
        # and at least TTL - window from now; expires_at is when the URL itself expires.
        expires = _utc(got["expires_at"])
        window = timedelta(seconds=signing_window(ttl))
        assert before + timedelta(seconds=ttl) - window < expires <= datetime.now(
            UTC) + timedelta(seconds=ttl)
        signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
        assert signed_at.replace(tzinfo=UTC) + timedelta(seconds=ttl) == expires
        fetched = requests.get(got["url"], timeout=10)
        assert fetched.status_code == 200
        assert fetched.content == PNG
        assert fetched.headers["Content-Disposition"] == disposition
        assert fetched.headers["Content-Type"] == "image/png"


def test_download_url_of_pending_asset_is_409(app, client, world, tenant):
    body = started(client, tenant, tenant["member"])
    send(body["upload"], PNG)  # stored, but not completed
    problem = assert_problem(download_url(client, tenant, tenant["member"], body["asset"]["id"]),
                             409)
    assert problem["type"].endswith("/asset-not-ready")
    assert_problem(download_url(client, tenant, tenant["member"], uuid.uuid4()), 404)


# -- role table --------------------------------------------------------------------------------


@dataclass
class AssetTenant(Tenant):
    asset: uuid.UUID | None = None  # ready, uploaded by `member`, object stored


@pytest.fixture
def at(app, world: World, tenant: Tenant) -> AssetTenant:
    asset = stored_asset(app, world, tenant.site, tenant["member"])
    return AssetTenant(tenant.org, tenant.site, tenant.people, asset=asset.id)


def _row(client, t):
    row = stored(World(client.application), t.asset)
    return (row.title, row.tags, row.deleted_at)


CASES = {
    "list": RoleCase(send=lambda c, t, p, h: c.get(assets_path(t), headers=h),
                     authz=("read", "Site")),
    "get": RoleCase(send=lambda c, t, p, h: c.get(asset_path(t, t.asset), headers=h),
                    authz=("read", "Asset"), resource_id=lambda c, t: t.asset),
    "download": RoleCase(send=lambda c, t, p, h: download_url(c, t, p, t.asset, headers=h),
                         authz=("read", "Asset"), resource_id=lambda c, t: t.asset),
    "patch": RoleCase(
        send=lambda c, t, p, h: c.patch(asset_path(t, t.asset),
                                        json={"title": f"by {p.id}", "tags": ["x"]}, headers=h),
        authz=("update", "Asset"), state=_row, resource_id=lambda c, t: t.asset),
    "delete": RoleCase(send=lambda c, t, p, h: c.delete(asset_path(t, t.asset), headers=h),
                       authz=("delete", "Asset"), state=_row, resource_id=lambda c, t: t.asset),
}
ROLE_TABLE = {
    # org_admin, site_admin, member, viewer, site_site_admin, site_member, site_viewer, outsider
    "list": (200, 200, 200, 200, 200, 200, 200, 404),
    "get": (200, 200, 200, 200, 200, 200, 200, 404),
    "download": (200, 200, 200, 200, 200, 200, 200, 404),
    "patch": (200, 200, 200, 403, 200, 403, 403, 404),
    "delete": (204, 204, 204, 403, 204, 403, 403, 404),
}


@pytest.mark.parametrize(("action", "role", "expected"), role_table(ROLE_TABLE))
def test_role_table(client, at, action, role, expected):
    check_role_case(client, at, CASES[action], role, expected)

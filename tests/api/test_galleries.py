"""Galleries: POST/GET .../sites/{site_id}/galleries, GET/PATCH/DELETE .../galleries/{id},
POST .../galleries/{id}/restore. Items have their own file (test_gallery_items.py); the
role table covers their endpoints too, since editing a gallery includes its items."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from app.models import Gallery, GalleryItem
from tests.support import Tenant, World
from tests.support.galleries import (
    GALLERY_FIELDS,
    add_item,
    create_gallery,
    delete_gallery,
    galleries_path,
    gallery_path,
    item_ids,
    item_path,
    items_path,
    new_asset,
    new_gallery,
    patch_gallery,
    without_urls,
)
from tests.support.http import (
    BAD_NAMES,
    ROLES,
    RoleCase,
    assert_problem,
    check_each,
    check_role_case,
    etag,
    if_match,
    items,
    role_table,
)

pytestmark = pytest.mark.portable


@dataclass
class GalleryTenant(Tenant):
    """world.tenant() plus, on its site: a gallery created by `creator` holding two ready
    assets (the first is its cover), a deleted gallery of the same creator, and a ready
    asset in no gallery."""

    gallery: uuid.UUID | None = None
    items: list[uuid.UUID] = field(default_factory=list)  # the gallery's, in order
    deleted: uuid.UUID | None = None
    spare_asset: uuid.UUID | None = None


def gallery_tenant(world, tenant: Tenant, creator: str = "member", site=None) -> GalleryTenant:
    site = site or tenant.site
    person = tenant[creator]
    a, b, spare = (new_asset(world, site, person) for _ in range(3))
    gallery = new_gallery(world, site, person, title="Summer", items=[a, b], cover=a)
    return GalleryTenant(
        tenant.org,
        site,
        tenant.people,
        gallery=gallery,
        items=item_ids(world, gallery),
        deleted=new_gallery(world, site, person, title="Winter", deleted=True),
        spare_asset=spare,
    )


@pytest.fixture
def gt(world, tenant) -> GalleryTenant:
    return gallery_tenant(world, tenant)


# -- who may do what ---------------------------------------------------------------------------


def _admin_get(c, t, gallery_id=None):
    return c.get(gallery_path(t, gallery_id or t.gallery), headers=t["org_admin"].headers)


# What the role-table calls may change, read from the database (cheaper than the API).


def _stored(c, t, gallery_id=None):
    """(title, deleted?) of the gallery as stored."""
    with World(c.application).maker() as session:
        row = session.get(Gallery, gallery_id or t.gallery)
        return row.title, row.deleted_at is not None


def _gallery_ids(c, t):
    with World(c.application).maker() as session:
        return sorted(session.scalars(
            select(Gallery.id).where(Gallery.site_id == t.site.id, Gallery.deleted_at.is_(None))
        ))


def _items(c, t):
    """(id, caption, position) of the gallery's items as stored, in order."""
    with World(c.application).maker() as session:
        return session.execute(
            select(GalleryItem.id, GalleryItem.caption, GalleryItem.position)
            .where(GalleryItem.gallery_id == t.gallery).order_by(GalleryItem.position)
        ).all()


def _tag(c, t):
    return etag(c, gallery_path(t, t.gallery), t["org_admin"])


CASES = {
    "list": RoleCase(
        send=lambda c, t, p, h: c.get(galleries_path(t), headers=h),
        authz=("read", "Site"),
    ),
    "create": RoleCase(
        send=lambda c, t, p, h: c.post(galleries_path(t), json={"title": "New"}, headers=h),
        authz=("create_gallery", "Site"),
        state=_gallery_ids,
    ),
    "read": RoleCase(
        send=lambda c, t, p, h: c.get(gallery_path(t, t.gallery), headers=h),
        authz=("read", "Gallery"),
        resource_id=lambda c, t: t.gallery,
    ),
    "update": RoleCase(
        send=lambda c, t, p, h: c.patch(
            gallery_path(t, t.gallery), json={"title": "Renamed"}, headers=if_match(h, _tag(c, t))
        ),
        authz=("update", "Gallery"),
        state=_stored,
        resource_id=lambda c, t: t.gallery,
    ),
    "delete": RoleCase(
        send=lambda c, t, p, h: c.delete(
            gallery_path(t, t.gallery), headers=if_match(h, _tag(c, t))
        ),
        authz=("delete", "Gallery"),
        state=_stored,
        resource_id=lambda c, t: t.gallery,
    ),
    "restore": RoleCase(
        send=lambda c, t, p, h: c.post(gallery_path(t, t.deleted) + "/restore", headers=h),
        authz=("restore", "Gallery"),
        state=lambda c, t: _stored(c, t, t.deleted),
        resource_id=lambda c, t: t.deleted,
    ),
    "list_items": RoleCase(
        send=lambda c, t, p, h: c.get(items_path(t, t.gallery), headers=h),
        authz=("read", "Gallery"),
        resource_id=lambda c, t: t.gallery,
    ),
    "add_item": RoleCase(
        send=lambda c, t, p, h: c.post(
            items_path(t, t.gallery), json={"asset_id": str(t.spare_asset)}, headers=h
        ),
        authz=("update", "Gallery"),
        state=_items,
        resource_id=lambda c, t: t.gallery,
    ),
    "reorder": RoleCase(
        send=lambda c, t, p, h: c.put(
            items_path(t, t.gallery) + "/order",
            json={"item_ids": [str(i) for i in reversed(t.items)]},
            headers=h,
        ),
        authz=("update", "Gallery"),
        state=_items,
        resource_id=lambda c, t: t.gallery,
    ),
    "update_item": RoleCase(
        send=lambda c, t, p, h: c.patch(
            item_path(t, t.gallery, t.items[0]), json={"caption": "New caption"}, headers=h
        ),
        authz=("update", "Gallery"),
        state=_items,
        resource_id=lambda c, t: t.gallery,
    ),
    "remove_item": RoleCase(
        send=lambda c, t, p, h: c.delete(item_path(t, t.gallery, t.items[0]), headers=h),
        authz=("update", "Gallery"),
        state=_items,
        resource_id=lambda c, t: t.gallery,
    ),
}

# The gallery was created by the org "member". Every reader of the site reads; members
# create; the creator edits and deletes its own gallery (items included), another member
# (site_member) does not; site_admins edit any and alone restore. Site roles come from org
# roles: the org site_admin is site_admin of every site.
# fmt: off
# Columns: org_admin, site_admin, member, viewer (org roles) | site_site_admin, site_member,
# site_viewer (roles on tenant.site only) | outsider; as helpers.ROLES.
ROLE_TABLE = {
    "list":        (200, 200, 200, 200,   200, 200, 200,   404),
    "create":      (201, 201, 201, 403,   201, 201, 403,   404),
    "read":        (200, 200, 200, 200,   200, 200, 200,   404),
    "update":      (200, 200, 200, 403,   200, 403, 403,   404),
    "delete":      (204, 204, 204, 403,   204, 403, 403,   404),
    "restore":     (200, 200, 403, 403,   200, 403, 403,   404),
    "list_items":  (200, 200, 200, 200,   200, 200, 200,   404),
    "add_item":    (201, 201, 201, 403,   201, 403, 403,   404),
    "reorder":     (200, 200, 200, 403,   200, 403, 403,   404),
    "update_item": (200, 200, 200, 403,   200, 403, 403,   404),
    "remove_item": (204, 204, 204, 403,   204, 403, 403,   404),
}

# The same gallery, created by the site-only member instead: the org member is now "another
# member" and the site_member the creator.
BY_SITE_MEMBER_TABLE = {
    "update":      (200, 200, 403, 403,   200, 200, 403,   404),
    "restore":     (200, 200, 403, 403,   200, 403, 403,   404),
    "add_item":    (201, 201, 403, 403,   201, 201, 403,   404),
}

# A gallery (created by the org member) on another site of the organization: roles held on
# tenant.site only do not reach it.
OTHER_SITE_TABLE = {
    "list":        (200, 200, 200, 200,   404, 404, 404,   404),
    "read":        (200, 200, 200, 200,   404, 404, 404,   404),
    "update":      (200, 200, 200, 403,   404, 404, 404,   404),
    "restore":     (200, 200, 403, 403,   404, 404, 404,   404),
}
# fmt: on


@pytest.mark.parametrize(("action", "role", "expected"), role_table(ROLE_TABLE))
def test_role_table(client, gt, action, role, expected):
    check_role_case(client, gt, CASES[action], role, expected)


@pytest.mark.parametrize(("action", "role", "expected"), role_table(BY_SITE_MEMBER_TABLE))
def test_role_table_gallery_of_the_site_member(client, world, tenant, action, role, expected):
    check_role_case(client, gallery_tenant(world, tenant, "site_member"), CASES[action], role,
                    expected)


@pytest.mark.parametrize(("action", "role", "expected"), role_table(OTHER_SITE_TABLE))
def test_role_table_on_another_site(client, world, tenant, action, role, expected):
    other = gallery_tenant(world, tenant, site=world.site(tenant.org, "Other site"))
    check_role_case(client, other, CASES[action], role, expected)


def test_every_creator_edits_its_own_gallery_and_not_anothers(client, world, tenant):
    creators = ("org_admin", "site_admin", "member", "site_site_admin", "site_member")
    made = {role: create_gallery(client, tenant, tenant[role], title=role)["id"]
            for role in creators}
    for role in creators:
        assert patch_gallery(client, tenant, made[role], tenant[role],
                             description="mine").status_code == 200, role
    # members never edit someone else's gallery; admins edit anyone's
    for editor, owner, expected in [
        ("member", "site_member", 403), ("site_member", "member", 403),
        ("member", "org_admin", 403), ("site_member", "site_site_admin", 403),
        ("site_site_admin", "member", 200), ("site_admin", "site_member", 200),
    ]:
        response = patch_gallery(client, tenant, made[owner], tenant[editor], title="taken")
        assert response.status_code == expected, (editor, owner, response.get_json())


def test_creator_demoted_to_viewer_loses_edit_rights(client, world, tenant):
    member, admin = tenant["member"], tenant["org_admin"]
    gallery = create_gallery(client, tenant, member, title="Mine")["id"]
    demote = client.patch(f"{tenant.org_path}/members/{member.id}", json={"role": "viewer"},
                          headers=admin.headers)
    assert demote.status_code == 200, demote.get_json()
    path = gallery_path(tenant, gallery)
    tag = etag(client, path, member)  # still reads it
    assert_problem(client.patch(path, json={"title": "x"}, headers=if_match(member.headers, tag)),
                   403)
    assert_problem(client.delete(path, headers=if_match(member.headers, tag)), 403)
    asset = new_asset(world, tenant.site, member)
    assert_problem(add_item(client, tenant, gallery, member, asset), 403)
    assert_problem(client.post(galleries_path(tenant), json={"title": "y"},
                               headers=member.headers), 403)
    assert _admin_get(client, tenant, gallery).get_json()["title"] == "Mine"
    # promoted again, the creator rule applies again
    client.patch(f"{tenant.org_path}/members/{member.id}", json={"role": "member"},
                 headers=admin.headers)
    assert patch_gallery(client, tenant, gallery, member, title="Back").status_code == 200


def test_creator_removed_from_the_org_no_longer_sees_it(client, tenant):
    member, admin = tenant["member"], tenant["org_admin"]
    gallery = create_gallery(client, tenant, member)["id"]
    removed = client.delete(f"{tenant.org_path}/members/{member.id}", headers=admin.headers)
    assert removed.status_code == 204
    assert_problem(client.get(gallery_path(tenant, gallery), headers=member.headers), 404)
    assert_problem(
        client.patch(gallery_path(tenant, gallery), json={"title": "x"},
                     headers=if_match(member.headers, "*")), 404,
    )


def test_gallery_without_creator_is_edited_by_admins_only(client, world, tenant):
    gallery = new_gallery(world, tenant.site, None, title="Orphan")
    for role, expected in (("member", 403), ("site_member", 403), ("site_site_admin", 200)):
        response = patch_gallery(client, tenant, gallery, tenant[role], description=role)
        assert response.status_code == expected, role


def test_list_shows_the_sites_galleries_to_every_reader(client, world, tenant):
    mine = new_gallery(world, tenant.site, tenant["member"], title="mine")
    new_gallery(world, tenant.site, tenant["member"], title="gone", deleted=True)
    other_site = world.site(tenant.org, "Other site")
    new_gallery(world, other_site, tenant["member"], title="elsewhere")
    foreign = world.tenant("Elsewhere")
    new_gallery(world, foreign.site, foreign["member"], title="foreign")
    for role in ROLES[:-1]:
        listed = [g["id"] for g in items(client, galleries_path(tenant), tenant[role])]
        assert listed == [str(mine)], role


def test_api_key_roles(client, world, tenant):
    """Keys read galleries and change them with their role; they create none (galleries
    belong to people) and the creator rule is for people only."""
    from tests.support.routes import new_api_key

    gallery = new_gallery(world, tenant.site, tenant["member"])
    path = gallery_path(tenant, gallery)
    for role, update in (("viewer", 403), ("member", 403), ("site_admin", 200),
                         ("org_admin", 200)):
        _, secret = new_api_key(world, tenant, role=role)
        headers = {"Authorization": f"Bearer {secret}"}
        read = client.get(path, headers=headers)
        assert read.status_code == 200, (role, read.get_json())
        response = client.post(galleries_path(tenant), json={"title": "k"}, headers=headers)
        assert_problem(response, 403)
        response = client.patch(path, json={"description": role},
                                headers=if_match(headers, read.headers["ETag"]))
        assert response.status_code == update, (role, response.get_json())


# -- create and update -------------------------------------------------------------------------


def test_create_returns_the_gallery_and_get_returns_the_same(client, world, tenant):
    member = tenant["member"]
    cover = new_asset(world, tenant.site, member)
    created = create_gallery(client, tenant, member, title="  Trip  ", description="Two weeks",
                             cover_asset_id=str(cover))
    assert set(created) == GALLERY_FIELDS
    assert (created["title"], created["description"], created["cover_asset_id"],
            created["created_by"], created["item_count"], created["site_id"]) == (
        "Trip", "Two weeks", str(cover), str(member.id), 0, str(tenant.site.id))
    assert created["cover_url"] and str(cover) in created["cover_url"]
    fetched = client.get(gallery_path(tenant, created["id"]), headers=tenant["viewer"].headers)
    assert {k: v for k, v in fetched.get_json().items() if k != "cover_url"} == {
        k: v for k, v in created.items() if k != "cover_url"}
    assert fetched.get_json()["cover_url"]


def test_create_without_cover_and_description(client, tenant):
    created = create_gallery(client, tenant, tenant["member"], title="Bare")
    assert (created["description"], created["cover_asset_id"], created["cover_url"]) == (
        "", None, None)


def test_create_rejects_bad_titles(client, tenant):
    def check(title):
        response = client.post(galleries_path(tenant), json={"title": title},
                               headers=tenant["member"].headers)
        assert_problem(response, 400, errors={"title"})

    check_each(BAD_NAMES, check)
    assert _gallery_ids(client, tenant) == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"title"}),
        ({"title": "x", "description": "d" * 5001}, {"description"}),
        ({"title": "x", "description": 5}, {"description"}),
        ({"title": "x", "description": "nul\x00byte"}, {"description"}),
        ({"title": "x", "cover_asset_id": "not-a-uuid"}, {"cover_asset_id"}),
        ({"title": "x", "created_by": str(uuid.uuid4())}, {"created_by"}),
        ({"title": "x", "item_count": 3}, {"item_count"}),
        ({"title": "x", "site_id": str(uuid.uuid4())}, {"site_id"}),
    ],
)
def test_create_rejects_bad_bodies(client, tenant, body, fields):
    response = client.post(galleries_path(tenant), json=body, headers=tenant["member"].headers)
    assert_problem(response, 400, errors=fields)
    assert _gallery_ids(client, tenant) == []


def _unusable_covers(world, tenant):
    """Assets that are not ready assets of tenant.site: name -> id."""
    other_site = world.site(tenant.org, "Other site")
    foreign = world.tenant("Elsewhere")
    return {
        "pending": new_asset(world, tenant.site, tenant["member"], status="pending"),
        "deleted": new_asset(world, tenant.site, tenant["member"], deleted=True),
        "other site": new_asset(world, other_site, tenant["member"]),
        "other org": new_asset(world, foreign.site, foreign["member"]),
        "nowhere": uuid.uuid4(),
    }


def test_cover_must_be_a_ready_asset_of_the_site(client, world, tenant):
    member = tenant["member"]
    gallery = create_gallery(client, tenant, member, title="Keep")["id"]
    for name, asset in _unusable_covers(world, tenant).items():
        response = client.post(galleries_path(tenant),
                               json={"title": name, "cover_asset_id": str(asset)},
                               headers=member.headers)
        body = assert_problem(response, 400, errors={"cover_asset_id"})
        assert str(asset) not in str(body)
        response = patch_gallery(client, tenant, gallery, member, cover_asset_id=str(asset))
        assert_problem(response, 400, errors={"cover_asset_id"})
    assert _gallery_ids(client, tenant) == [uuid.UUID(gallery)]
    assert _admin_get(client, tenant, gallery).get_json()["cover_asset_id"] is None


def test_update_changes_only_the_fields_sent_and_clears_the_cover(client, world, tenant):
    member = tenant["member"]
    cover = new_asset(world, tenant.site, member)
    gallery = create_gallery(client, tenant, member, title="A", description="d",
                             cover_asset_id=str(cover))["id"]
    response = patch_gallery(client, tenant, gallery, member, title=" Ünïcödé 東京 😀 ")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["title"], body["description"], body["cover_asset_id"]) == (
        "Ünïcödé 東京 😀", "d", str(cover))
    assert body["cover_url"]
    body = patch_gallery(client, tenant, gallery, member, cover_asset_id=None).get_json()
    assert (body["cover_asset_id"], body["cover_url"], body["title"]) == (None, None,
                                                                           "Ünïcödé 東京 😀")
    fetched = _admin_get(client, tenant, gallery).get_json()
    assert fetched["cover_asset_id"] is None and fetched["description"] == "d"


def test_update_rejects_bad_titles_and_unknown_fields(client, tenant):
    member = tenant["member"]
    gallery = create_gallery(client, tenant, member, title="Same")["id"]
    tag = etag(client, gallery_path(tenant, gallery), member)

    def check(title):
        response = client.patch(gallery_path(tenant, gallery), json={"title": title},
                                headers=if_match(member.headers, tag))
        assert_problem(response, 400, errors={"title"})

    check_each(BAD_NAMES, check)
    for body, fields in (({"created_by": str(tenant["viewer"].id)}, {"created_by"}),
                         ({"deleted_at": None}, {"deleted_at"}),
                         ({"item_count": 0}, {"item_count"})):
        response = client.patch(gallery_path(tenant, gallery), json=body,
                                headers=if_match(member.headers, tag))
        assert_problem(response, 400, errors=fields)
    fetched = _admin_get(client, tenant, gallery).get_json()
    assert (fetched["title"], fetched["created_by"]) == ("Same", str(member.id))


def test_unknown_gallery_ids_are_404_and_malformed_ones_400(client, tenant):
    admin = tenant["org_admin"]
    for bad, status, errors in ((uuid.uuid4(), 404, None), ("not-a-uuid", 400, {"gallery_id"}),
                                ("1", 400, {"gallery_id"}), ("%00", 400, {"gallery_id"})):
        assert_problem(client.get(gallery_path(tenant, bad), headers=admin.headers), status,
                       errors=errors)
        assert_problem(client.get(items_path(tenant, bad), headers=admin.headers), status,
                       errors=errors)
        assert_problem(client.post(gallery_path(tenant, bad) + "/restore",
                                   headers=admin.headers), status, errors=errors)


def test_gallery_of_another_site_is_404_under_this_site(client, world, tenant):
    other = world.site(tenant.org, "Other site")
    gallery = new_gallery(world, other, tenant["member"])
    admin = tenant["org_admin"]
    crossed = gallery_path(tenant, gallery)
    assert_problem(client.get(crossed, headers=admin.headers), 404)
    assert_problem(client.patch(crossed, json={"title": "x"},
                                headers=if_match(admin.headers, "*")), 404)
    assert_problem(client.delete(crossed, headers=if_match(admin.headers, "*")), 404)
    assert_problem(client.get(crossed + "/items", headers=admin.headers), 404)
    right = f"{tenant.org_path}/sites/{other.id}/galleries/{gallery}"
    assert client.get(right, headers=admin.headers).status_code == 200


# -- ETags -------------------------------------------------------------------------------------


def test_get_returns_an_etag_that_changes_with_the_gallery(client, gt):
    path = gallery_path(gt, gt.gallery)
    admin = gt["site_site_admin"]
    first = etag(client, path, admin)
    assert etag(client, path, gt["viewer"]) == first  # the same for every reader
    response = client.patch(path, json={"title": "New"}, headers=if_match(admin.headers, first))
    assert response.status_code == 200
    assert response.headers["ETag"] not in (None, first)
    assert response.headers["ETag"] == etag(client, path, gt["viewer"])


def test_if_none_match_answers_304_until_the_gallery_changes(client, gt):
    path = gallery_path(gt, gt.gallery)
    viewer = gt["viewer"]
    tag = etag(client, path, viewer)
    response = client.get(path, headers={**viewer.headers, "If-None-Match": tag})
    assert response.status_code == 304 and response.get_data() == b""
    assert response.headers["ETag"] == tag
    patch_gallery(client, gt, gt.gallery, gt["member"], title="Changed")
    response = client.get(path, headers={**viewer.headers, "If-None-Match": tag})
    assert response.status_code == 200 and response.get_json()["title"] == "Changed"


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_change_without_if_match_is_428(client, gt, method):
    kwargs = {"json": {"title": "New"}} if method == "patch" else {}
    response = getattr(client, method)(gallery_path(gt, gt.gallery),
                                       headers=gt["member"].headers, **kwargs)
    assert_problem(response, 428)
    assert _admin_get(client, gt).get_json()["title"] == "Summer"


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_stale_or_wrong_if_match_is_412(client, gt, method):
    path = gallery_path(gt, gt.gallery)
    member = gt["member"]
    stale = etag(client, path, member)
    assert client.patch(path, json={"description": "d"},
                        headers=if_match(member.headers, stale)).status_code == 200
    kwargs = {"json": {"title": "Lost update"}} if method == "patch" else {}
    for tag in (stale, '"nope"', "W/" + stale):
        response = getattr(client, method)(path, headers=if_match(member.headers, tag), **kwargs)
        assert_problem(response, 412)
    fetched = _admin_get(client, gt).get_json()
    assert (fetched["title"], fetched["description"]) == ("Summer", "d")


@pytest.mark.parametrize(("role", "expected"), [("viewer", 403), ("site_member", 403),
                                                ("outsider", 404)])
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_wrong_if_match_does_not_reveal_the_gallery(client, gt, role, expected, method):
    kwargs = {"json": {"title": "New"}} if method == "patch" else {}
    response = getattr(client, method)(gallery_path(gt, gt.gallery),
                                       headers=if_match(gt[role].headers, '"x"'), **kwargs)
    assert_problem(response, expected)


def test_item_changes_change_the_gallerys_etag(client, gt):
    path = gallery_path(gt, gt.gallery)
    member = gt["member"]
    seen = [etag(client, path, member)]
    ids = [i["id"] for i in items(client, items_path(gt, gt.gallery), member)]

    def changed(response, status):
        assert response.status_code == status, response.get_json()
        tag = etag(client, path, member)
        assert tag not in seen
        seen.append(tag)

    changed(add_item(client, gt, gt.gallery, member, gt.spare_asset), 201)
    ids = [i["id"] for i in items(client, items_path(gt, gt.gallery), member)]
    changed(client.patch(item_path(gt, gt.gallery, ids[0]), json={"caption": "c"},
                         headers=member.headers), 200)
    changed(client.patch(item_path(gt, gt.gallery, ids[0]), json={"position": 2},
                         headers=member.headers), 200)
    changed(client.put(items_path(gt, gt.gallery) + "/order", json={"item_ids": ids},
                       headers=member.headers), 200)
    changed(client.delete(item_path(gt, gt.gallery, ids[1]), headers=member.headers), 204)
    # the old tags no longer allow a change
    response = client.patch(path, json={"title": "x"}, headers=if_match(member.headers, seen[0]))
    assert_problem(response, 412)


def test_a_refused_item_change_keeps_the_etag(client, gt):
    path = gallery_path(gt, gt.gallery)
    member = gt["member"]
    before = etag(client, path, member)
    first = items(client, items_path(gt, gt.gallery), member)[0]
    assert_problem(add_item(client, gt, gt.gallery, member, first["asset_id"]), 409)
    assert_problem(client.put(items_path(gt, gt.gallery) + "/order", json={"item_ids": []},
                              headers=member.headers), 400)
    assert_problem(add_item(client, gt, gt.gallery, gt["viewer"], gt.spare_asset), 403)
    assert etag(client, path, member) == before


# -- soft delete and restore -------------------------------------------------------------------


def test_deleted_gallery_is_gone_until_restored(client, gt):
    member, admin = gt["member"], gt["site_site_admin"]
    path = gallery_path(gt, gt.gallery)
    before = client.get(path, headers=admin.headers).get_json()
    before_items = items(client, items_path(gt, gt.gallery), admin)
    response = delete_gallery(client, gt, gt.gallery, member)
    assert response.status_code == 204 and response.get_data() == b""

    for role in ROLES:
        headers = gt[role].headers
        assert_problem(client.get(path, headers=headers), 404)
        assert_problem(client.get(path + "/items", headers=headers), 404)
        assert_problem(client.patch(path, json={"title": "x"},
                                    headers=if_match(headers, "*")), 404)
        assert_problem(client.delete(path, headers=if_match(headers, "*")), 404)
        assert_problem(add_item(client, gt, gt.gallery, gt[role], gt.spare_asset), 404)
        assert_problem(client.put(path + "/items/order", json={"item_ids": []},
                                  headers=headers), 404)
        assert_problem(client.delete(f"{path}/items/{before_items[0]['id']}", headers=headers),
                       404)
    assert [g["id"] for g in items(client, galleries_path(gt), admin)] == []

    restored = client.post(path + "/restore", headers=admin.headers)
    assert restored.status_code == 200, restored.get_json()
    body = restored.get_json()
    assert {k: v for k, v in body.items() if k not in ("updated_at", "cover_url")} == {
        k: v for k, v in before.items() if k not in ("updated_at", "cover_url")}
    assert body["cover_url"]
    assert client.get(path, headers=gt["viewer"].headers).get_json()["title"] == "Summer"
    after_items = items(client, items_path(gt, gt.gallery), admin)
    assert without_urls(after_items) == without_urls(before_items)
    assert all(i["download_url"] for i in after_items)
    assert [g["id"] for g in items(client, galleries_path(gt), admin)] == [str(gt.gallery)]
    # the creator edits it again
    assert patch_gallery(client, gt, gt.gallery, member, title="Back").status_code == 200


def test_restore_needs_a_deleted_gallery(client, gt):
    admin = gt["org_admin"]
    assert_problem(client.post(gallery_path(gt, gt.gallery) + "/restore",
                               headers=admin.headers), 404)
    assert client.post(gallery_path(gt, gt.deleted) + "/restore",
                       headers=admin.headers).status_code == 200
    assert_problem(client.post(gallery_path(gt, gt.deleted) + "/restore",
                               headers=admin.headers), 404)


def test_deleted_gallerys_items_are_not_reachable_with_another_gallery(client, world, gt):
    """An item id only works under its own gallery."""
    member = gt["member"]
    mine = create_gallery(client, gt, member, title="Other")["id"]
    theirs = item_ids(world, gt.gallery)[0]
    assert_problem(client.patch(item_path(gt, mine, theirs), json={"caption": "x"},
                                headers=member.headers), 404)
    assert_problem(client.delete(item_path(gt, mine, theirs), headers=member.headers), 404)
    assert item_ids(world, gt.gallery)[0] == theirs

"""Gallery items: GET/POST .../galleries/{id}/items, PATCH/DELETE .../items/{item_id},
PUT .../items/order. Who may call them is in test_galleries.py's role table."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.support import Tenant
from tests.support.galleries import (
    ITEM_FIELDS,
    StatementCounter,
    add_item,
    create_gallery,
    galleries_path,
    gallery_path,
    item_ids,
    item_path,
    items_path,
    new_asset,
    new_assets,
    new_gallery,
    patch_gallery,
    positions,
    stored_item_count,
    stored_positions,
    upload,
)
from tests.support.http import assert_problem, check_each, etag, items, pages


@pytest.fixture
def gallery(world, tenant):
    """An empty gallery of tenant.site created by its "member"."""
    return new_gallery(world, tenant.site, tenant["member"], title="Empty")


def _order(client, tenant, gallery_id, person=None):
    """Asset ids in item order; checks that positions are exactly 0..n-1."""
    listed = positions(client, tenant, gallery_id, person or tenant["viewer"])
    assert [p for _, p in listed] == list(range(len(listed)))
    return [a for a, _ in listed]


def _ids(client, tenant, gallery_id):
    return [i["id"] for i in items(client, items_path(tenant, gallery_id), tenant["viewer"])]


def _gallery(client, tenant, gallery_id):
    return client.get(gallery_path(tenant, gallery_id), headers=tenant["viewer"].headers).get_json()


# -- adding ------------------------------------------------------------------------------------


@pytest.mark.portable
def test_add_appends_ready_assets_and_counts_them(client, world, tenant, gallery):
    member = tenant["member"]
    assets = [str(a) for a in new_assets(world, tenant.site, 3)]
    for n, asset in enumerate(assets):
        response = add_item(client, tenant, gallery, member, asset, caption=f"c{n}")
        assert response.status_code == 201, response.get_json()
        item = response.get_json()
        assert set(item) == ITEM_FIELDS
        assert (item["gallery_id"], item["asset_id"], item["caption"], item["position"]) == (
            str(gallery), asset, f"c{n}", n)
        assert item["download_url"] and asset in item["download_url"]
        assert _gallery(client, tenant, gallery)["item_count"] == n + 1
    assert _order(client, tenant, gallery) == assets
    assert stored_item_count(world, gallery) == 3


@pytest.mark.portable
def test_add_at_a_position_shifts_the_items_after_it(client, world, tenant, gallery):
    member = tenant["member"]
    a, b, c, d, e, f = (str(x) for x in new_assets(world, tenant.site, 6))
    for asset in (a, b, c):
        add_item(client, tenant, gallery, member, asset)
    assert add_item(client, tenant, gallery, member, d, position=1).get_json()["position"] == 1
    assert _order(client, tenant, gallery) == [a, d, b, c]
    assert add_item(client, tenant, gallery, member, e, position=0).get_json()["position"] == 0
    assert _order(client, tenant, gallery) == [e, a, d, b, c]
    # past the end: appended
    assert add_item(client, tenant, gallery, member, f, position=99).get_json()["position"] == 5
    assert _order(client, tenant, gallery) == [e, a, d, b, c, f]
    assert _gallery(client, tenant, gallery)["item_count"] == 6


def _unusable_assets(world, tenant: Tenant) -> dict[str, uuid.UUID]:
    foreign = world.tenant("Elsewhere")
    return {
        "pending": new_asset(world, tenant.site, tenant["member"], status="pending"),
        "deleted": new_asset(world, tenant.site, tenant["member"], deleted=True),
        "another site": new_asset(world, world.site(tenant.org, "Other site"), tenant["member"]),
        "another org": new_asset(world, foreign.site, foreign["member"]),
        "nowhere": uuid.uuid4(),
    }


@pytest.mark.portable
def test_only_ready_assets_of_the_same_site_can_be_added(client, world, tenant, gallery):
    admin = tenant["org_admin"]
    kept = str(new_asset(world, tenant.site, admin))
    add_item(client, tenant, gallery, admin, kept)
    tag = etag(client, gallery_path(tenant, gallery), admin)
    answers = {}
    for name, asset in _unusable_assets(world, tenant).items():
        response = add_item(client, tenant, gallery, admin, asset)
        body = assert_problem(response, 400, errors={"asset_id"})
        answers[name] = {k: v for k, v in body.items() if k != "request_id"}
    # the same answer whether the asset is pending, elsewhere, or exists nowhere
    assert len({str(a) for a in answers.values()}) == 1, answers
    assert _order(client, tenant, gallery) == [kept]
    assert etag(client, gallery_path(tenant, gallery), admin) == tag
    assert stored_item_count(world, gallery) == 1


@pytest.mark.portable
def test_the_same_asset_twice_is_409_but_two_galleries_may_share_it(client, world, tenant,
                                                                      gallery):
    member = tenant["member"]
    asset = new_asset(world, tenant.site, member)
    assert add_item(client, tenant, gallery, member, asset).status_code == 201
    for position in (None, 0):
        assert_problem(add_item(client, tenant, gallery, member, asset, position=position), 409)
    assert _order(client, tenant, gallery) == [str(asset)]
    assert stored_item_count(world, gallery) == 1
    other = create_gallery(client, tenant, member, title="Other")["id"]
    assert add_item(client, tenant, other, member, asset).status_code == 201


@pytest.mark.portable
def test_add_rejects_bad_bodies(client, world, tenant, gallery):
    member = tenant["member"]
    asset = str(new_asset(world, tenant.site, member))
    cases = [
        ({}, {"asset_id"}),
        ({"asset_id": "not-a-uuid"}, {"asset_id"}),
        ({"asset_id": None}, {"asset_id"}),
        ({"asset_id": asset, "position": -1}, {"position"}),
        ({"asset_id": asset, "position": "1"}, {"position"}),
        ({"asset_id": asset, "position": 1.5}, {"position"}),
        ({"asset_id": asset, "caption": "x" * 1001}, {"caption"}),
        ({"asset_id": asset, "caption": None}, {"caption"}),
        ({"asset_id": asset, "caption": "nul\x00byte"}, {"caption"}),
        ({"asset_id": asset, "gallery_id": str(uuid.uuid4())}, {"gallery_id"}),
    ]

    def check(case):
        body, fields = case
        response = client.post(items_path(tenant, gallery), json=body, headers=member.headers)
        assert_problem(response, 400, errors=fields)

    check_each(cases, check)
    assert _order(client, tenant, gallery) == []


# -- moving, removing, reordering ------------------------------------------------------------


@pytest.fixture
def five(client, world, tenant, gallery):
    """The gallery with five items: (asset ids, item ids), in order."""
    assets = [str(a) for a in new_assets(world, tenant.site, 5)]
    for asset in assets:
        add_item(client, tenant, gallery, tenant["member"], asset)
    return assets, _ids(client, tenant, gallery)


@pytest.mark.portable
def test_patch_moves_an_item_and_shifts_the_others(client, tenant, gallery, five):
    (a, b, c, d, e), (ia, ib, ic, id_, ie) = five
    member = tenant["member"]

    def move(item, position):
        response = client.patch(item_path(tenant, gallery, item), json={"position": position},
                                headers=member.headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    assert move(ia, 3)["position"] == 3
    assert _order(client, tenant, gallery) == [b, c, d, a, e]
    assert move(ie, 0)["position"] == 0
    assert _order(client, tenant, gallery) == [e, b, c, d, a]
    assert move(ib, 99)["position"] == 4  # past the end: last
    assert _order(client, tenant, gallery) == [e, c, d, a, b]
    assert move(ic, 1)["position"] == 1  # where it is
    assert _order(client, tenant, gallery) == [e, c, d, a, b]
    moved = move(id_, 4)
    assert (moved["asset_id"], moved["position"], set(moved)) == (d, 4, ITEM_FIELDS)
    assert _order(client, tenant, gallery) == [e, c, a, b, d]


@pytest.mark.portable
def test_patch_caption_keeps_the_order(client, tenant, gallery, five):
    assets, ids = five
    response = client.patch(item_path(tenant, gallery, ids[2]), json={"caption": "Sunset"},
                            headers=tenant["member"].headers)
    assert response.status_code == 200
    assert (response.get_json()["caption"], response.get_json()["position"]) == ("Sunset", 2)
    listed = items(client, items_path(tenant, gallery), tenant["viewer"])
    assert [i["caption"] for i in listed] == ["", "", "Sunset", "", ""]
    assert _order(client, tenant, gallery) == assets


@pytest.mark.portable
def test_patch_rejects_bad_bodies(client, tenant, gallery, five):
    assets, ids = five
    cases = [
        ({"position": -1}, {"position"}),
        ({"position": None}, {"position"}),
        ({"position": "2"}, {"position"}),
        ({"caption": None}, {"caption"}),
        ({"caption": "nul\x00byte"}, {"caption"}),
        ({"caption": "x" * 1001}, {"caption"}),
        ({"asset_id": assets[0]}, {"asset_id"}),
    ]

    def check(case):
        body, fields = case
        response = client.patch(item_path(tenant, gallery, ids[1]), json=body,
                                headers=tenant["member"].headers)
        assert_problem(response, 400, errors=fields)

    check_each(cases, check)
    assert _order(client, tenant, gallery) == assets


@pytest.mark.portable
def test_delete_closes_the_gap(client, world, tenant, gallery, five):
    (a, b, _, d, e), (ia, _, ic, _, ie) = five
    member = tenant["member"]
    for item, left, count in ((ic, [a, b, d, e], 4), (ia, [b, d, e], 3), (ie, [b, d], 2)):
        response = client.delete(item_path(tenant, gallery, item), headers=member.headers)
        assert response.status_code == 204 and response.get_data() == b""
        assert _order(client, tenant, gallery) == left
        assert _gallery(client, tenant, gallery)["item_count"] == count
        assert stored_positions(world, gallery) == list(range(count))
    assert_problem(client.delete(item_path(tenant, gallery, ic), headers=member.headers), 404)
    assert_problem(client.patch(item_path(tenant, gallery, ic), json={"caption": "x"},
                                headers=member.headers), 404)


@pytest.mark.portable
def test_reorder_sets_the_whole_order(client, world, tenant, gallery, five):
    _, ids = five
    new = [ids[3], ids[0], ids[4], ids[2], ids[1]]
    response = client.put(items_path(tenant, gallery) + "/order", json={"item_ids": new},
                          headers=tenant["member"].headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert list(body) == ["items"]
    assert [(i["id"], i["position"]) for i in body["items"]] == [(x, n) for n, x in
                                                                 enumerate(new)]
    assert all(i["download_url"] for i in body["items"])
    assert _ids(client, tenant, gallery) == new
    assert stored_positions(world, gallery) == [0, 1, 2, 3, 4]
    assert _gallery(client, tenant, gallery)["item_count"] == 5


@pytest.mark.portable
def test_reorder_must_name_every_item_exactly_once(client, world, tenant, gallery, five):
    assets, ids = five
    other = new_gallery(world, tenant.site, tenant["member"],
                        items=new_assets(world, tenant.site, 1))
    stranger = str(item_ids(world, other)[0])
    tag = etag(client, gallery_path(tenant, gallery), tenant["member"])
    cases = [
        ids[:4],  # one missing
        [*ids, ids[0]],  # one twice
        [*ids[:4], ids[3]],  # right length, one twice, one missing
        [*ids, str(uuid.uuid4())],  # one unknown more
        [*ids[:4], str(uuid.uuid4())],  # one unknown instead
        [*ids[:4], stranger],  # an item of another gallery
        [],
        assets,  # asset ids are not item ids
    ]

    def check(item_ids_):
        response = client.put(items_path(tenant, gallery) + "/order",
                              json={"item_ids": item_ids_}, headers=tenant["member"].headers)
        assert_problem(response, 400, errors={"item_ids"})

    check_each(cases, check)
    for body in ({}, {"item_ids": "x"}, {"item_ids": ["not-a-uuid"]}, {"item_ids": None},
                 {"item_ids": ids, "extra": 1}):
        response = client.put(items_path(tenant, gallery) + "/order", json=body,
                              headers=tenant["member"].headers)
        assert_problem(response, 400)
    # nothing moved, the gallery did not change
    assert _order(client, tenant, gallery) == assets
    assert etag(client, gallery_path(tenant, gallery), tenant["member"]) == tag
    assert item_ids(world, other) == [uuid.UUID(stranger)]


@pytest.mark.portable
def test_reorder_of_an_empty_gallery(client, tenant, gallery):
    response = client.put(items_path(tenant, gallery) + "/order", json={"item_ids": []},
                          headers=tenant["member"].headers)
    assert response.status_code == 200 and response.get_json() == {"items": []}


# -- the model: any sequence of changes keeps positions dense and counts right -----------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.one_of(st.none(), st.integers(0, 8))),
        st.tuples(st.just("move"), st.integers(0, 7), st.integers(0, 8)),
        st.tuples(st.just("remove"), st.integers(0, 7)),
        st.tuples(st.just("reorder"), st.randoms(use_true_random=False)),
    ),
    max_size=8,
)


@pytest.mark.portable
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_any_sequence_of_item_changes_matches_a_list_model(client, world, tenant, ops):
    note(f"ops: {ops!r}")
    member = tenant["member"]
    gallery = new_gallery(world, tenant.site, member)
    fresh = iter(str(a) for a in new_assets(world, tenant.site, 8))
    model: list[tuple[str, str]] = []  # (item id, asset id)
    path = items_path(tenant, gallery)
    for op in ops:
        if op[0] == "add":
            asset = next(fresh)
            response = add_item(client, tenant, gallery, member, asset, position=op[1])
            assert response.status_code == 201
            at = len(model) if op[1] is None else min(op[1], len(model))
            model.insert(at, (response.get_json()["id"], asset))
        elif not model:
            continue
        elif op[0] == "move":
            item = model.pop(op[1] % (len(model)))
            model.insert(min(op[2], len(model)), item)
            response = client.patch(f"{path}/{item[0]}", json={"position": op[2]},
                                    headers=member.headers)
            assert response.status_code == 200
        elif op[0] == "remove":
            item = model.pop(op[1] % len(model))
            assert client.delete(f"{path}/{item[0]}", headers=member.headers).status_code == 204
        else:
            op[1].shuffle(model)
            response = client.put(f"{path}/order", json={"item_ids": [i for i, _ in model]},
                                  headers=member.headers)
            assert response.status_code == 200
        assert _order(client, tenant, gallery) == [a for _, a in model]
    assert _gallery(client, tenant, gallery)["item_count"] == len(model)
    assert stored_positions(world, gallery) == list(range(len(model)))


# -- counts and has_items ----------------------------------------------------------------------


@pytest.mark.portable
def test_item_count_and_has_items_follow_the_items(client, world, tenant, gallery):
    member = tenant["member"]
    empty = create_gallery(client, tenant, member, title="Always empty")["id"]

    def listed(has_items):
        got = items(client, galleries_path(tenant), tenant["viewer"],
                    has_items="true" if has_items else "false")
        return {g["id"]: g["item_count"] for g in got}

    assert listed(True) == {}
    assert listed(False) == {str(gallery): 0, empty: 0}
    assets = new_assets(world, tenant.site, 2)
    for asset in assets:
        add_item(client, tenant, gallery, member, asset)
    assert listed(True) == {str(gallery): 2}
    assert listed(False) == {empty: 0}
    for item in _ids(client, tenant, gallery):
        client.delete(item_path(tenant, gallery, item), headers=member.headers)
        assert stored_item_count(world, gallery) == len(_ids(client, tenant, gallery))
    assert listed(True) == {}
    assert listed(False) == {str(gallery): 0, empty: 0}


# -- download and cover URLs -------------------------------------------------------------------


@pytest.mark.portable
def test_urls_only_for_ready_live_assets(client, world, tenant, gallery):
    """A cover or an item whose asset was deleted afterwards stays, without a URL."""
    member, admin = tenant["member"], tenant["org_admin"]
    kept, dropped = (str(a) for a in new_assets(world, tenant.site, 2))
    for asset in (kept, dropped):
        add_item(client, tenant, gallery, member, asset)
    patch_gallery(client, tenant, gallery, member, cover_asset_id=dropped)
    assert _gallery(client, tenant, gallery)["cover_url"]
    response = client.delete(f"{tenant.site_path}/assets/{dropped}", headers=admin.headers)
    assert response.status_code == 204
    listed = items(client, items_path(tenant, gallery), tenant["viewer"])
    assert {i["asset_id"]: bool(i["download_url"]) for i in listed} == {kept: True,
                                                                          dropped: False}
    assert [i["download_url"] for i in listed if i["asset_id"] == dropped] == [None]
    fetched = _gallery(client, tenant, gallery)
    assert (fetched["cover_asset_id"], fetched["cover_url"]) == (dropped, None)
    in_list = items(client, galleries_path(tenant), tenant["viewer"])
    assert [(g["id"], g["cover_url"]) for g in in_list] == [(str(gallery), None)]


@pytest.mark.portable
def test_urls_only_for_assets_the_actor_may_read(app, client, world, tenant, gallery,
                                                 monkeypatch):
    """The URLs follow the policy's `read` on Asset, not the gallery's: with a policy where
    assets are unreadable (no role grants that today, so the engine's answer is replaced),
    galleries and items are still listed, without URLs."""
    from sqlalchemy import false

    from app.models import Asset

    member = tenant["member"]
    asset = new_asset(world, tenant.site, member)
    add_item(client, tenant, gallery, member, asset)
    patch_gallery(client, tenant, gallery, member, cover_asset_id=str(asset))
    engine = app.extensions["authz"]
    real_filter = engine.filter
    monkeypatch.setattr(engine, "filter", lambda actor, action, model: (
        false() if model is Asset else real_filter(actor, action, model)))
    viewer = tenant["viewer"]
    assert [i["download_url"] for i in items(client, items_path(tenant, gallery), viewer)] == [
        None]
    assert _gallery(client, tenant, gallery)["cover_url"] is None
    assert [g["cover_url"] for g in items(client, galleries_path(tenant), viewer)] == [None]
    monkeypatch.undo()
    assert _gallery(client, tenant, gallery)["cover_url"]


@pytest.mark.portable
def test_real_upload_then_gallery_urls_download_the_file(client, tenant, gallery):
    """Through the real flow: presigned POST to S3 (moto, over HTTP), complete, add, and
    the item's and the cover's presigned URLs serve the very bytes."""
    member = tenant["member"]
    data = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 64
    asset = upload(client, tenant, member, data)
    response = add_item(client, tenant, gallery, member, asset["id"], caption="uploaded")
    assert response.status_code == 201, response.get_json()
    for url in (
        response.get_json()["download_url"],
        items(client, items_path(tenant, gallery), tenant["viewer"])[0]["download_url"],
        patch_gallery(client, tenant, gallery, member, cover_asset_id=asset["id"]).get_json()[
            "cover_url"],
    ):
        downloaded = requests.get(url, timeout=10)
        assert downloaded.status_code == 200
        assert downloaded.content == data
    # an upload that was never completed cannot be added
    started = client.post(f"{tenant.site_path}/uploads",
                          json={"filename": "b.png", "content_type": "image/png",
                                "size_bytes": 10}, headers=member.headers).get_json()
    assert_problem(add_item(client, tenant, gallery, member, started["asset"]["id"]), 400,
                   errors={"asset_id"})


@pytest.mark.portable
def test_listings_within_a_window_hand_out_the_same_urls(app, client, world, tenant, gallery,
                                                         monkeypatch):
    """So that a browser listing again reuses the images it cached; after the window, new
    URLs (still never valid beyond now + TTL: tests/app/test_storage.py)."""
    from app.storage import signing_window

    member, viewer = tenant["member"], tenant["viewer"]
    asset = new_asset(world, tenant.site, member)
    add_item(client, tenant, gallery, member, asset)
    patch_gallery(client, tenant, gallery, member, cover_asset_id=str(asset))
    storage = app.extensions["storage"]
    window = signing_window(app.extensions["settings"].download_url_ttl_seconds)
    start = 1_800_000_000 // window * window

    def urls(now: float) -> tuple[list, list]:
        monkeypatch.setattr(storage, "clock", lambda: now)
        covers = [g["cover_url"] for g in items(client, galleries_path(tenant), viewer)]
        downloads = [i["download_url"] for i in items(client, items_path(tenant, gallery),
                                                       viewer)]
        return covers, downloads

    first = urls(start)
    assert all(first[0]) and all(first[1])
    assert urls(start + window - 0.5) == first
    after = urls(start + window)
    assert after[0] != first[0] and after[1] != first[1]


# -- the items list ----------------------------------------------------------------------------


@pytest.mark.portable
def test_items_list_pages_and_sorts_by_position(client, tenant, gallery, five):
    _, ids = five
    walked = pages(client, items_path(tenant, gallery), tenant["viewer"], limit=2)
    assert [len(p["items"]) for p in walked] == [2, 2, 1]
    assert [i["id"] for p in walked for i in p["items"]] == ids
    backwards = items(client, items_path(tenant, gallery), tenant["viewer"], limit=2,
                      sort="-position")
    assert [i["id"] for i in backwards] == ids[::-1]
    body = client.get(items_path(tenant, gallery), headers=tenant["viewer"].headers).get_json()
    assert len(body["items"]) == 5 and body["next_cursor"] is None


@pytest.mark.portable
def test_items_list_bad_arguments(client, world, tenant, gallery, five):
    viewer = tenant["viewer"]
    path = items_path(tenant, gallery)
    other = new_gallery(world, tenant.site, viewer, items=new_assets(world, tenant.site, 3))
    cursor = client.get(items_path(tenant, other), query_string={"limit": 1},
                        headers=viewer.headers).get_json()["next_cursor"]
    gallery_cursor = client.get(galleries_path(tenant), query_string={"limit": 1},
                                headers=viewer.headers).get_json()["next_cursor"]
    own = client.get(path, query_string={"limit": 1}, headers=viewer.headers).get_json()
    cases = [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"sort": "created_at"}, "sort"),
        ({"sort": "caption"}, "sort"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": cursor}, "cursor"),  # another gallery's items
        ({"cursor": gallery_cursor}, "cursor"),  # the galleries list
        ({"cursor": own["next_cursor"], "sort": "-position"}, "cursor"),  # another sort
    ]

    def check(case):
        params, field = case
        response = client.get(path, query_string=params, headers=viewer.headers)
        assert_problem(response, 400, errors={field})

    check_each(cases, check)


@pytest.mark.portable
def test_items_list_costs_the_same_statements_for_1_or_20_items(app, client, world, tenant):
    """One query for the items and one for their assets, whatever the page size."""
    counts = []
    viewer = tenant["viewer"]
    for size in (1, 20):
        gallery = new_gallery(world, tenant.site, tenant["member"],
                              items=new_assets(world, tenant.site, size))
        path = items_path(tenant, gallery)
        assert client.get(path, headers=viewer.headers).status_code == 200  # warm the caches
        with StatementCounter(app.extensions["db.engine"]) as counter:
            body = client.get(path, headers=viewer.headers).get_json()
        assert len(body["items"]) == size and all(i["download_url"] for i in body["items"])
        statements = counter.statements
        assert len([s for s in statements if "FROM gallery_items" in s]) == 1, statements
        assert len([s for s in statements if "FROM assets" in s]) == 1, statements
        counts.append(counter.count)
    assert counts[0] == counts[1], counts


# -- concurrency (PostgreSQL: row locks) -------------------------------------------------------


def test_concurrent_item_changes_keep_positions_dense(app, world, tenant, gallery):
    """Adds at the front, moves and reorders from several threads at once: the gallery's row
    lock serializes them, so positions stay 0..n-1 and the counter matches the rows."""
    member = tenant["member"]
    assets = [str(a) for a in new_assets(world, tenant.site, 24)]
    errors: list[str] = []
    start = threading.Barrier(4)

    def adder(chunk):
        client = app.test_client()
        start.wait()
        for asset in chunk:
            r = add_item(client, tenant, gallery, member, asset, position=0)
            if r.status_code != 201:
                errors.append(f"add {r.status_code} {r.get_json()}")

    def shuffler():
        client = app.test_client()
        start.wait()
        for _ in range(6):
            listed = client.get(items_path(tenant, gallery), query_string={"limit": 100},
                                headers=member.headers).get_json()["items"]
            if not listed:
                continue
            r = client.patch(item_path(tenant, gallery, listed[-1]["id"]), json={"position": 0},
                             headers=member.headers)
            if r.status_code not in (200, 404):
                errors.append(f"move {r.status_code} {r.get_json()}")
            r = client.put(items_path(tenant, gallery) + "/order",
                           json={"item_ids": [i["id"] for i in reversed(listed)]},
                           headers=member.headers)
            if r.status_code not in (200, 400):  # 400: an add slipped in between
                errors.append(f"reorder {r.status_code} {r.get_json()}")

    threads = [threading.Thread(target=adder, args=(assets[n::3],)) for n in range(3)]
    threads.append(threading.Thread(target=shuffler))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert stored_positions(world, gallery) == list(range(24))
    assert stored_item_count(world, gallery) == 24
    assert sorted(_order(app.test_client(), tenant, gallery)) == sorted(assets)

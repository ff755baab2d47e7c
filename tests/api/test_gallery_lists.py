"""GET .../sites/{site_id}/galleries: limit, sort, filters, keyset pages (also while rows
are inserted and deleted between pages), bad inputs, and its SQL statement count."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.authz import condition
from app.authz.actors import UserActor
from app.db import utcnow
from app.models import Gallery
from app.services import galleries
from tests.support import Tenant
from tests.support.galleries import (
    StatementCounter,
    create_gallery,
    delete_gallery,
    galleries_path,
    insert_galleries,
    items_path,
    new_assets,
    new_gallery,
)
from tests.support.http import assert_problem, check_each, items, pages

pytestmark = pytest.mark.portable

BASE = datetime(2030, 1, 1, tzinfo=UTC)
SORTS = ["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]
WORDS = ["alpha", "bravo", "charlie", "delta", "echo"]  # one collation-neutral order


def at(step: int) -> datetime:
    return BASE + timedelta(hours=step)


def rows_for(tenant: Tenant, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gallery column values for `specs` (title, created, updated, creator, items)."""
    return [
        {
            "id": uuid.uuid4(), "org_id": tenant.org.id, "site_id": tenant.site.id,
            "title": spec["title"], "description": "", "cover_asset_id": None,
            "created_by": spec["creator"], "item_count": spec["items"],
            "created_at": at(spec["created"]), "updated_at": at(spec["updated"]),
            "deleted_at": None,
        }
        for spec in specs
    ]


@pytest.fixture
def seeded(world, tenant) -> list[dict[str, Any]]:
    """26 galleries with ties on every sort key (the order must fall back on id), by two
    creators and nobody, with and without items; plus rows the list must never show."""
    rnd = random.Random(2030)
    creators = [tenant["member"].id, tenant["site_member"].id, None]
    specs = [
        {"title": rnd.choice(WORDS), "created": rnd.randrange(6), "updated": rnd.randrange(6),
         "creator": rnd.choice(creators), "items": rnd.choice([0, 0, 1, 4])}
        for _ in range(26)
    ]
    rows = rows_for(tenant, specs)
    insert_galleries(world, rows)
    # never listed: deleted, on another site, in another organization
    new_gallery(world, tenant.site, tenant["member"], title="alpha", deleted=True,
                created_at=at(2))
    new_gallery(world, world.site(tenant.org, "Other"), tenant["member"], title="alpha",
                created_at=at(2))
    foreign = world.tenant("Elsewhere")
    new_gallery(world, foreign.site, foreign["member"], title="alpha", created_at=at(2))
    return rows


def expected(rows: list[dict[str, Any]], sort: str, **filters: Any) -> list[str]:
    """The oracle: filter, then order by the sort key and id, in Python."""
    q = filters.get("q")
    kept = [
        r for r in rows
        if (q is None or q.lower() in r["title"].lower())
        and ("created_by" not in filters or str(r["created_by"]) == filters["created_by"])
        and ("created_after" not in filters or r["created_at"] >= filters["created_after"])
        and ("created_before" not in filters or r["created_at"] < filters["created_before"])
        and ("has_items" not in filters or (r["item_count"] > 0) == filters["has_items"])
    ]
    key = sort.lstrip("-")
    kept.sort(key=lambda r: (r[key], r["id"]), reverse=sort.startswith("-"))
    return [str(r["id"]) for r in kept]


def query(**filters: Any) -> dict[str, Any]:
    """Filters as query parameters (timestamps in ISO 8601, booleans as words)."""
    out = {}
    for name, value in filters.items():
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        out[name] = value
    return out


# -- limit -------------------------------------------------------------------------------------


def test_limit_defaults_to_20_and_allows_100(client, tenant, seeded):
    viewer = tenant["viewer"]
    body = client.get(galleries_path(tenant), headers=viewer.headers).get_json()
    assert len(body["items"]) == 20 and body["next_cursor"]
    body = client.get(galleries_path(tenant), query_string={"limit": 100},
                      headers=viewer.headers).get_json()
    assert len(body["items"]) == 26 and body["next_cursor"] is None


def test_bad_limits_are_400(client, tenant):
    def check(limit):
        response = client.get(galleries_path(tenant), query_string={"limit": limit},
                              headers=tenant["viewer"].headers)
        assert_problem(response, 400, errors={"limit"})

    check_each(["101", "0", "-1", "10" * 20, "abc", "1.5", ""], check)


def test_every_row_exactly_once_whatever_the_page_size(client, tenant, seeded):
    def check(limit):
        walked = pages(client, galleries_path(tenant), tenant["viewer"], limit=limit)
        ids = [g["id"] for page in walked for g in page["items"]]
        assert ids == expected(seeded, "-created_at")  # the default sort
        assert len(walked) == max(1, math.ceil(len(seeded) / limit))

    check_each([1, 2, 5, 13, 25, 26, 27, 100], check)


# -- sort and filters --------------------------------------------------------------------------


def test_default_sort_is_newest_first(client, tenant, seeded):
    listed = [g["id"] for g in items(client, galleries_path(tenant), tenant["viewer"])]
    assert listed == expected(seeded, "-created_at")


FILTERS = [
    {},
    {"q": "AL"},  # case-insensitive: alpha
    {"q": "h"},  # alpha, charlie, echo
    {"has_items": True},
    {"has_items": False},
    {"created_after": at(2)},  # inclusive
    {"created_before": at(3)},  # exclusive
    {"created_after": at(1), "created_before": at(4)},
    {"q": "a", "has_items": True, "created_after": at(1)},
    {"created_after": at(4), "created_before": at(2)},  # empty window
    {"q": "zulu"},
]


@pytest.mark.parametrize("sort", SORTS)
def test_sort_and_filter_combinations(client, tenant, seeded, sort):
    def check(filters):
        listed = items(client, galleries_path(tenant), tenant["viewer"], limit=4, sort=sort,
                       **query(**filters))
        assert [g["id"] for g in listed] == expected(seeded, sort, **filters)

    check_each(FILTERS, check)


@pytest.mark.parametrize("creator", ["member", "site_member"])
@pytest.mark.parametrize("sort", ["title", "-updated_at"])
def test_created_by_filter(client, tenant, seeded, creator, sort):
    me = str(tenant[creator].id)
    assert 0 < len(expected(seeded, sort, created_by=me)) < len(seeded)  # not vacuous
    for filters in ({"created_by": me}, {"created_by": me, "has_items": True, "q": "e"}):
        listed = items(client, galleries_path(tenant), tenant["site_viewer"], limit=3, sort=sort,
                       **query(**filters))
        assert [g["id"] for g in listed] == expected(seeded, sort, **filters)
        assert {g["created_by"] for g in listed} <= {me}
    nobody = items(client, galleries_path(tenant), tenant["viewer"],
                   created_by=str(uuid.uuid4()))
    assert nobody == []


def test_the_filters_are_not_vacuous(seeded):
    """Each filter of FILTERS keeps some rows and drops some (else it proves nothing)."""
    total = len(expected(seeded, "title"))
    for filters in FILTERS[1:-2]:
        kept = len(expected(seeded, "title", **filters))
        assert 0 < kept < total, filters


def test_q_treats_like_wildcards_literally(client, world, tenant):
    titles = ["100% sure", "1000 sure", "a_b", "axb", "back\\slash", "Mixed CASE", "under_"]
    ids = {t: str(new_gallery(world, tenant.site, tenant["member"], title=t)) for t in titles}
    cases = {
        "%": {"100% sure"},
        "0%": {"100% sure"},
        "_": {"a_b", "under_"},
        "a_b": {"a_b"},
        "\\": {"back\\slash"},
        "k\\s": {"back\\slash"},
        "mixed case": {"Mixed CASE"},
        "MIXED": {"Mixed CASE"},
        "%%": set(),
        "x": {"axb", "Mixed CASE"},
    }
    for q, want in cases.items():
        listed = items(client, galleries_path(tenant), tenant["viewer"], q=q)
        assert {g["id"] for g in listed} == {ids[t] for t in want}, q


# -- pages while rows come and go --------------------------------------------------------------


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "title", "-title", "-updated_at"])
def test_pages_stay_exact_while_rows_are_inserted_and_deleted(client, world, tenant, sort):
    """Between page fetches galleries are created (through the API and as rows anywhere in
    the order) and deleted. Rows present throughout appear exactly once, in order; nothing
    appears twice; nothing that never existed appears."""
    rnd = random.Random(sort)
    member, viewer = tenant["member"], tenant["viewer"]

    def spec():
        step = rnd.randrange(-50, 50)
        return {"title": rnd.choice(WORDS), "created": step, "updated": step,
                "creator": member.id, "items": 0}

    rows = rows_for(tenant, [spec() for _ in range(30)])
    insert_galleries(world, rows)
    alive = {str(r["id"]) for r in rows}
    ever = set(alive)
    deleted: set[str] = set()
    seen: list[dict] = []
    cursor = None
    for _ in range(100):
        params = {"limit": 4, "sort": sort, **({"cursor": cursor} if cursor else {})}
        response = client.get(galleries_path(tenant), query_string=params,
                              headers=viewer.headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        # writes between pages: two rows anywhere in the order, one through the API, ...
        new = rows_for(tenant, [spec(), spec()])
        insert_galleries(world, new)
        made = create_gallery(client, tenant, member, title=rnd.choice(WORDS))
        ever |= {str(r["id"]) for r in new} | {made["id"]}
        # ... and two deletions, one through the API, one of a row already seen or not
        victims = rnd.sample(sorted(alive - deleted), 2)
        assert delete_gallery(client, tenant, victims[0], member).status_code == 204
        with world.maker() as session, session.begin():
            session.execute(update(Gallery).where(Gallery.id == uuid.UUID(victims[1]))
                            .values(deleted_at=utcnow()))
        deleted |= set(victims)
    else:
        raise AssertionError("pagination does not end")

    ids = [g["id"] for g in seen]
    assert len(ids) == len(set(ids)), "a row appeared twice"
    assert set(ids) <= ever
    assert alive - deleted <= set(ids), "a row present throughout was skipped"
    key = sort.lstrip("-")
    keys = [(g[key], uuid.UUID(g["id"])) for g in seen]
    assert keys == sorted(keys, reverse=sort.startswith("-"))


# -- bad inputs --------------------------------------------------------------------------------


def _cursor(client, path, person, **params):
    body = client.get(path, query_string={"limit": 2, **params}, headers=person.headers)
    cursor = body.get_json()["next_cursor"]
    assert cursor
    return cursor


def _tampered(cursor: str) -> list[str]:
    body, mac = cursor.split(".")
    flip = lambda s, i: s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]  # noqa: E731
    return [flip(cursor, 3), flip(cursor, len(body) - 2), flip(cursor, len(cursor) - 3),
            body, body + ".", "." + mac, cursor + "x", cursor.replace(".", "..")]


GARBLED = ["garbage", "a.b", "!!!.???", "e30.", "W10.AAAA", "x" * 1025, "é.é", "\x00", "..",
           "eyJ9.abc", " "]


def test_garbled_and_tampered_cursors_are_400(client, tenant, seeded):
    viewer = tenant["viewer"]
    path = galleries_path(tenant)
    for cursor in GARBLED + _tampered(_cursor(client, path, viewer)):
        response = client.get(path, query_string={"cursor": cursor}, headers=viewer.headers)
        assert_problem(response, 400, errors={"cursor"})


def test_cursor_of_another_list_is_400(client, world, tenant, seeded):
    """Cursors are bound to their list: another site (same org, same reader), another
    organization, the items list, another sort order."""
    admin = tenant["org_admin"]
    other = Tenant(tenant.org, world.site(tenant.org, "Other"), tenant.people)
    for n in range(3):
        new_gallery(world, other.site, admin, title=f"g{n}")
    foreign = world.tenant("Elsewhere")
    world.grant_org(admin, foreign.org, "viewer")
    for n in range(3):
        new_gallery(world, foreign.site, foreign["member"], title=f"g{n}")
    gallery = new_gallery(world, tenant.site, admin, items=new_assets(world, tenant.site, 3))
    path = galleries_path(tenant)
    foreign_cursors = [
        _cursor(client, galleries_path(other), admin),
        _cursor(client, galleries_path(foreign), admin),
        _cursor(client, items_path(tenant, gallery), admin),
        _cursor(client, f"{tenant.org_path}/sites", admin)
        if len(items(client, f"{tenant.org_path}/sites", admin)) > 2 else None,
    ]
    for cursor in filter(None, foreign_cursors):
        response = client.get(path, query_string={"cursor": cursor}, headers=admin.headers)
        assert_problem(response, 400, errors={"cursor"})
    for sort in SORTS:
        cursor = _cursor(client, path, admin, sort=sort)
        assert client.get(path, query_string={"cursor": cursor, "sort": sort},
                          headers=admin.headers).status_code == 200
        for other_sort in set(SORTS) - {sort}:
            response = client.get(path, query_string={"cursor": cursor, "sort": other_sort},
                                  headers=admin.headers)
            assert_problem(response, 400, errors={"cursor"})


def test_a_cursor_works_for_another_reader_of_the_same_list(client, tenant, seeded):
    cursor = _cursor(client, galleries_path(tenant), tenant["viewer"])
    response = client.get(galleries_path(tenant), query_string={"cursor": cursor, "limit": 2},
                          headers=tenant["site_member"].headers)
    assert response.status_code == 200
    assert [g["id"] for g in response.get_json()["items"]] == expected(seeded, "-created_at")[2:4]


BAD_ARGUMENTS = [
    ({"sort": "name"}, "sort"),
    ({"sort": "-id"}, "sort"),
    ({"sort": "id"}, "sort"),
    ({"sort": "--title"}, "sort"),
    ({"sort": "+title"}, "sort"),
    ({"sort": "title,created_at"}, "sort"),
    ({"sort": "TITLE"}, "sort"),
    ({"sort": ""}, "sort"),
    ({"sort": "item_count"}, "sort"),
    ({"created_by": "not-a-uuid"}, "created_by"),
    ({"created_by": "1"}, "created_by"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"created_after": "2030-01-01T00:00:00"}, "created_after"),  # no time zone
    ({"created_before": "2030-13-01T00:00:00Z"}, "created_before"),
    ({"has_items": "maybe"}, "has_items"),
    ({"q": ""}, "q"),
    ({"q": "x" * 201}, "q"),
    ({"q": "nul\x00byte"}, "q"),
]


def test_bad_list_arguments_are_400(client, tenant):
    def check(case):
        params, field = case
        response = client.get(galleries_path(tenant), query_string=params,
                              headers=tenant["viewer"].headers)
        assert_problem(response, 400, errors={field})

    check_each(BAD_ARGUMENTS, check)


def test_malformed_site_and_org_ids_are_400_and_unknown_ones_404(client, tenant):
    viewer = tenant["viewer"]
    for path, status, errors in (
        (f"{tenant.org_path}/sites/not-a-uuid/galleries", 400, {"site_id"}),
        (f"/v1/orgs/not-a-uuid/sites/{tenant.site.id}/galleries", 400, {"org_id"}),
        ("/v1/orgs/not-a-uuid/sites/1/galleries", 400, {"org_id", "site_id"}),
        (f"{tenant.org_path}/sites/{uuid.uuid4()}/galleries", 404, None),
    ):
        assert_problem(client.get(path, headers=viewer.headers), status, errors=errors)


# -- statement count ---------------------------------------------------------------------------


def test_list_costs_the_same_statements_for_1_or_20_galleries(app, client, world, tenant):
    """One query for the page and its covers, whatever the page size: no N+1. Counted
    over the whole request (authentication and scope lookups included)."""
    counts = []
    for size in (1, 20):
        site = world.site(tenant.org, f"site {size}")
        scoped = Tenant(tenant.org, site, tenant.people)
        for n, cover in enumerate(new_assets(world, site, size)):
            new_gallery(world, site, tenant["member"], title=f"g{n}", cover=cover, items=[cover])
        path = galleries_path(scoped)
        viewer = tenant["viewer"]
        assert client.get(path, headers=viewer.headers).status_code == 200  # warm the caches
        with StatementCounter(app.extensions["db.engine"]) as counter:
            response = client.get(path, headers=viewer.headers)
        body = response.get_json()
        assert len(body["items"]) == size
        assert all(g["cover_url"] for g in body["items"])
        statements = counter.statements
        pages = [s for s in statements if "FROM galleries" in s]
        assert len(pages) == 1 and "JOIN assets" in pages[0], statements
        assert not [s for s in statements if "FROM assets" in s], statements
        counts.append(counter.count)
    assert counts[0] == counts[1], counts


# -- the reused list statement ------------------------------------------------------------------


def test_the_reused_list_statement_carries_no_request_s_values(app, client, world, tenant):
    """The list statement is built once per shape (filters used, reader's grants) and reused
    with each request's values: interleaved lists of two sites and two organizations by one
    reader (one shape, one statement) each show their own rows, filters and pages."""
    admin = tenant["org_admin"]
    other = Tenant(tenant.org, world.site(tenant.org, "Other"), tenant.people)
    foreign = world.tenant("Elsewhere")
    world.grant_org(admin, foreign.org, "viewer")
    lists = {"a": tenant, "b": other, "f": foreign}
    for prefix, owner in lists.items():
        for n in range(3):
            new_gallery(world, owner.site, owner["member"], title=f"{prefix}-{n}",
                        created_at=at(n))
    for _ in range(2):
        for prefix, owner in lists.items():
            titles = [g["title"] for g in items(client, galleries_path(owner), admin, limit=2)]
            assert titles == [f"{prefix}-2", f"{prefix}-1", f"{prefix}-0"]
            found = items(client, galleries_path(owner), admin, q=f"{prefix}-1")
            assert [g["title"] for g in found] == [f"{prefix}-1"]

    reader = UserActor(admin.id, org_roles={tenant.org.id: "org_admin", foreign.org.id: "viewer"})
    stranger = UserActor(uuid.uuid4(), org_roles={foreign.org.id: "member"})
    with app.app_context():
        read = condition(reader, "read", Gallery)
        args = {"q": "x", "created_by": None, "has_items": False}
        shapes = [galleries.listing(owner.site, args, read)[0] for owner in lists.values()]
        assert shapes[0] is shapes[1] is shapes[2]
        assert galleries.listing(tenant.site, {}, read)[0] is not shapes[0]
        assert galleries.listing(
            foreign.site, args, condition(stranger, "read", Gallery))[0] is not shapes[2]

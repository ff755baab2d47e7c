"""Cost of listing galleries: one page of 20 from a site with 100,000 galleries, through the
app's code path vs. hand-written SQL that returns the same rows. Not a test: it prints
figures.

    .venv/bin/python bench/galleries.py    (DATABASE_URL may name the PostgreSQL server)

Seeds a throwaway database (dropped at the end) with COPY: 100k galleries on the measured
site (30% with a cover, 1% deleted), 20k on four other sites of the organization, 5k ready
assets. The reader is an organization viewer.

Four lists: the default sort, sort=title, a `q` search, and a page 80,000 rows deep through
its cursor. For each, three levels:
- page: the view's list query, `galleries.listing()` around `condition()` (the Oso filter,
  from its warm cache) + `paginate()`, vs. the same page written by hand in SQL and
  loaded as the same `Gallery` objects (`select(Gallery).from_statement(...)`): the goal is
  <= 1.2x. Also shown: the hand-written SQL read as plain tuples (no ORM at all);
- page + covers: the view's page with its covers (`galleries.with_covers`: the covers'
  assets outer-joined in the same query; no presigning), vs. the hand-written page and
  a second hand-written query for its covers;
- endpoint: `GET .../galleries` through the in-process test client (authentication, scope,
  covers presigned, JSON) against the hand-written page + covers (goal <= 2x).
Every case of a list is timed in turn, DATA_RUNS times, so that other processes slow
them alike.
The database connection is the tables' owner (its own policy shows it every row), the
same for every case.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.auth.keys import KeyRing  # noqa: E402
from app.authz import condition  # noqa: E402
from app.authz.actors import UserActor  # noqa: E402
from app.db import conninfo  # noqa: E402
from app.models import Asset, Gallery, Site  # noqa: E402
from app.pagination import encode_cursor, paginate  # noqa: E402
from app.services import galleries  # noqa: E402
from app.services.identity import list_grants  # noqa: E402
from bench._common import pct, timed  # noqa: E402
from schemas.galleries import GalleryListArgs  # noqa: E402
from tests.support import as_administrator, throwaway_database  # noqa: E402

GALLERIES, OTHER_SITES, PER_OTHER_SITE, ASSETS, CREATORS = 100_000, 4, 5_000, 5_000, 50
PAGE, DEEP = 20, 80_000
DATA_RUNS = 200
WORDS = ["sunset", "beach", "mountain", "city", "forest", "river", "night", "snow", "market",
         "garden", "harbor", "desert", "festival", "portrait", "street", "bridge", "island",
         "lake", "temple", "autumn"]
SEARCH = "Harbor"  # case-insensitive: matches "harbor" in ~10% of titles

COLUMNS = "g.id, g.created_at, g.updated_at, g.title"
HAND = {
    "created_at": "ORDER BY g.created_at DESC, g.id DESC",
    "title": "ORDER BY g.title, g.id",
}
LIVE = "g.org_id = :org AND g.site_id = :site AND g.deleted_at IS NULL"
HAND_COVERS = text(
    "SELECT * FROM assets WHERE id = ANY(:ids) AND status = 'ready' AND deleted_at IS NULL"
)


def seed(url: str) -> dict:
    """COPY the rows in; returns the ids the benchmark needs."""
    rnd = random.Random(11)
    now = datetime.now(UTC)
    org, other_org = uuid.uuid4(), uuid.uuid4()
    site, others = uuid.uuid4(), [uuid.uuid4() for _ in range(OTHER_SITES)]
    reader, creators = uuid.uuid4(), [uuid.uuid4() for _ in range(CREATORS)]
    assets = [uuid.uuid4() for _ in range(ASSETS)]
    with psycopg.connect(conninfo(url)) as conn, conn.cursor() as cur:
        def copy(table: str, columns: str, rows) -> None:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)

        copy("users", "id, email, password_hash, display_name, created_at, updated_at",
             ((u, f"{u.hex}@bench.test", "-", "", now, now) for u in [reader, *creators]))
        copy("organizations", "id, name, created_at, updated_at",
             ((o, "org", now, now) for o in (org, other_org)))
        copy("sites", "id, org_id, name, created_at, updated_at",
             [(s, org, "site", now, now) for s in (site, *others)]
             + [(uuid.uuid4(), other_org, "site", now, now)])
        copy("org_memberships", "id, org_id, user_id, role, created_at, updated_at",
             [(uuid.uuid4(), org, reader, "viewer", now, now)]
             + [(uuid.uuid4(), org, c, "member", now, now) for c in creators])
        copy("assets", "id, org_id, site_id, key, filename, content_type, size_bytes, status,"
             " tags, created_by, completed_at, created_at, updated_at",
             ((a, org, site, f"orgs/{org}/sites/{site}/assets/{a}", f"{n}.jpg", "image/jpeg",
               1000 + n, "ready", "[]", rnd.choice(creators), now, now, now)
              for n, a in enumerate(assets)))

        def galleries_of(site_id, count):
            for n in range(count):
                created = now - timedelta(seconds=rnd.randrange(365 * 86400))
                updated = created + timedelta(seconds=rnd.randrange(30 * 86400))
                title = f"{rnd.choice(WORDS)} {rnd.choice(WORDS)} {n}"
                cover = rnd.choice(assets) if site_id == site and rnd.random() < 0.3 else None
                deleted = now if rnd.random() < 0.01 else None
                yield (uuid.uuid4(), org, site_id, title, "", cover, rnd.choice(creators),
                       rnd.choice((0, 0, 1, 5, 12)), deleted, created, updated)

        columns = ("id, org_id, site_id, title, description, cover_asset_id, created_by,"
                   " item_count, deleted_at, created_at, updated_at")
        copy("galleries", columns, galleries_of(site, GALLERIES))
        for other in others:
            copy("galleries", columns, galleries_of(other, PER_OTHER_SITE))
        session_id = uuid.uuid4()
        copy("auth_sessions", "id, user_id, last_used_at, expires_at, user_agent, ip,"
             " created_at, updated_at",
             [(session_id, reader, now, now + timedelta(days=1), "", "", now, now)])
        conn.commit()
        cur.execute("ANALYZE")
    return {"org": org, "site": site, "reader": reader, "session": session_id}


def main() -> None:
    started = time.perf_counter()
    with throwaway_database("bench_galleries") as url:
        ids = seed(as_administrator(url))  # COPY: the owner is under row-level security
        seeded = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as instance:
            app = create_app({"database_url": url, "instance_path": instance,
                              "jwt_keys": {"keys": [KeyRing.generate_key()]},
                              "ratelimit_enabled": False, "log_level": "WARNING"})
            try:
                with app.app_context():
                    run(app, ids)
            finally:
                if "actor_cache" in app.extensions:
                    app.extensions["actor_cache"].close()
                app.extensions["db.engine"].dispose()
    print(f"\ntotal {time.perf_counter() - started:.0f}s (seeding {seeded:.0f}s)")


def run(app, ids: dict) -> None:
    maker = app.extensions["db.sessionmaker"]
    secret = app.extensions["settings"].secret_key
    org, site_id = ids["org"], ids["site"]
    path = f"/v1/orgs/{org}/sites/{site_id}/galleries"
    with maker() as s:
        grants = list_grants(s, ids["reader"])
        site = s.get(Site, site_id)
        s.expunge(site)
    actor = UserActor(  # as identity.load_actor builds it, once per request
        id=ids["reader"],
        org_roles={g.org_id: g.role for g in grants if g.site_id is None},
        site_roles={g.site_id: g.role for g in grants if g.site_id is not None},
        site_orgs={g.site_id: g.org_id for g in grants if g.site_id is not None},
    )

    def args(sort="-created_at", q=None, cursor=None) -> dict:
        """The list's arguments as the view gets them (the schema loads `sort` as a key)."""
        given = {"sort": sort, "limit": PAGE, "cursor": cursor, "q": q}
        return GalleryListArgs().load({k: v for k, v in given.items() if v is not None})

    def real_page(s, a: dict) -> list[Gallery]:
        """The view's list query (app/api/galleries.py, Galleries.get)."""
        stmt, values = galleries.listing(site, a, condition(actor, "read", Gallery))
        return paginate(s, stmt, sort=a["sort"],
                        limit=a["limit"], cursor=a["cursor"], secret=secret, scope=path,
                        params=values).items

    def real_covered(s, a: dict) -> list:
        """The view's page with its covers, in one query (`galleries.with_covers`): rows of
        (gallery, key, filename, type), without presigning."""
        stmt, values = galleries.listing(site, a, condition(actor, "read", Gallery))
        stmt = galleries.with_covers(stmt, condition(actor, "read", Asset))
        return paginate(s, stmt, sort=a["sort"], limit=a["limit"], cursor=a["cursor"],
                        secret=secret, scope=path, params=values, whole_rows=True).items

    def hand_sql(a: dict) -> tuple[str, dict]:
        sort = a["sort"].name
        where, params = LIVE, {"org": org, "site": site_id, "limit": PAGE + 1}
        if a["q"]:
            where += " AND g.title ILIKE :q"
            params["q"] = f"%{a['q']}%"
        if a.get("after"):
            where += " AND (g.created_at, g.id) < (:value, :last)"
            params["value"], params["last"] = a["after"]
        return f"SELECT g.* FROM galleries g WHERE {where} {HAND[sort]} LIMIT :limit", params

    def hand_page(s, a: dict) -> list[Gallery]:
        sql, params = hand_sql(a)
        return list(s.scalars(select(Gallery).from_statement(text(sql)), params))[:PAGE]

    def hand_tuples(s, a: dict) -> list:
        sql, params = hand_sql(a)
        return s.execute(text(sql), params).all()[:PAGE]

    def hand_covers(s, rows) -> list[Asset]:
        wanted = list({r.cover_asset_id for r in rows if r.cover_asset_id})
        if not wanted:
            return []
        return list(s.scalars(select(Asset).from_statement(HAND_COVERS), {"ids": wanted}))

    # The lists: (label, view arguments, hand arguments). The deep page's cursor is the one
    # the API would hand out after row DEEP (signed for this list and sort).
    with maker() as s:
        sql, params = hand_sql(args())
        row = s.execute(text(sql.replace("LIMIT :limit", "OFFSET :deep LIMIT 1")),
                        {**params, "deep": DEEP - 1}).one()
    cursor = encode_cursor(secret, path, "-created_at", row.created_at, row.id)
    lists = [
        ("sort=-created_at (default)", args(), args()),
        ("sort=title", args(sort="title"), args(sort="title")),
        (f"q={SEARCH}", args(q=SEARCH), args(q=SEARCH)),
        (f"{DEEP:,} rows deep, cursor", args(cursor=cursor),
         {**args(), "after": (row.created_at, row.id)}),
    ]

    client = app.test_client()
    token, _ = app.extensions["tokens"].issue_access_token(ids["reader"], ids["session"])
    headers = {"Authorization": f"Bearer {token}"}

    table, ratios = [], []
    for label, view_args, hand_args in lists:
        def page_real():
            with maker() as s:
                return [g.id for g in real_page(s, view_args)]  # noqa: B023

        def page_hand():
            with maker() as s:
                return [g.id for g in hand_page(s, hand_args)]  # noqa: B023

        def page_tuples():
            with maker() as s:
                return [r.id for r in hand_tuples(s, hand_args)]  # noqa: B023

        def both_real():
            with maker() as s:
                rows = real_covered(s, view_args)  # noqa: B023
                return [r[0].id for r in rows], {r[0].cover_asset_id for r in rows if r[1]}

        def both_hand():
            with maker() as s:
                rows = hand_page(s, hand_args)  # noqa: B023
                return [r.id for r in rows], {a.id for a in hand_covers(s, rows)}

        query = {k: v for k, v in view_args.items() if v is not None and k != "limit"}
        query["sort"] = view_args["sort"].label  # loaded as a SortKey; sent as text

        def endpoint():
            response = client.get(path, query_string=query, headers=headers)  # noqa: B023
            assert response.status_code == 200, response.get_json()
            return response.get_json()

        expected = page_hand()
        assert len(expected) == PAGE, label
        assert page_real() == expected == page_tuples(), label  # same rows, same order
        assert both_real() == both_hand(), label
        body = endpoint()
        assert [uuid.UUID(g["id"]) for g in body["items"]] == expected, label
        covered = sum(1 for g in body["items"] if g["cover_url"])

        cases = {"page: hand SQL, tuples": page_tuples, "page: hand SQL": page_hand,
                 "page: app": page_real,
                 "page+covers: hand": both_hand, "page+covers: app": both_real,
                 "endpoint GET (app)": endpoint}
        samples: dict[str, list[float]] = {name: [] for name in cases}
        gc.collect()
        for fn in cases.values():  # warm up
            timed(fn, 20)
        for _ in range(DATA_RUNS):  # interleaved, so drift (other processes) hits all alike
            for name, fn in cases.items():
                samples[name] += timed(fn, 1)
        table += [(f"{label}: {name}", ms) for name, ms in samples.items()]
        p50 = {name: statistics.median(ms) for name, ms in samples.items()}
        ratios.append((label, covered, p50["page: app"] / p50["page: hand SQL"],
                       p50["page: app"] / p50["page: hand SQL, tuples"],
                       p50["page+covers: app"] / p50["page+covers: hand"],
                       p50["endpoint GET (app)"] / p50["page+covers: hand"]))

    print(f"\n{GALLERIES:,} galleries on the site (+{OTHER_SITES * PER_OTHER_SITE:,} on "
          f"{OTHER_SITES} other sites); page of {PAGE}; reader: organization viewer\n")
    print(f"{'case':<50} {'p50 ms':>8} {'p95 ms':>8} {'runs':>6}")
    for name, samples in table:
        print(f"{name:<50} {statistics.median(samples):8.3f} {pct(samples, 95):8.3f} "
              f"{len(samples):>6}")
    print(f"\n{'p50 ratio app / hand-written SQL':<32} {'page':>6} {'tuples':>7} {'+covers':>8} "
          f"{'endpoint':>9}")
    for label, covered, page_ratio, tuple_ratio, both_ratio, endpoint_ratio in ratios:
        print(f"{label:<32} {page_ratio:5.2f}x {tuple_ratio:6.2f}x {both_ratio:7.2f}x "
              f"{endpoint_ratio:8.2f}x   ({covered} covers on the page)")
    print("page: vs the same Gallery objects from hand-written SQL (goal <= 1.2x); tuples: vs "
          "hand-written SQL without the ORM; +covers: with the covers' query; endpoint: the "
          "whole GET vs hand-written page + covers (goal <= 2x)")


if __name__ == "__main__":
    main()

"""Cost of authorizing a list endpoint: one page of `GET /v1/orgs/{org_id}/sites` through the
Oso filter (`app.authz.authorized` + `paginate`, as the view does) vs. hand-written SQL that
returns the same rows. Not a test: it prints figures.

    .venv/bin/python bench/authz_list.py    (DATABASE_URL may name the PostgreSQL server)

Seeds a throwaway database (dropped at the end) with 1,000 organizations x 100 sites. The
benchmarked user is org_admin of 3 organizations and holds site roles on 3 sites in each of
10 others; other users hold the usual grants, so the tables are not just this user's.

Then the cold filter build (the first list request of an actor in a worker) for users with
1, 5, 20, 50 and 200 grants (half on organizations, half on sites, every role): the
engine's (its kind's template filled in) against oso's own partial evaluation, the
baseline, in the same run; the template itself is built once per (actor class, action,
model) and worker.
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
from sqlalchemy import or_, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.auth.keys import KeyRing  # noqa: E402
from app.authz import AuthzEngine, authorized  # noqa: E402
from app.authz.actors import UserActor  # noqa: E402
from app.db import conninfo  # noqa: E402
from app.models import ORG_ROLES, SITE_ROLES, Organization, Site  # noqa: E402
from app.pagination import SortKey, paginate  # noqa: E402
from app.services.identity import list_grants  # noqa: E402
from bench._common import pct, timed  # noqa: E402
from tests.support import as_administrator, throwaway_database  # noqa: E402

ORGS, SITES_PER_ORG, PAGE = 1_000, 100, 20
WARM_RUNS, COLD_RUNS, SHIPPED_RUNS = 1_500, 40, 1_000
GRANT_COUNTS, TEMPLATE_RUNS = (1, 5, 20, 50, 200), 200
BY_CREATION = SortKey("created_at", Site.created_at, descending=False)

# What a developer would write by hand with the same preloaded grants.
HAND_SQL = text(
    "SELECT * FROM sites WHERE org_id = :org AND deleted_at IS NULL"
    " AND (org_id = ANY(:org_ids) OR id = ANY(:site_ids))"
    " ORDER BY created_at, id LIMIT :limit"
)


def seed(url: str) -> uuid.UUID:
    """COPY the rows in; returns the benchmarked user's id."""
    rnd = random.Random(7)
    now = datetime.now(UTC)
    at = lambda: now - timedelta(seconds=rnd.randrange(365 * 86400))  # noqa: E731
    orgs = [uuid.uuid4() for _ in range(ORGS)]
    sites = {org: [uuid.uuid4() for _ in range(SITES_PER_ORG)] for org in orgs}
    me, admins = uuid.uuid4(), [uuid.uuid4() for _ in orgs]
    viewers = [uuid.uuid4() for _ in range(2_000)]
    org_grants = [(org, admins[i], "org_admin") for i, org in enumerate(orgs)]
    org_grants += [(org, me, "org_admin") for org in orgs[:3]]
    org_grants += [(rnd.choice(orgs), v, rnd.choice(("viewer", "member"))) for v in viewers]
    site_grants = [(org, site, me, rnd.choice(("viewer", "member", "site_admin")))
                   for org in orgs[3:13] for site in rnd.sample(sites[org], 3)]
    site_grants += [(org, rnd.choice(sites[org]), v, "viewer")
                    for v in viewers for org in [rnd.choice(orgs)]]
    with psycopg.connect(conninfo(url)) as conn, conn.cursor() as cur:
        def copy(table: str, columns: str, rows) -> None:
            with cur.copy(f"COPY {table} ({columns}, created_at, updated_at) FROM STDIN") as cp:
                for row in rows:
                    stamp = at()
                    cp.write_row((*row, stamp, stamp))

        copy("users", "id, email, password_hash, display_name",
             ((u, f"{u.hex}@bench.test", "-", "") for u in [me, *admins, *viewers]))
        copy("organizations", "id, name", ((o, f"org {i}") for i, o in enumerate(orgs)))
        copy("sites", "id, org_id, name, deleted_at",
             ((s, o, "site", now if rnd.random() < 0.05 else None)
              for o in orgs for s in sites[o]))
        copy("org_memberships", "id, org_id, user_id, role",
             ((uuid.uuid4(), *g) for g in set(org_grants)))
        copy("site_memberships", "id, org_id, site_id, user_id, role",
             ((uuid.uuid4(), *g) for g in {g[:3]: g for g in site_grants}.values()))
        cur.execute("ANALYZE")
    return me


def main() -> None:
    started = time.perf_counter()
    with throwaway_database("bench_authz") as url:
        me = seed(as_administrator(url))  # COPY: the owner is under row-level security
        seeded = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as instance:
            app = create_app({"database_url": url, "instance_path": instance,
                              "jwt_keys": {"keys": [KeyRing.generate_key()]},
                              "ratelimit_enabled": False, "log_level": "ERROR"})
            try:
                with app.app_context():
                    run(app, me)
            finally:
                if "actor_cache" in app.extensions:
                    app.extensions["actor_cache"].close()
                app.extensions["db.engine"].dispose()
    print(f"\ntotal {time.perf_counter() - started:.0f}s (seeding {seeded:.0f}s)")


def run(app, me: uuid.UUID) -> None:
    maker = app.extensions["db.sessionmaker"]
    engine: AuthzEngine = app.extensions["authz"]
    secret = app.extensions["settings"].secret_key
    with maker() as s:
        grants = list_grants(s, me)
    actor = UserActor(  # as identity.load_actor builds it, once per request
        id=me,
        org_roles={g.org_id: g.role for g in grants if g.site_id is None},
        site_roles={g.site_id: g.role for g in grants if g.site_id is not None},
        site_orgs={g.site_id: g.org_id for g in grants if g.site_id is not None},
    )
    admin_org = next(iter(actor.org_roles))
    guest_org = actor.guest_org_ids()[0]

    def listing(org: uuid.UUID, where) -> list[uuid.UUID]:
        """The view's path: live sites of the org, a WHERE for the grants, one page."""
        with maker() as s:
            stmt = where(select(Site).where(Site.org_id == org, Site.deleted_at.is_(None)))
            page = paginate(s, stmt, sort=BY_CREATION,
                            limit=PAGE, cursor=None, secret=secret, scope=f"/v1/orgs/{org}/sites")
            return [site.id for site in page.items]

    def via_oso(org: uuid.UUID) -> list[uuid.UUID]:
        return listing(org, lambda stmt: authorized(stmt, actor, "read", Site))

    def by_hand_select(org: uuid.UUID) -> list[uuid.UUID]:
        grants = or_(Site.org_id.in_(list(actor.org_roles)), Site.id.in_(list(actor.site_roles)))
        return listing(org, lambda stmt: stmt.where(grants))

    def by_hand(org: uuid.UUID) -> list[uuid.UUID]:
        with maker() as s:
            rows = s.scalars(select(Site).from_statement(HAND_SQL), {
                "org": org, "org_ids": list(actor.org_roles), "site_ids": list(actor.site_roles),
                "limit": PAGE + 1})
            return [site.id for site in rows][:PAGE]

    table: list[tuple[str, list[float]]] = []
    ratios = []
    for label, org in (("org_admin's org", admin_org), ("guest org", guest_org)):
        cases = {"hand-written SQL": by_hand, "hand-written select()": by_hand_select,
                 "oso filter, warm": via_oso}
        rows = {name: fn(org) for name, fn in cases.items()}
        assert rows["hand-written SQL"], label
        assert all(r == rows["hand-written SQL"] for r in rows.values()), label  # same order too
        samples: dict[str, list[float]] = {name: [] for name in cases}
        gc.collect()
        for _ in range(WARM_RUNS):  # interleaved, so drift hits all alike
            for name, fn in cases.items():
                samples[name] += timed(lambda: fn(org), 1)  # noqa: B023
        table += [(f"{label}: {name}", ms) for name, ms in samples.items()]
        sql_p50, select_p50, oso_p50 = (statistics.median(ms) for ms in samples.values())
        ratios += [(f"{label}, vs hand-written SQL", oso_p50 / sql_p50),
                   (f"{label}, vs hand-written select()", oso_p50 / select_p50)]

    def cold_build() -> None:
        engine.filters.data.clear()
        engine.filter(actor, "read", Site)

    def oso_build() -> None:
        engine.oso.authorized_query(actor, "read", Site)

    def cold_list() -> None:
        engine.filters.data.clear()
        via_oso(admin_org)

    table.append(("filter build only (cache miss)", timed(cold_build, TEMPLATE_RUNS)))
    table.append(("filter build only, oso's own evaluation", timed(oso_build, COLD_RUNS)))
    table.append(("org_admin's org: oso filter, cold", timed(cold_list, COLD_RUNS)))
    with maker() as s:
        org = s.get(Organization, admin_org)
        table.append(("authorize(list_sites, org): is_allowed",
                      timed(lambda: engine.is_allowed(actor, "list_sites", org), 200)))
    shipped = shipped_adapter(app, actor, admin_org, by_hand(admin_org))
    if shipped:
        table.append(("org_admin's org: oso's own adapter, warm", shipped))

    print(f"\n{ORGS * SITES_PER_ORG:,} sites in {ORGS:,} orgs; page of {PAGE}; user with "
          f"{len(actor.org_roles)} org roles and {len(actor.site_roles)} site roles\n")
    print(f"{'case':<46} {'p50 ms':>8} {'p95 ms':>8} {'runs':>6}")
    for name, samples in table:
        print(f"{name:<46} {statistics.median(samples):8.3f} {pct(samples, 95):8.3f} "
              f"{len(samples):>6}")
    print()
    for label, ratio in ratios:
        print(f"warm p50 ratio oso, {label}: {ratio:.2f}x (goal <= 1.2x)")
    hand_p50 = statistics.median(table[0][1])
    if shipped:
        print(f"warm p50 ratio oso's own SqlAlchemyAdapter, org_admin's org, vs hand-written SQL: "
              f"{statistics.median(shipped) / hand_p50:.2f}x (+ the cold cost on every request)")
    cold_by_grants(app, engine)


def cold_by_grants(app, engine: AuthzEngine) -> None:
    """The cold filter build against the number of grants: the engine vs oso alone."""
    maker = app.extensions["db.sessionmaker"]
    with maker() as s:
        orgs = list(s.scalars(select(Organization.id).order_by(Organization.id).limit(100)))
        sites = list(s.scalars(select(Site.id).where(Site.org_id.not_in(orgs))
                               .order_by(Site.id).limit(100)))
        site_orgs = dict(s.execute(select(Site.id, Site.org_id).where(Site.id.in_(sites))).all())

    def user(grants: int) -> UserActor:
        on_orgs = grants // 2
        mine = sites[:grants - on_orgs]
        return UserActor(
            id=uuid.uuid4(),
            org_roles={org: ORG_ROLES[i % len(ORG_ROLES)] for i, org in enumerate(orgs[:on_orgs])},
            site_roles={site: SITE_ROLES[i % len(SITE_ROLES)] for i, site in enumerate(mine)},
            site_orgs={site: site_orgs[site] for site in mine},
        )

    engine.templates.clear()
    shape = UserActor(id=uuid.uuid4()).policy_shape  # a login: no scopes, unverified
    template = timed(lambda: engine.template(UserActor, "read", Site, shape), 1)
    engine.filters.data.clear()
    rows = []
    for grants in GRANT_COUNTS:
        actor = user(grants)
        assert len(actor.org_roles) + len(actor.site_roles) == grants

        def build() -> None:
            engine.filters.data.clear()
            engine.filter(actor, "read", Site)  # noqa: B023

        ours = timed(build, TEMPLATE_RUNS)
        oso = timed(lambda: engine.oso.authorized_query(actor, "read", Site),  # noqa: B023
                    max(3, COLD_RUNS * 5 // grants if grants > 5 else COLD_RUNS))
        rows.append((grants, ours, oso))
    print(f"\ncold filter build, read Site (template built once per worker: "
          f"{template[0]:.1f} ms)")
    print(f"{'grants':>6} {'engine p50 ms':>14} {'p95 ms':>8} {'oso alone p50 ms':>17} "
          f"{'ratio':>7}")
    for grants, ours, oso in rows:
        p50, base = statistics.median(ours), statistics.median(oso)
        print(f"{grants:>6} {p50:14.3f} {pct(ours, 95):8.3f} {base:17.3f} {p50 / base:6.3f}x")
    fifty = next(ours for grants, ours, _ in rows if grants == 50)
    print(f"cold filter build at 50 grants: {statistics.median(fifty):.3f} ms")


def shipped_adapter(app, actor, org: uuid.UUID, expected: list[uuid.UUID]) -> list[float] | None:
    """Same listing through the adapter that ships with oso (legacy Query, JOIN, DISTINCT)."""
    try:
        from polar.data.adapter.sqlalchemy_adapter import SqlAlchemyAdapter
    except ImportError:
        return None
    maker = app.extensions["db.sessionmaker"]
    session = maker()
    shipped = AuthzEngine(app.extensions["settings"].policy_dir, session=lambda: session)
    shipped.oso.set_data_filtering_adapter(SqlAlchemyAdapter(session))

    # Its Query is bound to a session, so a request would rebuild it (the cold cost above);
    # here it is built once, to time its SQL (JOIN organizations, SELECT DISTINCT) alone.
    query = shipped.oso.authorized_query(actor, "read", Site)
    query = query.filter(Site.org_id == org, Site.deleted_at.is_(None))
    query = query.order_by(Site.created_at, Site.id).limit(PAGE + 1)

    def listing() -> list[uuid.UUID]:
        ids = [site.id for site in query.all()][:PAGE]
        session.rollback()  # a fresh transaction and identity map each time, like a request
        return ids

    try:
        assert listing() == expected
        return timed(listing, SHIPPED_RUNS)
    finally:
        session.close()


if __name__ == "__main__":
    main()

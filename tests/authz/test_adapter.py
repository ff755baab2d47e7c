"""The data-filtering adapter, on its own: each comparison keeps Python's semantics (NULL
included), the SQL stays join-free and DISTINCT-free, and what cannot be compiled faithfully
raises `UnsupportedFilter` instead of filtering silently wrong.

Toy models on in-memory SQLite, checked against data (the filter's rows vs. Python's answer
or Oso's `is_allowed`); the last tests compile the real policy's filters."""

from __future__ import annotations

import itertools
import operator
import uuid
from dataclasses import dataclass

import pytest
from flask import g
from oso import Oso, Relation
from polar.data.filter import Condition, DataFilter, Projection
from polar.data.filter import Relation as FRelation
from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from app.authz.actors import UserActor
from app.authz.adapter import SqlFilterAdapter, UnsupportedFilter
from app.db import UnitOfWork, owner_sessionmaker
from app.models import Organization, Site, SiteMembership, User

pytestmark = pytest.mark.portable


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None]


class Folder(Base):
    __tablename__ = "folders"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    team: Mapped[Team] = relationship()


class Doc(Base):
    __tablename__ = "docs"
    id: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str | None]
    other: Mapped[str | None]
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"))
    team: Mapped[Team] = relationship()
    folder: Mapped[Folder] = relationship()


@dataclass
class Person:
    tags: list
    blob: object = None


TAGS = (None, "x", "y")


@pytest.fixture(scope="module")
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([Team(id=1, name="t"), Team(id=2, name=None), Team(id=3, name="u")])
        s.add_all([Folder(id=10, team_id=1), Folder(id=11, team_id=2)])
        combos = itertools.product(TAGS, TAGS, (1, 2, 3), (10, 11))
        s.add_all(Doc(id=i, tag=t, other=o, team_id=tm, folder_id=f)
                  for i, (t, o, tm, f) in enumerate(combos))
        s.commit()
        yield s


def make_oso(session: Session, policy: str) -> Oso:
    oso = Oso()
    oso.register_class(Person)
    oso.register_class(Team, fields={"id": int, "name": str,
                                     "docs": Relation("many", "Doc", "id", "team_id")})
    oso.register_class(Folder, fields={"id": int, "team": Relation("one", "Team", "team_id", "id")})
    oso.register_class(Doc, fields={
        "id": int, "tag": str, "other": str,
        "team": Relation("one", "Team", "team_id", "id"),
        "folder": Relation("one", "Folder", "folder_id", "id"),
    })
    oso.load_str(policy)
    oso.set_data_filtering_adapter(SqlFilterAdapter(lambda: session))
    return oso


def filtered(session: Session, where) -> set[int]:
    return set(session.scalars(select(Doc.id).where(where)))


def docs(session: Session) -> list[Doc]:
    return list(session.scalars(select(Doc)))


def compile_root(session: Session, cmp: str, value, relations=(), field="tag") -> object:
    """A hand-built filter `Doc.<field> <cmp> value`: oso itself expands literal `in` lists."""
    types = make_oso(session, 'allow(_: Person, "none", _: Doc);').host.types
    f = DataFilter(Doc, list(relations), [[Condition(Projection(Doc, field), cmp, value)]], types)
    return SqlFilterAdapter(lambda: session).build_query(f).where


PY = {"Eq": operator.eq, "Neq": operator.ne,
      "In": lambda a, b: a in b, "Nin": lambda a, b: a not in b}


@pytest.mark.parametrize(("cmp", "value"), [
    pytest.param(op, v, id=f"{op} {v!r}")
    for op, values in [("Eq", TAGS), ("Neq", TAGS),
                       *((op, ([], ["x"], ["x", "y"], [None], [None, "x"], ("y",)))
                         for op in ("In", "Nin"))]
    for v in values
])
def test_comparison_keeps_python_semantics(session, cmp, value):
    expected = {d.id for d in docs(session) if PY[cmp](d.tag, value)}
    assert filtered(session, compile_root(session, cmp, value)) == expected


@pytest.mark.parametrize("cmp", ["In", "Nin"])
@pytest.mark.parametrize("value", [[1], [None, 1]], ids=repr)
def test_list_with_none_on_a_non_nullable_column(session, cmp, value):
    expected = {d.id for d in docs(session) if PY[cmp](d.team_id, value)}
    assert filtered(session, compile_root(session, cmp, value, field="team_id")) == expected


# Policies oso compiles itself; the rows must be exactly those is_allowed accepts.
POLICIES = {
    "literal in list": 'allow(_: Person, "read", d: Doc) if d.tag in ["x", "y"];',
    "actor's list with nil": 'allow(p: Person, "read", d: Doc) if d.tag in p.tags;',
    "neq literal": 'allow(_: Person, "read", d: Doc) if d.tag != "x";',
    "eq nil": 'allow(_: Person, "read", d: Doc) if d.tag = nil;',
    "field eq field": 'allow(_: Person, "read", d: Doc) if d.tag = d.other;',
    "field neq field": 'allow(_: Person, "read", d: Doc) if d.tag != d.other;',
    "related field": 'allow(_: Person, "read", d: Doc) if d.team.name = "t";',
    "related neq nil": 'allow(_: Person, "read", d: Doc) if d.team.name != nil;',
    "hoisted key": 'allow(_: Person, "read", d: Doc) if d.team.id = 1 or d.folder.id = 11;',
    "two hops": 'allow(_: Person, "read", d: Doc) if d.folder.team.name = "t";',
    "mixed": 'allow(_: Person, "read", d: Doc) if d.tag = "x" and d.team.name != "u";'
             'allow(_: Person, "read", d: Doc) if d.other = "y";',
}


@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
def test_policy_filter_matches_is_allowed(session, policy):
    oso = make_oso(session, policy)
    person = Person(tags=[None, "y"])
    where = oso.authorized_query(person, "read", Doc).where
    expected = {d.id for d in docs(session) if oso.is_allowed(person, "read", d)}
    assert expected and filtered(session, where) == expected


def test_eq_disjuncts_collapse_into_one_in(session):
    oso = make_oso(session, 'allow(_: Person, "read", d: Doc) if d.tag = "x";'
                            'allow(_: Person, "read", d: Doc) if d.tag = "y";'
                            'allow(_: Person, "read", d: Doc) if d.team.id = 2;')
    where = oso.authorized_query(Person(tags=[]), "read", Doc).where
    sql = str(where.compile(compile_kwargs={"literal_binds": True}))
    assert sql == "docs.tag IN ('x', 'y') OR docs.team_id IN (2)"
    assert filtered(session, where) == {
        d.id for d in docs(session) if d.tag in ("x", "y") or d.team_id == 2}


# Each of these would need a join that changes the row count, or a comparison the adapter
# cannot express: it must refuse, not compile to a filter that drops or adds rows.
UNSUPPORTED = {
    "many relation": ('allow(_: Person, "read", t: Team) if d in t.docs and d.tag = "x";',
                      "many-to-one"),
    "in against a field": ('allow(_: Person, "read", d: Doc) if d.tag in d.other;',
                           "In against a field"),
    "bytes literal": ('allow(p: Person, "read", d: Doc) if d.tag = p.blob;', "type bytes"),
}


@pytest.mark.parametrize(("policy", "reason"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_unsupported_policy_raises(session, policy, reason):
    oso = make_oso(session, policy)
    model = Team if "t: Team" in policy else Doc
    with pytest.raises(UnsupportedFilter, match=reason):
        oso.authorized_query(Person(tags=[], blob=b"x"), "read", model)


@pytest.mark.parametrize(("cmp", "value", "reason"), [
    ("Lt", "x", "comparison 'Lt'"),
    ("In", "xy", "non-list literal"),  # a string is not a list
    ("Eq", {"a": 1}, "type dict"),  # a literal SQL cannot bind faithfully
    ("In", Projection(Doc, "other"), "In against a field"),
    ("Eq", Projection(Team, "name"), "not related to the root"),
    ("Eq", Projection(Doc, "missing"), "no column 'missing'"),
])
def test_unsupported_condition_raises(session, cmp, value, reason):
    with pytest.raises(UnsupportedFilter, match=reason):
        compile_root(session, cmp, value)


def test_type_joined_twice_raises(session):
    """Doc.team and Doc.folder.team would share one alias (oso refuses this too)."""
    twice = [FRelation(Doc, "team", Team), FRelation(Doc, "folder", Folder),
             FRelation(Folder, "team", Team)]
    with pytest.raises(UnsupportedFilter, match="joined more than once"):
        compile_root(session, "Eq", Projection(Team, "name"), twice)


# The real policy: list endpoints get a flat WHERE, EXISTS only where a hop remains.

def _sql(stmt) -> str:
    return str(stmt.compile(dialect=postgresql.dialect(),
                            compile_kwargs={"literal_binds": True})).upper()


def test_real_filters_need_no_join_or_distinct(app):
    engine = app.extensions["authz"]
    with app.app_context():
        g.unit = UnitOfWork(owner_sessionmaker(app))  # owner: not about row-level security
        s = g.unit.session
        try:
            user = User(id=uuid.uuid4(), email=f"{uuid.uuid4().hex}@x.test", password_hash="-")
            mine, other = Organization(name="mine"), Organization(name="other")
            s.add_all([user, mine, other])
            s.flush()
            a1, b1, b2 = (Site(org_id=mine.id, name="a1"), Site(org_id=other.id, name="b1"),
                          Site(org_id=other.id, name="b2"))
            s.add_all([a1, b1, b2])
            s.flush()
            members = {site.id: SiteMembership(org_id=site.org_id, site_id=site.id,
                                               user_id=user.id, role="viewer")
                       for site in (a1, b1, b2)}
            s.add_all(members.values())
            s.flush()
            actor = UserActor(id=user.id, org_roles={mine.id: "viewer"},
                              site_roles={b1.id: "viewer"}, site_orgs={b1.id: other.id})

            sites = engine.authorized(select(Site.id), actor, "read", Site)
            sql = _sql(sites)
            assert "JOIN" not in sql and "DISTINCT" not in sql and "EXISTS" not in sql
            assert set(s.scalars(sites)) == {a1.id, b1.id}

            smem = engine.authorized(select(SiteMembership.id), actor, "read", SiteMembership)
            sql = _sql(smem)
            # site_memberships (site_id, org_id) -> sites (id, org_id) pins the site's
            # organization to the row's own org_id: no EXISTS needed either.
            assert "EXISTS" not in sql and "JOIN" not in sql and "DISTINCT" not in sql
            assert set(s.scalars(smem)) == {members[a1.id].id, members[b1.id].id}
        finally:
            s.rollback()

"""Engine, one session per request, and the column types every model shares."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import Flask, current_app, g
from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        # TypeDecorator does not forward it; pagination parses cursor values by it.
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Entity(Base):
    """A row with a UUID key and creation/update timestamps."""

    __abstract__ = True

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


def make_engine(url: str, pool_size: int = 5) -> Engine:
    # hide_parameters: a failed statement's values (emails, hashes) stay out of the logs.
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 15}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    # No pool_pre_ping: it costs a round trip per request. A connection that died is
    # detected by its first error, which invalidates the pool; recycling bounds their age.
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, hide_parameters=True
    )


# Session.info key -> the PostgreSQL setting that row-level security reads.
SCOPE = {"org_id": "app.org_id", "user_id": "app.user_id"}


def set_scope(
    session: Session, *, org_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
) -> None:
    """Scope `session` for PostgreSQL's row-level security: the one organization it may
    touch, and the signed-in user (who may also read its organizations' rows).

    Applied to the open transaction now and to each transaction the session begins later.
    `set_config(..., true)` lasts one transaction, so nothing leaks through the pool."""
    session.info["org_id"] = org_id
    session.info["user_id"] = user_id
    if session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        _apply_scope(session, session.connection())


# Built once: SQLAlchemy then memoizes its cache key, as it runs in every transaction.
_SET_SCOPE = text(
    "SELECT set_config('app.org_id', :org_id, true), set_config('app.user_id', :user_id, true)"
)


def _apply_scope(session: Session, connection: Connection) -> None:
    values = {key: str(session.info.get(key) or "") for key in SCOPE}
    connection.execute(_SET_SCOPE, values)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    maker = sessionmaker(engine, expire_on_commit=False)
    if engine.dialect.name == "postgresql":

        @event.listens_for(maker, "after_begin")
        def _scope(session: Session, _tx: object, connection: Connection) -> None:
            if session.info.get("org_id") or session.info.get("user_id"):
                _apply_scope(session, connection)

    return maker


def init_app(app: Flask, url: str, pool_size: int) -> None:
    engine = make_engine(url, pool_size)
    app.extensions["db.engine"] = engine
    app.extensions["db.sessionmaker"] = make_sessionmaker(engine)

    app.teardown_appcontext(end_request_session)


def end_request_session(exc: BaseException | None = None) -> None:
    """Roll back whatever the request did not commit, and return the connection."""
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def owner_sessionmaker(app: Flask) -> sessionmaker[Session]:
    """Sessions as the tables' owner, outside row-level security: for admin commands
    (seeding, purges, partitions) and tests' setup, never for requests."""
    if "db.owner_sessionmaker" not in app.extensions:
        settings = app.extensions["settings"]
        if settings.owner_database_url == settings.database_url:
            maker = app.extensions["db.sessionmaker"]
        else:
            owner = make_engine(settings.owner_database_url, 2)
            maker = sessionmaker(owner, expire_on_commit=False)
        app.extensions["db.owner_sessionmaker"] = maker
    return app.extensions["db.owner_sessionmaker"]


@contextmanager
def owner_session() -> Iterator[Session]:
    """An owner session (see owner_sessionmaker) in one transaction, committed on success."""
    with owner_sessionmaker(current_app._get_current_object())() as s, s.begin():  # type: ignore[attr-defined]
        yield s


def engine() -> Engine:
    return current_app.extensions["db.engine"]


def session() -> Session:
    """The request's session; the request commits it once, after the view succeeded."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db.sessionmaker"]()
    return g.db_session


@contextmanager
def separate_session() -> Iterator[Session]:
    """A session of its own that commits independently of the request's transaction."""
    s: Session = current_app.extensions["db.sessionmaker"]()
    try:
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise
    finally:
        s.close()

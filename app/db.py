"""Engine, the unit of work (a request's one transaction and its row-level security
scope), owner sessions for admin commands, and the column types every model shares.

The unit of work is the one owner of commits, rollbacks and the scope; the request
pipeline (app/pipeline) decides when it commits. Services only ever receive a session:
they never commit, roll back or scope it. What must not share the request's fate goes
through a named door of the unit:
- `apart()`: a session of its own, committed on its own (the denial audit, which must
  survive the rollback of the denied request; an Idempotency-Key claim, which other
  requests must see at once; a key's `last_used_at`);
- `commit_now()`: the work so far, made durable before the response is built (event
  ingestion reports what is stored, so it must be stored first);
- `enter(org_id)`: the request moves into an organization it is creating;
- `pipelined()` (PostgreSQL): a transaction of its own whose scope, statements and commit
  travel in one round trip (psycopg's pipeline mode; the protocol's implicit transaction,
  committed by the closing Sync), durable when the block ends: the hot path of event
  ingestion, which would otherwise wait on BEGIN, the scope, the INSERT and COMMIT one
  after the other.

Row-level security (PostgreSQL) reads `app.org_id` and `app.user_id`: `scope()` sets
them for the request, and every transaction any of its sessions begins gets them, with
`set_config(..., true)`, so nothing outlives the transaction or leaks through the pool; it
travels with the transaction's BEGIN, in one round trip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import EllipsisType
from typing import Any, cast

from flask import Flask, current_app, g
from sqlalchemy import (
    Connection,
    CursorResult,
    DateTime,
    Engine,
    MetaData,
    Result,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.exc import DBAPIError, OperationalError
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


CONNECT_TIMEOUT_SECONDS = 5


def conninfo(url: str) -> str:
    """A SQLAlchemy URL as libpq's connection string, for psycopg's own connections."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str, pool_size: int = 5, statement_timeout_ms: int = 0) -> Engine:
    # hide_parameters: a failed statement's values (emails, hashes) stay out of the logs.
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 15}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL's recommended level: a commit is not fsynced (a checkpoint is), so it
            # survives a crash of the process, not a power cut of the machine.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # No pool_pre_ping: it costs a round trip per request. A connection that died is
    # detected by its first error, which invalidates the pool; recycling bounds their age.
    # statement_timeout: set for each of the engine's sessions when it connects, so a
    # runaway query is cancelled by PostgreSQL (a 503) before gunicorn kills the worker.
    # connect_timeout: a database host that drops packets fails a request (503) in seconds,
    # rather than holding a worker for the system's TCP retries.
    connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if statement_timeout_ms > 0:
        connect_args["options"] = f"-c statement_timeout={statement_timeout_ms}"
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, hide_parameters=True,
        connect_args=connect_args,
    )


# Sent on the psycopg connection itself (`_set_scope`, `UnitOfWork.pipelined`).
_SET_SCOPE_PG = "SELECT set_config('app.org_id', %s, true), set_config('app.user_id', %s, true)"
_SCOPE = "scope"  # Session.info key: the (org_id, user_id) its transactions run under


def scoped_sessions(maker: sessionmaker[Session]) -> sessionmaker[Session]:
    """Make every transaction of `maker`'s sessions begin in its session's scope."""
    if maker.kw["bind"].dialect.name == "postgresql":
        event.listen(maker, "after_begin", _apply_scope)
    return maker


def scoped_org(session: Session) -> uuid.UUID | None:
    """The organization row-level security scopes `session`'s transactions to, if any."""
    org_id: uuid.UUID | None = session.info.get(_SCOPE, (None, None))[0]
    return org_id


def _apply_scope(session: Session, _tx: object, connection: Connection) -> None:
    org_id, user_id = session.info.get(_SCOPE, (None, None))
    if org_id or user_id:
        _set_scope(connection, str(org_id or ""), str(user_id or ""))


def _set_scope(connection: Connection, org_id: str, user_id: str) -> None:
    """The scope of the connection's transaction. At its start (every request's first
    statement) the scope is sent with psycopg's BEGIN as one query, one round trip rather
    than two; psycopg then sees the transaction open and sends no BEGIN of its own. A
    failure is raised as SQLAlchemy raises one (a lost connection: OperationalError, a 503,
    and the connection leaves the pool)."""
    import psycopg  # PostgreSQL's driver: only imported where it is used
    from psycopg import pq

    raw: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]  # the PostgreSQL engine's driver
    pgconn = raw.pgconn
    if (raw.autocommit or pgconn.transaction_status != pq.TransactionStatus.IDLE
            or (raw.isolation_level, raw.read_only, raw.deferrable) != (None, None, None)):
        connection.exec_driver_sql(_SET_SCOPE_PG, (org_id, user_id))
        return
    # Inlined, since one simple query carries both statements: ids only (UUIDs or '').
    query = _BEGIN_IN_SCOPE.format(org_id=_uuid_text(org_id), user_id=_uuid_text(user_id))
    with raw.lock:
        result = pgconn.exec_(query.encode())
    if result.status != pq.ExecStatus.TUPLES_OK:
        message = (result.error_message or pgconn.error_message).decode(errors="replace")
        lost = pgconn.status != pq.ConnStatus.OK
        exc = (psycopg.OperationalError if lost else psycopg.DatabaseError)(message)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(query, None, exc, psycopg.Error,
                                  connection_invalidated=lost)


_BEGIN_IN_SCOPE = ("BEGIN; SELECT set_config('app.org_id', '{org_id}', true),"
                   " set_config('app.user_id', '{user_id}', true)")


def _uuid_text(value: str) -> str:
    return str(uuid.UUID(value)) if value else ""


class UnitOfWork:
    def __init__(self, maker: sessionmaker[Session]) -> None:
        self.maker = maker
        self.org_id: uuid.UUID | None = None
        self.user_id: uuid.UUID | None = None
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The request's session (opened on first use)."""
        if self._session is None:
            self._session = self.maker()
            self._session.info[_SCOPE] = (self.org_id, self.user_id)
        return self._session

    @property
    def info(self) -> dict[str, Any]:
        """The request session's `info` (what its work left for after the commit, e.g. mail
        to send: app/mail.py); empty when no session was opened."""
        return self._session.info if self._session is not None else {}

    def scope(self, *, org_id: uuid.UUID | None, user_id: uuid.UUID | None) -> None:
        """The organization the request's rows belong to, and the signed-in person (who may
        also read the organizations it belongs to). Applies to the open transaction now."""
        self.org_id, self.user_id = org_id, user_id
        if self._session is None:
            return
        self._session.info[_SCOPE] = (org_id, user_id)
        if self._session.in_transaction() and self.maker.kw["bind"].dialect.name == "postgresql":
            _apply_scope(self._session, None, self._session.connection())

    def enter(self, org_id: uuid.UUID) -> None:
        """Move the request into an organization it is creating (POST /v1/orgs), or whose
        invitation it accepts: the new rows must be written under that scope."""
        self.scope(org_id=org_id, user_id=self.user_id)

    @contextmanager
    def apart(self, *, org_id: uuid.UUID | EllipsisType | None = ...) -> Iterator[Session]:
        """A session of its own, committed when the block ends (rolled back on error).
        It runs in the request's organization, or in `org_id` when one is given."""
        session = self.maker()
        session.info[_SCOPE] = (self.org_id if org_id is ... else org_id, None)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @property
    def pipelines(self) -> bool:
        """Whether `pipelined()` is available (PostgreSQL)."""
        return bool(self.maker.kw["bind"].dialect.name == "postgresql")

    @contextmanager
    def pipelined(self) -> Iterator[Any]:
        """A psycopg connection of the pool in pipeline mode, in a transaction of its own
        that runs in the unit's scope and commits when the block ends (rolls back on
        error): the scope and the block's statements are sent at once, one round trip in
        all. Results (a cursor's rowcount) can be read once the block has ended. Like
        `commit_now()`, its work is durable before the response is built; it sees nothing
        uncommitted of the request's session. A lost connection is dropped from the pool
        and raised as SQLAlchemy's OperationalError (a 503, as on any route).

        The transaction is the protocol's implicit one: in autocommit, psycopg sends no
        BEGIN and no COMMIT, and every statement before the pipeline's closing Sync runs
        in one transaction that the Sync commits (two statements fewer to send and read
        back: ~0.1 ms of CPU per event batch). Leaving the pipeline on an error would
        Sync, committing what was sent: the connection is dropped instead, and PostgreSQL
        rolls back the transaction it never saw end."""
        import psycopg  # PostgreSQL's driver: only imported where it is used

        raw = self.maker.kw["bind"].raw_connection()
        conn = raw.driver_connection
        dropped: BaseException | None = None
        try:
            conn.autocommit = True
            pipeline = conn.pipeline()
            pipeline.__enter__()
            try:
                if self.org_id or self.user_id:
                    conn.execute(_SET_SCOPE_PG, (str(self.org_id or ""), str(self.user_id or "")))
                yield conn
            except BaseException as exc:
                dropped = exc
                raw.invalidate(exc)
                raise
            pipeline.__exit__(None, None, None)  # the Sync: commits, reads every result
        except psycopg.OperationalError as exc:
            if dropped is None:
                dropped = exc
                raw.invalidate(exc)
            raise OperationalError("a pipelined transaction", None, exc) from exc
        finally:
            if dropped is None:
                try:
                    conn.autocommit = False  # as the pool lends it to sessions
                except psycopg.Error as exc:  # left in an unknown state: not for reuse
                    raw.invalidate(exc)
            raw.close()  # back to the pool

    def commit_now(self) -> None:
        """Make the work so far durable before the response is built (see module doc)."""
        if self._session is not None:
            self._session.commit()

    def commit(self) -> None:
        """The end of a request that succeeded (the pipeline's `commit` step)."""
        if self._session is not None:
            self._session.commit()

    def rollback(self) -> None:
        """The end of a request that failed, or before writing apart on SQLite, which
        allows one writer at a time: the request's transaction must end first."""
        if self._session is not None:
            self._session.rollback()

    def close(self) -> None:
        if self._session is not None:
            self._session.rollback()
            self._session.close()
            self._session = None


def current_unit() -> UnitOfWork:
    """The unit of work of this request (or of this app context, for commands and tests);
    the pipeline closes it when the context ends."""
    if "unit" not in g:
        g.unit = UnitOfWork(current_app.extensions["db.sessionmaker"])
    return g.unit


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose transactions run in their unit of work's row-level security scope."""
    return scoped_sessions(sessionmaker(engine, expire_on_commit=False))


def init_app(app: Flask, url: str, pool_size: int, statement_timeout_ms: int = 0) -> None:
    """The runtime role's engine; `statement_timeout_ms` applies to its sessions only (the
    owner's admin commands and migrations may run longer)."""
    engine = make_engine(url, pool_size, statement_timeout_ms)
    app.extensions["db.engine"] = engine
    app.extensions["db.sessionmaker"] = make_sessionmaker(engine)


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
    with owner_sessionmaker(current_app)() as s, s.begin():
        yield s


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched. `Session.execute` is typed to return a Result; for
    these statements it is a CursorResult, which holds the count."""
    return cast("CursorResult[Any]", result).rowcount or 0


def sql_engine() -> Engine:
    """The SQLAlchemy engine of the app (the runtime role's connections)."""
    return current_app.extensions["db.engine"]


def session() -> Session:
    """The request's session: its unit of work commits it once, after the view succeeded
    (app/pipeline). Services receive it; they never commit it."""
    return current_unit().session

"""`UnitOfWork.pipelined()` (PostgreSQL): one implicit transaction per block, committed by
the pipeline's closing Sync. An error inside the block must not let that Sync commit what
was already sent, and the connection must go back to the pool as sessions expect it (not
in autocommit)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app import db
from app.db import owner_sessionmaker
from app.models import Event
from app.services import ingest
from tests.support import Tenant
from tests.support.events import event


def total(app: Any) -> int:
    with owner_sessionmaker(app)() as session:
        return session.scalar(select(func.count()).select_from(Event))


def rows(count: int) -> list[tuple[Any, ...]]:
    batch = ingest.prepare([event() for _ in range(count)], datetime.now(UTC))
    assert len(batch.rows) == count
    return batch.rows


@pytest.fixture
def unit(app: Any, tenant: Tenant, is_postgres: bool) -> Any:
    if not is_postgres:
        pytest.skip("pipeline mode is PostgreSQL's")
    with app.app_context():
        unit = db.current_unit()
        unit.scope(org_id=tenant.org.id, user_id=None)
        yield unit


def test_a_block_commits_its_statements_in_the_units_scope(app, tenant, unit):
    with unit.pipelined() as conn:
        scope = conn.execute("SELECT current_setting('app.org_id', true)")
        inserted = ingest.insert_batch(conn, tenant.org.id, tenant.site.id, rows(3),
                                       datetime.now(UTC))
    assert scope.fetchone() == (str(tenant.org.id),)
    assert inserted.rowcount == 3 and total(app) == 3


def test_an_error_inside_a_block_stores_nothing_and_the_pool_stays_sound(app, tenant, unit):
    with pytest.raises(RuntimeError), unit.pipelined() as conn:
        ingest.insert_batch(conn, tenant.org.id, tenant.site.id, rows(2), datetime.now(UTC))
        raise RuntimeError("after the INSERT was sent, before the block ended")
    assert total(app) == 0
    # Every connection the pool lends afterwards is in a transaction that rolls back.
    engine = unit.maker.kw["bind"]
    for _ in range(engine.pool.size() + 1):
        with engine.connect() as conn:
            assert conn.connection.driver_connection.autocommit is False
    session = unit.session
    session.execute(text(
        "INSERT INTO events (org_id, site_id, event_id, name, ts, received_at, distinct_id,"
        " properties) VALUES (:org, :site, :id, 'x', now(), now(), 'v', '{}')"
    ), {"org": tenant.org.id, "site": tenant.site.id, "id": uuid.uuid4()})
    session.rollback()
    assert total(app) == 0
    with unit.pipelined() as conn:
        ingest.insert_batch(conn, tenant.org.id, tenant.site.id, rows(1), datetime.now(UTC))
    assert total(app) == 1


def test_a_statement_the_database_refuses_leaves_nothing_behind(app, tenant, unit):
    other = uuid.uuid4()  # an organization outside the scope: row-level security refuses
    with pytest.raises(Exception, match=r"row-level security|violates"), \
            unit.pipelined() as conn:
        ingest.insert_batch(conn, tenant.org.id, tenant.site.id, rows(1), datetime.now(UTC))
        ingest.insert_batch(conn, other, tenant.site.id, rows(1), datetime.now(UTC))
    assert total(app) == 0
    with unit.pipelined() as conn:
        ingest.insert_batch(conn, tenant.org.id, tenant.site.id, rows(2), datetime.now(UTC))
    assert total(app) == 2

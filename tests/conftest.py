"""Test harness.

The suite runs against PostgreSQL (`DATABASE_URL`, default the local server): each run
creates a throwaway database owned by a role that is neither superuser nor BYPASSRLS,
migrates it as that owner with Alembic, and drops it at the end. With
`TEST_DATABASE_URL=sqlite` it runs against a SQLite file instead (the `portable` part).
Every test starts from empty tables.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import create_app
from app.auth import passwords
from app.auth.keys import KeyRing
from app.db import owner_sessionmaker
from app.migrate import upgrade
from app.models import Base
from app.observability import JsonFormatter
from tests.support import (
    APP_ROLE,
    CHEAP_HASHER,
    Tenant,
    World,
    as_role,
    mail,
    throwaway_database,
)
from tests.support.mail import Inbox

_CHEAP_DUMMY_HASH = CHEAP_HASHER.hash("not-a-real-password")


@pytest.fixture(autouse=True)
def password_cost(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its cheapest cost in this process (see tests.support.CHEAP_HASHER), unless
    the test is marked `production_passwords`: what a test asserts of passwords does not
    depend on the cost, except timing and the stored parameters, which those tests check."""
    if request.node.get_closest_marker("production_passwords") is None:
        monkeypatch.setattr(passwords, "_hasher", CHEAP_HASHER)
        monkeypatch.setattr(passwords, "_DUMMY_HASH", _CHEAP_DUMMY_HASH)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test database, as the tables' owner (PostgreSQL) or a SQLite file."""
    if os.environ.get("TEST_DATABASE_URL", "").startswith("sqlite"):
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        yield url
        return
    with throwaway_database("t", durable=False) as url:
        yield url


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture(scope="session")
def app_role_url(database_url: str) -> str:
    """The same database as the runtime role, which row-level security applies to."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row-level security is PostgreSQL's")
    return as_role(database_url, APP_ROLE)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server, over real HTTP on loopback, for the whole run."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on loopback for the whole run: (port, inbox)."""
    controller, inbox = mail.start()
    yield controller.port, inbox
    controller.stop()


@pytest.fixture
def inbox(smtp: tuple[int, Inbox]) -> Iterator[Inbox]:
    """The mail received during this test."""
    smtp[1].clear()
    yield smtp[1]
    smtp[1].clear()


@pytest.fixture(scope="session")
def app(
    database_url: str, s3_endpoint: str, smtp: tuple[int, Inbox],
    tmp_path_factory: pytest.TempPathFactory,
):
    """The app as it runs in production: connected as the runtime role, so PostgreSQL's
    row-level security applies to every request; the tables' owner migrates and seeds."""
    instance: Path = tmp_path_factory.mktemp("instance")
    runtime_url = database_url
    if database_url.startswith("postgresql"):
        runtime_url = as_role(database_url, APP_ROLE)
    application = create_app(
        {
            "database_url": runtime_url,
            "migration_database_url": database_url,
            "instance_path": str(instance),
            "jwt_keys": {"keys": [KeyRing.generate_key()]},
            "ratelimit_enabled": False,
            "s3_endpoint_url": s3_endpoint,
            "smtp_port": smtp[0],
            "log_level": "WARNING",
        }
    )
    application.config["TESTING"] = True
    application.extensions["storage"].ensure_bucket()
    yield application
    application.extensions["actor_cache"].close()
    application.extensions["mailer"].close()
    application.extensions["db.engine"].dispose()


_CHILDREN_FIRST = list(reversed(Base.metadata.sorted_tables))
_DELETE_ALL = "; ".join(f'DELETE FROM "{table.name}"' for table in _CHILDREN_FIRST)


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    app.extensions["actor_cache"].invalidate("*")
    # DELETE, not TRUNCATE: on tables this small it takes a millisecond, TRUNCATE ~100 ms.
    # On PostgreSQL all of them in one statement string, one round trip (~2 ms of CPU less
    # per test than a statement per table); SQLite's driver takes one statement at a time.
    with owner_sessionmaker(app)() as session, session.begin():
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(_DELETE_ALL)
        else:
            for table in _CHILDREN_FIRST:
                conn.execute(table.delete())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def world(app) -> World:
    return World(app)


@pytest.fixture
def tenant(world: World) -> Tenant:
    """An organization with one site and one person per role (see World.tenant)."""
    return world.tenant()


# The files that take longest (measured with `--durations`), in that order, ahead of the
# rest: `python -m tests` hands whole files to its two PostgreSQL workers, in collection
# order, and a long file handed out last (the fuzzer's one test takes a minute) would run
# alone while the other worker idles. Order only: a file missing here merely runs later.
LONGEST_FIRST = (
    "tests/test_fuzz.py",
    "tests/authz/test_parity.py",
    "tests/events/test_validator_parity.py",
    "tests/policies/test_policy_suites.py",
    "tests/policies/test_review_tools.py",
    "tests/app/test_authz_cli.py",
    "tests/events/test_shape_fits.py",
    "tests/deploy/test_database_faults.py",
    "tests/policies/test_decision_memo.py",
    "tests/api/test_ratelimit.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
    if os.environ.get("TEST_DATABASE_URL", "").startswith("sqlite"):
        skip = pytest.mark.skip(reason="PostgreSQL only")
        for item in items:
            if "portable" not in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """Everything logged, formatted as production formats it, at the most verbose level."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)

"""Admin commands: what production needs from them, and what it must refuse."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from sqlalchemy import select, update

from app import create_app
from app.cli import DEMO_PASSWORD
from app.config import ConfigError, Settings
from app.db import owner_sessionmaker
from app.models import IdempotencyRecord, Organization
from tests.app.test_config import PRODUCTION


def production_app(tmp_path: Path, **overrides: Any) -> Any:
    """A production app whose signing keys come from a key file that does not exist yet,
    built the way `flask --app wsgi ...` builds it: inside a command line's context."""
    settings = Settings().with_overrides({
        **PRODUCTION, "jwt_keys": None, "jwt_keys_file": str(tmp_path / "keys" / "jwt.json"),
        "instance_path": str(tmp_path / "instance"),
        "log_level": "WARNING", **overrides,
    })
    with click.Context(click.Command("flask")):
        return create_app(settings)


@pytest.mark.portable
def test_keys_add_makes_the_first_key_file_in_production(tmp_path):
    app = production_app(tmp_path)
    key_file = Path(app.extensions["settings"].jwt_keys_file)
    assert not key_file.exists()

    result = app.test_cli_runner().invoke(args=["keys", "add"])
    assert result.exit_code == 0, result.output
    kid = result.output.strip()
    data = json.loads(key_file.read_text())
    assert data["signing_kid"] == kid and [k["kid"] for k in data["keys"]] == [kid]
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert app.extensions["keys"].ring().signing.kid == kid  # the app signs with it

    second = app.test_cli_runner().invoke(args=["keys", "add"])  # the rotation's first step
    assert second.exit_code == 0, second.output
    data = json.loads(key_file.read_text())
    assert data["signing_kid"] == kid and len(data["keys"]) == 2


@pytest.mark.portable
def test_a_production_server_does_not_start_without_its_key_file(tmp_path):
    settings = Settings().with_overrides({
        **PRODUCTION, "jwt_keys": None, "jwt_keys_file": str(tmp_path / "missing.json"),
    })
    with pytest.raises(ConfigError, match="flask keys add"):
        create_app(settings)  # gunicorn builds it outside any command line


@pytest.mark.portable
def test_key_commands_other_than_add_need_the_key_file(tmp_path):
    app = production_app(tmp_path)
    for args in (["list"], ["activate", "x"], ["retire", "x"]):
        result = app.test_cli_runner().invoke(args=["keys", *args])
        assert result.exit_code == 1 and "flask keys add" in result.output, args


@pytest.mark.portable
def test_seed_demo_is_refused_in_production(tmp_path):
    """Its org_admin's password is published: in production anyone could sign in."""
    app = production_app(tmp_path)
    with app.app_context():  # `flask` pushes one for every command
        result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 1
    assert "development" in result.output and "demo org" not in result.output.lower()


@pytest.mark.portable
def test_seed_demo_creates_a_working_demo_as_the_owner(app, client):
    """On PostgreSQL it writes as the tables' owner, which row-level security applies to."""
    for _ in range(2):  # idempotent
        with app.app_context():  # `flask` pushes one for every command
            result = app.test_cli_runner().invoke(args=["seed-demo"])
        assert result.exit_code == 0, result.output
    login = client.post("/v1/auth/login",
                        json={"email": "admin@demo.test", "password": DEMO_PASSWORD})
    assert login.status_code == 200, login.get_json()
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    orgs = client.get("/v1/orgs", headers=headers).get_json()["items"]
    assert [org["name"] for org in orgs] == ["Demo Org"]
    sites = client.get(f"/v1/orgs/{orgs[0]['id']}/sites", headers=headers).get_json()["items"]
    assert [site["name"] for site in sites] == ["Demo Site"]


@pytest.mark.portable
def test_seed_demo_says_so_when_its_organization_was_renamed(app):
    """The demo users exist but their organization took another name (a PATCH away): the
    command explains instead of failing on the organization it cannot find."""
    with app.app_context():
        assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
    with owner_sessionmaker(app)() as session, session.begin():
        session.execute(update(Organization).where(Organization.name == "Demo Org")
                        .values(name="Renamed"))
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "no organization `Demo Org`" in result.output


@pytest.mark.portable
def test_idempotency_purge_reaches_every_organization_as_the_owner(app, client, tenant):
    """Records are scoped by organization under row-level security; the owner's purge
    deletes the expired ones of every organization, and only those."""
    for name in ("expired", "live"):
        headers = {**tenant["org_admin"].headers, "Idempotency-Key": name}
        created = client.post(f"{tenant.org_path}/sites", json={"name": name}, headers=headers)
        assert created.status_code == 201, created.get_json()
    with owner_sessionmaker(app)() as session, session.begin():
        records = session.scalars(select(IdempotencyRecord)).all()
        assert {r.org_id for r in records} == {tenant.org.id} and len(records) == 2
        expired = next(r for r in records if r.key == "expired")
        expired.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    result = app.test_cli_runner().invoke(args=["idempotency", "purge"])
    assert result.exit_code == 0 and "purged 1 record(s)" in result.output, result.output
    with owner_sessionmaker(app)() as session:
        assert session.scalars(select(IdempotencyRecord.key)).all() == ["live"]

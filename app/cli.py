"""flask commands: database, demo data and server, authorization matrix and explain."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app import configuration_doc, migrate
from app.authz.matrix import render_markdown
from app.config import Settings
from app.db import owner_session
from app.storage import Storage

db_cli = AppGroup("db", help="Database schema (Alembic).")
docs_cli = AppGroup("docs", help="Generated documents in docs/.")
keys_cli = AppGroup("keys", help="Access-token signing keys (rotation).")
assets_cli = AppGroup("assets", help="Uploaded files.")
events_cli = AppGroup("events", help="Analytics events.")
idempotency_cli = AppGroup("idempotency", help="Recorded Idempotency-Key responses.")
authz_cli = AppGroup("authz", help="Inspect the authorization policy.")

DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - printed demo credentials, dev only


def _settings() -> Settings:
    return current_app.extensions["settings"]


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    url = _settings().owner_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url, revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    migrate.downgrade(_settings().owner_database_url, revision)


@click.command("seed-demo")
def seed_demo() -> None:
    """Create a demo organization, site and one user per role (idempotent); print them."""
    from app.auth.passwords import hash_password
    from app.models import Organization, OrgMembership, Site, SiteMembership, User

    if _settings().is_production:
        # Its org_admin's password is printed here and in README: anyone could sign in.
        raise click.ClickException("`seed-demo` is for development: its password is public")
    with owner_session() as session:
        admin_email = "admin@demo.test"
        if session.scalar(select(User).where(User.email == admin_email)) is None:
            password_hash = hash_password(DEMO_PASSWORD)
            org = Organization(name="Demo Org")
            session.add(org)
            session.flush()
            site = Site(org_id=org.id, name="Demo Site", domain="demo.example.com")
            session.add(site)
            session.flush()
            for role in ("org_admin", "site_admin", "member", "viewer"):
                user = User(
                    email=admin_email if role == "org_admin" else f"{role}@demo.test",
                    password_hash=password_hash,
                    display_name=role.replace("_", " ").title(),
                )
                session.add(user)
                session.flush()
                if role == "org_admin":
                    session.add(OrgMembership(org_id=org.id, user_id=user.id, role=role))
                else:
                    session.add(SiteMembership(
                        org_id=org.id, site_id=site.id, user_id=user.id, role=role
                    ))
        demo_org = session.scalar(select(Organization).where(Organization.name == "Demo Org"))
        demo_site = session.scalar(select(Site).where(Site.name == "Demo Site"))
    if demo_org is None or demo_site is None:  # renamed or removed since it was seeded
        raise click.ClickException(
            "the demo users exist, but no organization `Demo Org` or site `Demo Site` does"
        )
    click.echo(f"demo organization {demo_org.id}, site {demo_site.id}")
    click.echo(f"users (password {DEMO_PASSWORD!r}): admin@demo.test (org_admin), "
               "site_admin@demo.test, member@demo.test, viewer@demo.test (site roles)")


@click.command("demo")
@click.option("--bind", default=lambda: os.environ.get("BIND", "127.0.0.1:8000"),
              help="Where the API listens (BIND).")
@click.pass_context
def demo(ctx: click.Context, bind: str) -> None:
    """Migrate, seed the demo data, start a local S3 server, and serve the API under
    gunicorn (development only). SIGTERM or Ctrl-C stops gunicorn and the S3 server."""
    settings = _settings()
    if settings.is_production:
        raise click.ClickException("`demo` is for development; run gunicorn directly")
    host, _, port = bind.rpartition(":")
    if not port.isdigit() or _listening(host or "127.0.0.1", int(port)):
        raise click.ClickException(
            f"{bind} is taken (or not HOST:PORT): set BIND, e.g. BIND=127.0.0.1:8001")
    ctx.invoke(db_upgrade)
    ctx.invoke(seed_demo)
    endpoint, s3 = _local_s3(settings)
    try:
        Storage(settings.with_overrides({"s3_endpoint_url": endpoint})).ensure_bucket()
        click.echo(f"serving on http://{bind} (OpenAPI at /openapi.json, UI at /docs)")
        root = Path(__file__).resolve().parent.parent
        code = _serve(
            [sys.executable, "-m", "gunicorn", "-c", str(root / "gunicorn.conf.py"),
             "--bind", bind, "wsgi:app"],
            root, {**os.environ, "S3_ENDPOINT_URL": endpoint},
        )
    finally:
        if s3 is not None:
            _stop(s3)
    sys.exit(code)


def _serve(command: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run gunicorn until it ends; SIGTERM, SIGINT and SIGHUP sent to this process are
    passed on to it (it stops gracefully), so the caller's cleanup runs too."""
    server = subprocess.Popen(command, cwd=cwd, env=env)  # noqa: S603 - our own interpreter

    def forward(signum: int, _frame: object) -> None:
        server.send_signal(signum)

    previous = {sig: signal.signal(sig, forward)
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        return server.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _local_s3(settings: Settings) -> tuple[str, subprocess.Popen[bytes] | None]:
    """The S3 endpoint the demo uses, and the moto server started for it (None when one
    was given). S3_ENDPOINT_URL set: that endpoint (moto started on it when it is a free
    loopback port). Otherwise moto on DEMO_S3_PORT (9000), or on a free port, said so,
    when something else holds that one: the demo never talks to a stranger's server."""
    if "S3_ENDPOINT_URL" in os.environ:
        url = urlparse(settings.s3_endpoint_url)
        loopback = url.hostname in ("127.0.0.1", "localhost") and url.port is not None
        if not loopback or _listening(str(url.hostname), int(url.port or 0)):
            click.echo(f"S3 at {settings.s3_endpoint_url} (S3_ENDPOINT_URL)")
            return settings.s3_endpoint_url, None
        host, port = str(url.hostname), int(url.port or 0)
    else:
        host, port = "127.0.0.1", int(os.environ.get("DEMO_S3_PORT", "9000"))
        if _listening(host, port):
            taken, port = port, _free_port(host)
            click.echo(f"port {taken} is taken by another program: the local S3 server "
                       f"uses port {port} instead (DEMO_S3_PORT chooses it)")
    endpoint = f"http://{host}:{port}"
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not _listening(host, port):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise click.ClickException(f"the local S3 server did not start on {endpoint}")
        time.sleep(0.1)  # waiting for a server to start
    click.echo(f"local S3 (moto) at {endpoint}, bucket {settings.s3_bucket}")
    return endpoint, process


@assets_cli.command("purge")
@click.option("--pending-older-than", type=int, default=None,
              help="Seconds; default PURGE_PENDING_AFTER_SECONDS.")
def assets_purge(pending_older_than: int | None) -> None:
    """Delete the stored objects of deleted assets and of uploads never completed, and the
    upload objects no pending upload needs."""
    from datetime import timedelta

    from app.services.assets import purge

    age = pending_older_than if pending_older_than is not None else (
        _settings().purge_pending_after_seconds
    )
    with owner_session() as session:
        done = purge(session, current_app.extensions["storage"], timedelta(seconds=age))
    click.echo(f"purged {done.assets} asset(s), {done.uploads} leftover upload(s)")


@authz_cli.command("matrix")
@click.option("--output", type=click.Path(dir_okay=False), help="Write to a file.")
def authz_matrix(output: str | None) -> None:
    """Render the role x permission matrix of the policy as Markdown."""
    text = render_markdown(_settings().policy_dir)
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text, nl=False)


@authz_cli.command("explain")
@click.argument("email")
@click.argument("action")
@click.argument("resource", type=click.Choice(["org", "site"]))
@click.argument("resource_id", type=click.UUID)
def authz_explain(email: str, action: str, resource: str, resource_id: uuid.UUID) -> None:
    """Say whether the user EMAIL may ACTION on the org or site RESOURCE_ID, and why."""
    from app.authz import AuthzEngine
    from app.models import Organization, Site, User
    from app.services.identity import actor_for

    with owner_session() as session:
        user = session.scalar(select(User).where(User.email == email.lower()))
        target = session.get(Organization if resource == "org" else Site, resource_id)
        if user is None or target is None:
            raise click.ClickException("no such user or resource")
        actor = actor_for(session, user)
        engine = AuthzEngine(_settings().policy_dir, session=lambda: session)
        click.echo(f"org roles: {dict(actor.org_roles)}\nsite roles: {dict(actor.site_roles)}")
        click.echo(f"allowed: {engine.is_allowed(actor, action, target)}")


DOCS = Path(__file__).resolve().parent.parent / "docs"


def generated_docs() -> dict[Path, str]:
    """docs/ file -> the content the code and policy generate for it now."""
    return {
        DOCS / "openapi.yaml": current_app.extensions["api"].spec.to_yaml(),
        DOCS / "permissions.md": render_markdown(_settings().policy_dir),
        DOCS / "configuration.md": configuration_doc.render(),
    }


@docs_cli.command("write")
def docs_write() -> None:
    """Regenerate docs/openapi.yaml, docs/permissions.md and docs/configuration.md."""
    for path, text in generated_docs().items():
        path.write_text(text)
        click.echo(f"wrote {path.name}")


@docs_cli.command("check")
def docs_check() -> None:
    """Fail when a generated document is stale."""
    stale = [
        path.name
        for path, text in generated_docs().items()
        if not path.exists() or path.read_text() != text
    ]
    if stale:
        raise click.ClickException(f"stale: {', '.join(stale)}; run `flask docs write`")
    click.echo("docs are up to date")


def _key_file() -> Path:
    from app.auth.keys import key_file

    settings = _settings()
    if settings.jwt_keys:
        raise click.ClickException("keys come from JWT_KEYS; edit that variable instead")
    return key_file(settings)


def _read_keys(path: Path) -> dict[str, Any]:
    from app.auth.keys import read_key_file

    if not path.exists():
        raise click.ClickException(f"no key file {path} yet: `flask keys add` creates it")
    return read_key_file(path)


@keys_cli.command("list")
def keys_list() -> None:
    """Show the keys; the signing one is marked."""
    data = _read_keys(_key_file())
    for key in data["keys"]:
        mark = "signing" if key["kid"] == data["signing_kid"] else "verify-only"
        click.echo(f"{key['kid']}  {key.get('crv', key['kty'])}  {mark}")


@keys_cli.command("add")
@click.option("--activate", is_flag=True, help="Sign with it at once (skip the publish step).")
def keys_add(activate: bool) -> None:
    """Publish a new Ed25519 key; it signs only once activated. Without a key file yet,
    create it (owner-only) with this key as the signing one."""
    from app.auth.keys import KeyRing, read_key_file, write_key_file

    path = _key_file()
    key = KeyRing.generate_key()
    if path.exists():
        data = read_key_file(path)
        data["keys"].append(key)
    else:
        data = {"signing_kid": key["kid"], "keys": [key]}
    if activate:
        data["signing_kid"] = key["kid"]
    write_key_file(path, data)
    click.echo(key["kid"])


@keys_cli.command("activate")
@click.argument("kid")
def keys_activate(kid: str) -> None:
    """Sign new tokens with KID."""
    from app.auth.keys import write_key_file

    path = _key_file()
    data = _read_keys(path)
    if kid not in {k["kid"] for k in data["keys"]}:
        raise click.ClickException(f"no key {kid}")
    data["signing_kid"] = kid
    write_key_file(path, data)


@keys_cli.command("retire")
@click.argument("kid")
def keys_retire(kid: str) -> None:
    """Remove KID: tokens it signed stop verifying. The signing key cannot be retired."""
    from app.auth.keys import write_key_file

    path = _key_file()
    data = _read_keys(path)
    if kid == data["signing_kid"]:
        raise click.ClickException("activate another key before retiring the signing key")
    remaining = [k for k in data["keys"] if k["kid"] != kid]
    if len(remaining) == len(data["keys"]):
        raise click.ClickException(f"no key {kid}")
    data["keys"] = remaining
    write_key_file(path, data)


@events_cli.command("partitions")
@click.option("--months-ahead", type=int, default=3, show_default=True)
def events_partitions(months_ahead: int) -> None:
    """Create the monthly partitions of the events table ahead of time (PostgreSQL)."""
    from datetime import UTC, datetime

    from app.services.partitions import create_month_partitions

    with owner_session() as session:
        if session.get_bind().dialect.name != "postgresql":
            raise click.ClickException("partitions exist on PostgreSQL only")
        created = create_month_partitions(
            session.connection(), datetime.now(UTC), months_ahead=months_ahead
        )
    click.echo(f"created {', '.join(created) or 'nothing: all present'}")


@events_cli.command("retention")
@click.option("--months", type=int, default=None,
              help="Months kept before the current one; default EVENTS_RETENTION_MONTHS.")
def events_retention(months: int | None) -> None:
    """Detach and drop the monthly partitions of events older than the retention (cron,
    PostgreSQL); rows that old in the DEFAULT partition are deleted too."""
    from datetime import UTC, datetime

    from app.services.partitions import drop_before, retention_cutoff

    kept = months if months is not None else _settings().events_retention_months
    if kept <= 0:
        click.echo("retention is off (EVENTS_RETENTION_MONTHS=0): nothing dropped")
        return
    with owner_session() as session:
        if session.get_bind().dialect.name != "postgresql":
            raise click.ClickException("partitions exist on PostgreSQL only")
        cutoff = retention_cutoff(datetime.now(UTC), kept)
        dropped, deleted = drop_before(session.connection(), cutoff)
    click.echo(f"events before {cutoff:%Y-%m-%d}: dropped {', '.join(dropped) or 'no partition'}"
               f", {deleted} row(s) deleted from events_default")


@idempotency_cli.command("purge")
def idempotency_purge() -> None:
    """Delete expired Idempotency-Key records."""
    from app.idempotency import purge_expired

    with owner_session() as session:
        click.echo(f"purged {purge_expired(session)} record(s)")


def init_app(app: Flask) -> None:
    commands = (
        db_cli, docs_cli, keys_cli, assets_cli, events_cli, idempotency_cli, authz_cli,
        seed_demo, demo,
    )
    for command in commands:
        app.cli.add_command(command)

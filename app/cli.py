"""flask commands: database, demo data and server, authorization matrix and explain."""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app import migrate
from app.authz.matrix import render_markdown
from app.config import Settings
from app.db import owner_session

db_cli = AppGroup("db", help="Database schema (Alembic).")
docs_cli = AppGroup("docs", help="Generated documents in docs/.")
keys_cli = AppGroup("keys", help="Access-token signing keys (rotation).")
assets_cli = AppGroup("assets", help="Uploaded files.")
events_cli = AppGroup("events", help="Analytics events.")
idempotency_cli = AppGroup("idempotency", help="Recorded Idempotency-Key responses.")
mail_cli = AppGroup("mail", help="The outbox of mail to send.")
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
@click.option("--bind", default=lambda: os.environ.get("BIND", "127.0.0.1:8000"))
@click.pass_context
def demo(ctx: click.Context, bind: str) -> None:
    """Migrate, seed the demo data, start a local S3 server, and serve the API under
    gunicorn (development only)."""
    settings = _settings()
    if settings.is_production:
        raise click.ClickException("`demo` is for development; run gunicorn directly")
    ctx.invoke(db_upgrade)
    ctx.invoke(seed_demo)
    root = Path(__file__).resolve().parent.parent
    s3 = _start_local_s3(settings.s3_endpoint_url)
    smtp = _start_local_smtp(settings, Path(settings.instance_path) / "mail")
    current_app.extensions["storage"].ensure_bucket()
    click.echo(f"serving on http://{bind} (OpenAPI at /openapi.json, UI at /docs)")
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", str(root / "gunicorn.conf.py"),
                "--bind", bind, "wsgi:app"]
    try:
        code = subprocess.call(gunicorn, cwd=root)  # noqa: S603 - our own interpreter
    finally:
        if s3 is not None:
            s3.terminate()
        if smtp is not None:
            smtp.stop()
    sys.exit(code)


def _start_local_smtp(settings: Settings, folder: Path) -> Any:
    """An SMTP server (aiosmtpd) on the loopback address the settings name, unless one
    answers: each message it receives is written to `folder` as a .eml file and announced
    on the console, links included, so the demo's mail can be read and followed."""
    if settings.smtp_host not in ("127.0.0.1", "localhost"):
        return None
    with socket.socket() as probe:
        if probe.connect_ex((settings.smtp_host, settings.smtp_port)) == 0:
            return None  # something already serves it
    from aiosmtpd.controller import Controller  # development only (the dev extras)

    folder.mkdir(parents=True, exist_ok=True)

    class ToFolder:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            path = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
            path.write_bytes(envelope.content)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            body = message.get_body(("plain",)) if isinstance(message, EmailMessage) else None
            text = body.get_content() if body is not None else ""
            links = sorted(set(re.findall(r"https?://[^\s<>\"]+", text)))
            click.echo(f"mail to {', '.join(envelope.rcpt_tos)} -> {path}")
            for link in links:
                click.echo(f"  {link}")
            return "250 OK"

    controller = Controller(ToFolder(), hostname=settings.smtp_host, port=settings.smtp_port)
    controller.start()
    click.echo(f"local SMTP at {settings.smtp_host}:{settings.smtp_port}: mail is written to "
               f"{folder} and its links printed here")
    return controller


def _start_local_s3(endpoint: str) -> subprocess.Popen[bytes] | None:
    """moto's S3 server on the loopback endpoint the settings name, unless one answers."""
    url = urlparse(endpoint)
    if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
        return None
    with socket.socket() as probe:
        if probe.connect_ex((url.hostname, url.port)) == 0:
            return None  # something already serves it
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "moto.server", "-H", url.hostname, "-p", str(url.port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex((url.hostname, url.port)) == 0:
                break
        time.sleep(0.1)
    click.echo(f"local S3 (moto) at {endpoint}, bucket {_settings().s3_bucket}")
    return process


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
    }


@docs_cli.command("write")
def docs_write() -> None:
    """Regenerate docs/openapi.yaml and docs/permissions.md."""
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


@mail_cli.command("drain")
def mail_drain() -> None:
    """Send the mail that is due now (the workers also send after each commit)."""
    from app.db import owner_sessionmaker
    from app.mail import Mailer

    mailer = Mailer(_settings(), owner_sessionmaker(current_app))
    click.echo(f"sent {mailer.drain()} message(s)")


@idempotency_cli.command("purge")
def idempotency_purge() -> None:
    """Delete expired Idempotency-Key records."""
    from app.idempotency import purge_expired

    with owner_session() as session:
        click.echo(f"purged {purge_expired(session)} record(s)")


def init_app(app: Flask) -> None:
    commands = (
        db_cli, docs_cli, keys_cli, assets_cli, events_cli, idempotency_cli, mail_cli,
        authz_cli, seed_demo, demo,
    )
    for command in commands:
        app.cli.add_command(command)

"""flask commands: database, demo data and server, the policy reviewer's tools (matrix,
explain, test, diff) and the generated documents."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
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
    smtp = _start_local_smtp(settings, Path(settings.instance_path) / "mail")
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
@click.argument("actor")
@click.argument("action")
@click.argument("resource_type")
@click.argument("resource_id")
@click.option("--sql", is_flag=True, help="Also print the WHERE clause list endpoints use.")
@click.option("--json", "as_json", is_flag=True, help="JSON, for tools.")
def authz_explain(
    actor: str, action: str, resource_type: str, resource_id: str, sql: bool, as_json: bool,
) -> None:
    """Say whether ACTOR may ACTION on RESOURCE_TYPE RESOURCE_ID, and which rules decided.

    ACTOR is `user:EMAIL` (or just EMAIL), `api-key:ID`, `ingest-key:ID` or
    `oauth-client:ID` (its client credentials: its own role, all its scopes)."""
    import json

    from app.authz.review import lookup
    from app.authz.review.explain import Reviewer
    from app.models.resource import polar_name

    with owner_session() as session:
        try:
            model = lookup.model_of(resource_type)
            who = lookup.actor(session, actor)
            target = lookup.resource(session, model, resource_id)
        except lookup.LookupFailed as exc:
            raise click.ClickException(str(exc)) from None
        reviewer = Reviewer(_settings().policy_dir, session=lambda: session)
        declared = reviewer.policy.blocks[polar_name(model)].permissions
        if action not in declared:
            raise click.ClickException(
                f"{polar_name(model)} has no permission {action!r}: one of {', '.join(declared)}"
            )
        listed = sql and action != "create"  # `create` is asked of an object to be
        explained = reviewer.explain(who, action, target, model if listed else None)
    if as_json:
        click.echo(json.dumps(explained.as_json(), indent=2))
    else:
        click.echo(explained.text(), nl=False)


@authz_cli.command("test")
@click.option("--coverage", is_flag=True, help="List every rule with the cases that hit it; "
              "fail when one is hit by none.")
@click.option("--all-cases", is_flag=True, help="With --coverage: every case, not the first 3.")
@click.option("--suites", type=click.Path(file_okay=False, exists=True),
              help="Suite directory (default: the policy's tests/).")
def authz_test(coverage: bool, all_cases: bool, suites: str | None) -> None:
    """Run the policy test suites (policies/tests/*.toml)."""
    from app.authz.review.suites import SuiteError, run

    try:
        report = run(_settings().policy_dir, suites)
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from None
    if report.failures:
        click.echo(report.failures_table())
    if coverage:
        click.echo(report.coverage_text(None if all_cases else 3))
    click.echo(report.summary(coverage), nl=False)
    if not report.ok or (coverage and report.unexercised()):
        sys.exit(1)


@authz_cli.command("diff")
@click.argument("revision")
def authz_diff(revision: str) -> None:
    """What the policy of the working tree grants and revokes compared with REVISION."""
    from app.authz.review.diff import diff, render

    try:
        changes = diff(revision, _settings().policy_dir)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(render(revision, changes), nl=False)


DOCS = Path(__file__).resolve().parent.parent / "docs"


def generated_docs() -> dict[Path, str]:
    """docs/ file -> the content the code and policy generate for it now."""
    from app.api.reference import render_markdown as render_endpoints

    return {
        DOCS / "openapi.yaml": current_app.extensions["api"].spec.to_yaml(),
        DOCS / "permissions.md": render_markdown(_settings().policy_dir),
        DOCS / "endpoints.md": render_endpoints(current_app),
        DOCS / "configuration.md": configuration_doc.render(),
    }


@docs_cli.command("write")
def docs_write() -> None:
    """Regenerate docs/openapi.yaml, permissions.md, endpoints.md and configuration.md."""
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


@docs_cli.command("schema")
@click.option("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
              show_default=True, help="A PostgreSQL administrator's URL.")
@click.option("--owner", default="tenant_api_owner", show_default=True)
@click.option("--app-role", default="tenant_api_app", show_default=True)
def docs_schema(server: str, owner: str, app_role: str) -> None:
    """Write docs/schema.sql from a throwaway database migrated as OWNER (needs pg_dump)."""
    from app import schema_doc

    with schema_doc.migrated(server, owner, app_role) as url:
        (DOCS / "schema.sql").write_text(schema_doc.dump(url))
    click.echo("wrote schema.sql")


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

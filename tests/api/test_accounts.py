"""Addresses proven by mail: verification, password reset, and the outbox that sends them.

Mail goes through a real SMTP server on loopback (tests/support/mail.py); each test reads
the message and follows its link through the API, as a person would.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.db import UnitOfWork, owner_sessionmaker, utcnow
from app.mail import Mailer, enqueue
from app.models import AccountToken, OutboxMessage, User
from tests.support import PASSWORD
from tests.support.http import assert_problem
from tests.support.mail import free_port, html_of, link_in, query_of, text_of

pytestmark = pytest.mark.portable

NEW_PASSWORD = "a brand new password"


def register(client: Any, email: str, password: str = "a sufficiently long password") -> Any:
    return client.post("/v1/auth/register", json={"email": email, "password": password})


def login(client: Any, email: str, password: str) -> Any:
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def bearer(response: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def token_in(inbox: Any, address: str, subject: str, count: int = 1) -> str:
    message = [m for m in inbox.wait_for(address, count=count) if m["Subject"] == subject][-1]
    return query_of(link_in(message), "token")


# -- verification --------------------------------------------------------------------------


def test_a_new_account_verifies_its_address_by_the_mailed_link(client, inbox):
    assert register(client, "new@example.com").status_code == 202
    (message,) = inbox.wait_for("new@example.com")
    assert message["Subject"] == "Confirm your email address"
    link = link_in(message)
    assert link.startswith("http://127.0.0.1:8000/verify?token=")
    assert link in html_of(message)  # plain text and HTML alternatives, same link
    headers = bearer(login(client, "new@example.com", "a sufficiently long password"))
    assert client.get("/v1/me", headers=headers).get_json()["email_verified"] is False

    token = query_of(link, "token")
    assert client.post("/v1/auth/verify", json={"token": token}).status_code == 204
    assert client.get("/v1/me", headers=headers).get_json()["email_verified"] is True
    # Single use.
    assert_problem(client.post("/v1/auth/verify", json={"token": token}), 400,
                   errors={"token"})


def test_only_the_hash_of_a_token_is_stored(app, client, inbox):
    register(client, "hash@example.com")
    token = token_in(inbox, "hash@example.com", "Confirm your email address")
    with owner_sessionmaker(app)() as session:
        stored = session.scalars(select(AccountToken.token_hash)).all()
    assert token not in stored and len(stored) == 1
    # Sent (the sender commits just after the server took it): the body holding the token
    # is gone from the outbox.
    deadline = time.monotonic() + 5
    while True:
        with owner_sessionmaker(app)() as session:
            outbox = [(m.sent_at is not None, m.body_text, m.body_html)
                      for m in session.scalars(select(OutboxMessage))]
        if outbox == [(True, None, None)] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert outbox == [(True, None, None)]


@pytest.mark.parametrize("token", ["", "x" * 257])
def test_verify_rejects_malformed_tokens(client, token):
    assert_problem(client.post("/v1/auth/verify", json={"token": token}), 400, errors={"token"})


def test_an_expired_or_unknown_token_does_not_verify(app, client, inbox):
    register(client, "late@example.com")
    token = token_in(inbox, "late@example.com", "Confirm your email address")
    with owner_sessionmaker(app)() as session, session.begin():
        session.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert_problem(client.post("/v1/auth/verify", json={"token": token}), 400)
    assert_problem(client.post("/v1/auth/verify", json={"token": "unknown"}), 400)
    with owner_sessionmaker(app)() as session:
        user = session.scalar(select(User).where(User.email == "late@example.com"))
        assert user is not None and user.email_verified_at is None


def test_resend_mails_a_new_link_and_the_old_one_stops_working(client, world, inbox):
    person = world.user(verified=False)
    for _ in range(2):
        assert client.post("/v1/auth/verify/resend", headers=person.headers).status_code == 204
    first, second = inbox.wait_for(person.email, count=2)
    old, new = (query_of(link_in(m), "token") for m in (first, second))
    assert_problem(client.post("/v1/auth/verify", json={"token": old}), 400)
    assert client.post("/v1/auth/verify", json={"token": new}).status_code == 204
    # Verified: resending sends nothing more.
    assert client.post("/v1/auth/verify/resend", headers=person.headers).status_code == 204
    time.sleep(0.3)
    assert len(inbox.to(person.email)) == 2


# -- password reset ------------------------------------------------------------------------


def test_reset_sets_the_password_and_ends_every_session(client, world, inbox):
    person = world.user()
    assert client.get("/v1/me", headers=person.headers).status_code == 200
    r = client.post("/v1/auth/password/reset", json={"email": person.email.upper()})
    assert r.status_code == 202
    token = token_in(inbox, person.email, "Reset your password")
    done = client.post("/v1/auth/password/reset/complete",
                       json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204
    assert_problem(client.get("/v1/me", headers=person.headers), 401)
    assert login(client, person.email, PASSWORD).status_code == 401
    assert login(client, person.email, NEW_PASSWORD).status_code == 200
    again = client.post("/v1/auth/password/reset/complete",
                        json={"token": token, "new_password": "yet another password"})
    assert_problem(again, 400, errors={"token"})


def test_reset_of_an_unknown_address_answers_the_same_and_mails_nobody(client, world, inbox):
    person = world.user()
    known = client.post("/v1/auth/password/reset", json={"email": person.email})
    unknown = client.post("/v1/auth/password/reset", json={"email": "nobody@example.com"})
    assert (known.status_code, known.get_data()) == (unknown.status_code, unknown.get_data())
    assert sorted(known.headers.keys()) == sorted(unknown.headers.keys())
    inbox.wait_for(person.email)
    time.sleep(0.3)
    assert inbox.to("nobody@example.com") == []


def test_an_expired_reset_token_is_refused(app, client, world, inbox):
    person = world.user()
    client.post("/v1/auth/password/reset", json={"email": person.email})
    token = token_in(inbox, person.email, "Reset your password")
    with owner_sessionmaker(app)() as session, session.begin():
        session.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = client.post("/v1/auth/password/reset/complete",
                    json={"token": token, "new_password": NEW_PASSWORD})
    assert_problem(r, 400)
    assert login(client, person.email, PASSWORD).status_code == 200


def test_a_verification_token_does_not_reset_a_password(client, inbox):
    register(client, "mixed@example.com")
    token = token_in(inbox, "mixed@example.com", "Confirm your email address")
    r = client.post("/v1/auth/password/reset/complete",
                    json={"token": token, "new_password": NEW_PASSWORD})
    assert_problem(r, 400)


# -- no enumeration by timing --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.production_passwords
def test_register_takes_the_same_time_for_new_and_taken_addresses(client, world):
    taken = world.user()
    n = iter(range(1000))

    def once(email: str) -> float:
        start = time.perf_counter()
        assert register(client, email).status_code == 202
        return time.perf_counter() - start

    def medians(tries: int) -> tuple[float, float]:
        old, new = [], []
        for _ in range(tries):  # interleaved: a change of load affects both alike
            old.append(once(taken.email))
            new.append(once(f"fresh-{next(n)}@example.com"))
        return statistics.median(old), statistics.median(new)

    medians(2)
    for _ in range(2):
        k, u = medians(11)
        if max(k, u) / min(k, u) <= 1.2:
            break
    assert max(k, u) / min(k, u) <= 1.2, f"taken {k * 1000:.1f} ms vs new {u * 1000:.1f} ms"


# -- the outbox ------------------------------------------------------------------------------


def test_mail_of_a_rolled_back_transaction_is_never_sent(app, inbox):
    with app.app_context():
        unit = UnitOfWork(app.extensions["db.sessionmaker"])
        enqueue(unit.session, "rolled@example.com", "reset", link="http://x/", expires="soon")
        unit.rollback()
        unit.close()
    assert app.extensions["mailer"].drain() == 0
    time.sleep(0.2)
    assert inbox.to("rolled@example.com") == []


def test_a_failed_send_is_retried_later_and_visible_meanwhile(app, inbox):
    settings = app.extensions["settings"]
    maker = app.extensions["db.sessionmaker"]
    down = Mailer(settings.with_overrides({"smtp_port": free_port()}), maker)
    with maker() as session, session.begin():
        enqueue(session, "retry@example.com", "reset", link="http://x/?token=s3cret",
                expires="soon")
    assert down.drain() == 0
    with owner_sessionmaker(app)() as session:
        (row,) = session.scalars(select(OutboxMessage)).all()
    assert (row.attempts, row.sent_at, row.given_up_at) == (1, None, None)
    assert row.last_error and "s3cret" not in row.last_error
    assert row.next_attempt_at > utcnow() + timedelta(seconds=settings.mail_retry_base_seconds - 5)
    assert "s3cret" in (row.body_text or "")  # kept until it is sent
    # Not due yet: nothing is tried.
    up = Mailer(settings, maker)
    assert up.drain() == 0
    with owner_sessionmaker(app)() as session, session.begin():
        session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
    assert up.drain() == 1
    assert "s3cret" in text_of(inbox.wait_for("retry@example.com")[0])
    with owner_sessionmaker(app)() as session:
        (row,) = session.scalars(select(OutboxMessage)).all()
    assert (row.attempts, row.last_error, row.body_text, row.body_html) == (2, None, None, None)


def test_a_message_is_given_up_after_the_last_attempt(app):
    settings = app.extensions["settings"].with_overrides(
        {"smtp_port": free_port(), "mail_max_attempts": 1})
    maker = app.extensions["db.sessionmaker"]
    with maker() as session, session.begin():
        enqueue(session, "never@example.com", "reset", link="http://x/", expires="soon")
    assert Mailer(settings, maker).drain() == 0
    with owner_sessionmaker(app)() as session:
        (row,) = session.scalars(select(OutboxMessage)).all()
    assert row.given_up_at is not None and row.body_text is None and row.last_error



def test_no_mailed_token_is_logged(app, client, world, inbox, log_text):
    person = world.user(verified=False)
    client.post("/v1/auth/verify/resend", headers=person.headers)
    client.post("/v1/auth/password/reset", json={"email": person.email})
    verify = token_in(inbox, person.email, "Confirm your email address", count=2)
    reset = token_in(inbox, person.email, "Reset your password", count=2)
    client.post("/v1/auth/verify", json={"token": verify})
    client.post("/v1/auth/password/reset/complete",
                json={"token": reset, "new_password": NEW_PASSWORD})
    logged = log_text.getvalue()
    assert "mail sent" in logged
    assert verify not in logged and reset not in logged

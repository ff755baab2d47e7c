"""Access token verification remembers the tokens it verified (TokenService._verified):
the signature is not checked again, but everything else that can change is: the clock,
and the key that verified it."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest

from app.auth.keys import KeyRing, KeyStore
from app.auth.tokens import InvalidToken, TokenService
from app.config import Settings


class Clock:
    def __init__(self) -> None:
        self.at = int(time.time())

    def __call__(self) -> int:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(clock: Clock) -> TokenService:
    settings = dataclasses.replace(Settings(), jwt_keys={"keys": [KeyRing.generate_key()]})
    return TokenService(settings, KeyStore(settings), now=clock)


def test_a_remembered_token_expires_on_the_clock(service, clock):
    user, sid = uuid.uuid4(), uuid.uuid4()
    token, ttl = service.issue_access_token(user, sid)
    first = service.verify_access_token(token)
    assert (first.user_id, first.session_id) == (user, sid)
    assert token in service._verified
    assert service.verify_access_token(token) == first  # remembered
    clock.at += ttl + service.settings.jwt_leeway_seconds + 1
    with pytest.raises(InvalidToken):
        service.verify_access_token(token)


def test_a_remembered_token_is_refused_while_it_is_from_the_future(service, clock):
    """`iat` is the clock's too: a remembered token is refused at a time before it was
    issued (beyond the leeway), as a token never seen is."""
    leeway = service.settings.jwt_leeway_seconds
    token, _ = service.issue_access_token(uuid.uuid4(), uuid.uuid4())
    issued = service.verify_access_token(token).expires_at - service.settings.jwt_access_ttl_seconds
    clock.at = issued
    service.verify_access_token(token)
    assert token in service._verified
    clock.at = issued - leeway - 1
    with pytest.raises(InvalidToken):
        service.verify_access_token(token)
    clock.at = issued - leeway
    service.verify_access_token(token)


def test_a_remembered_token_is_refused_once_its_key_left_the_ring(service):
    token, _ = service.issue_access_token(uuid.uuid4(), uuid.uuid4())
    service.verify_access_token(token)
    service.keys._ring = KeyRing({"keys": [KeyRing.generate_key()]})  # rotated out
    with pytest.raises(InvalidToken):
        service.verify_access_token(token)


def test_only_the_very_same_string_is_remembered(service):
    token, _ = service.issue_access_token(uuid.uuid4(), uuid.uuid4())
    service.verify_access_token(token)
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for forged in (f"{head}.{payload}.{flipped}", f"{head}.{payload}.", f"{head}.{payload}"):
        with pytest.raises(InvalidToken):
            service.verify_access_token(forged)

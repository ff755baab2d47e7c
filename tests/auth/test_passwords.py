"""The unknown-account path of password checks costs what a real check costs."""

from __future__ import annotations

import time

import pytest

from app.auth import passwords

pytestmark = pytest.mark.production_passwords


def test_the_dummy_hash_has_the_hasher_s_parameters():
    """A library upgrade that changes the recommended parameters rehashes real passwords at
    the next login; the dummy's must follow, or unknown emails would answer at another cost."""
    assert not passwords.needs_rehash(passwords._DUMMY_HASH)
    assert passwords._DUMMY_HASH.startswith("$argon2id$")


def test_an_unknown_account_costs_one_verification_and_is_refused():
    known = passwords.hash_password("a password of the right length")

    def seconds(password_hash: str | None) -> float:
        began = time.process_time()
        assert not passwords.verify_password(password_hash, "another password entirely")
        return time.process_time() - began

    seconds(None)  # warm-up
    unknown, real = min(seconds(None) for _ in range(3)), min(seconds(known) for _ in range(3))
    assert 0.5 < unknown / real < 2, (unknown, real)

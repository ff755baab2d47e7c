"""argon2id password hashing, with a constant-cost path for unknown accounts."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the email is unknown, so both paths cost one argon2 verification.
# Its parameters, not its secret, set that cost: a fixed hash of a random password nobody
# kept, held to the hasher's parameters by tests/auth/test_passwords.py (hashing one at
# import cost every process ~0.2 s of CPU at start).
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$VZy5W1cQYwPIhL1q8+kBuQ$"
    "3HZTOXmjzudRgPh//Hu+GGWvxRgn9pGY0IngZ8/Hy+E"
)

MIN_LENGTH = 10
MAX_LENGTH = 256


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)

"""Signing keys for access tokens: a JWK set; one key signs, all of them verify.

Several keys are live at once so keys rotate without logging anyone out:
1. `flask keys add` publishes a new key (JWKS, verification) without signing with it;
2. `flask keys activate KID`, once every verifier has it, makes it the signing key;
3. `flask keys retire KID` removes the old key after its last tokens expired.
The key file is `{"signing_kid": ..., "keys": [JWK with private part, ...]}`; processes
reload it when it changes. `JWT_KEYS` (a JWK set in the environment) is fixed instead.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, OKPKey

from app.config import ConfigError, Settings

RELOAD_EVERY = 2.0  # seconds between checks of the key file


class KeyRing:
    def __init__(self, jwks: dict[str, Any]) -> None:
        keys = jwks.get("keys") or []
        if not keys:
            raise ConfigError("the JWT key set holds no key")
        if any("kid" not in k or "d" not in k for k in keys):
            raise ConfigError("every JWT key needs a `kid` and its private part")
        self.keyset = KeySet.import_key_set({"keys": keys})
        self.by_kid = {k.kid: k for k in self.keyset.keys}
        signing_kid = jwks.get("signing_kid") or keys[0]["kid"]
        if signing_kid not in self.by_kid:
            raise ConfigError(f"signing key {signing_kid!r} is not in the key set")
        self.signing = self.by_kid[signing_kid]

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.keyset.keys]}

    @staticmethod
    def generate_key() -> dict[str, Any]:
        key = OKPKey.generate_key("Ed25519", parameters={"kid": uuid.uuid4().hex, "use": "sig"})
        return key.as_dict(private=True)


class KeyStore:
    """The current KeyRing, re-read when the key file changes."""

    def __init__(self, settings: Settings, *, allow_missing: bool = False) -> None:
        """`allow_missing`: in production, tolerate a key file that does not exist yet
        (a command line, where `flask keys add` creates it); a server refuses to start."""
        self.path: Path | None = None
        self.stamp: float | None = None
        self.checked = 0.0
        self.lock = threading.Lock()
        self._ring: KeyRing | None = None
        if settings.jwt_keys:
            self._ring = KeyRing(settings.jwt_keys)
            return
        self.path = key_file(settings)
        if not self.path.exists():
            if not settings.is_production:
                create_key_file(self.path)
            elif not allow_missing:
                raise ConfigError(
                    f"JWT key file {self.path} does not exist: create it with `flask keys add`"
                )
        if self.path.exists():
            self._ring = self._load()

    def _load(self) -> KeyRing:
        assert self.path is not None
        self.stamp = self.path.stat().st_mtime_ns
        return KeyRing(json.loads(self.path.read_text()))

    def ring(self) -> KeyRing:
        if self._ring is None:  # started before the key file existed: it must exist now
            with self.lock:
                if self._ring is None:
                    self._ring = self._load()
            return self._ring
        if self.path is None or time.monotonic() - self.checked < RELOAD_EVERY:
            return self._ring
        with self.lock:
            self.checked = time.monotonic()
            try:
                if self.path.stat().st_mtime_ns != self.stamp:
                    self._ring = self._load()
            except (OSError, ValueError, ConfigError):
                pass  # keep serving with the last good key set
        return self._ring


def key_file(settings: Settings) -> Path:
    return Path(settings.jwt_keys_file or Path(settings.instance_path) / "jwt-keys.json")


def read_key_file(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    data.setdefault("signing_kid", data["keys"][0]["kid"])
    return data


def write_key_file(path: Path, data: dict[str, Any]) -> None:
    """Validate, then replace atomically with owner-only permissions."""
    KeyRing(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".jwt-keys-")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def create_key_file(path: Path) -> None:
    key = KeyRing.generate_key()
    write_key_file(path, {"signing_kid": key["kid"], "keys": [key]})

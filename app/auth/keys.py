"""Signing keys for access tokens: a JWK set, the first key signs, all of them verify.

Several keys can be live at once so a new key can start signing while tokens signed by
the old one stay valid until they expire. Production reads the set from `JWT_KEYS` or
`JWT_KEYS_FILE`; development generates one Ed25519 key into the instance folder.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, OKPKey

from app.config import ConfigError, Settings


class KeyRing:
    def __init__(self, jwks: dict[str, Any]) -> None:
        keys = jwks.get("keys") or []
        if not keys:
            raise ConfigError("the JWT key set holds no key")
        if any("kid" not in k or "d" not in k for k in keys):
            raise ConfigError("every JWT key needs a `kid` and its private part")
        self.keyset = KeySet.import_key_set(jwks)
        self.by_kid = {k.kid: k for k in self.keyset.keys}
        self.signing = self.keyset.keys[0]

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.keyset.keys]}

    @staticmethod
    def generate_key() -> dict[str, Any]:
        key = OKPKey.generate_key("Ed25519", parameters={"kid": uuid.uuid4().hex, "use": "sig"})
        return key.as_dict(private=True)


def load_keyring(settings: Settings) -> KeyRing:
    if settings.jwt_keys:
        return KeyRing(settings.jwt_keys)
    path = Path(settings.jwt_keys_file or Path(settings.instance_path) / "jwt-keys.json")
    if not path.exists():
        if settings.is_production:
            raise ConfigError(f"JWT key file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"keys": [KeyRing.generate_key()]}, fh)
    return KeyRing(json.loads(path.read_text()))

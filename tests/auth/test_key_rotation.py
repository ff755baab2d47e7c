"""Signing keys: the JWKS, and rotation with the `flask keys` commands on a key file
(add -> activate -> retire) without logging anyone out."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from tests.support import Person, World


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "jwt-keys.json"


@pytest.fixture
def file_app(database_url: str, tmp_path: Path, key_file: Path) -> Iterator[Any]:
    """An app whose signing keys come from a key file (created on first start)."""
    application = create_app(
        {
            "database_url": database_url,
            "instance_path": str(tmp_path / "instance"),
            "jwt_keys": None,
            "jwt_keys_file": str(key_file),
            "ratelimit_enabled": False,
            "log_level": "WARNING",
        }
    )
    application.config["TESTING"] = True
    yield application
    application.extensions["actor_cache"].close()
    application.extensions["db.engine"].dispose()


def keys(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["keys", *args])


def reload_now(app: Any) -> None:
    """The key store re-reads the file at most every 2 s: skip the wait."""
    app.extensions["keys"].checked = 0


def jwks(app: Any) -> dict[str, Any]:
    r = app.test_client().get("/.well-known/jwks.json")
    assert r.status_code == 200
    return r.get_json()


def kids(app: Any) -> list[str]:
    return sorted(k["kid"] for k in jwks(app)["keys"])


def new_token(app: Any, person: Person) -> str:
    return World(app).token_for(person.user)


def status(app: Any, token: str) -> int:
    return app.test_client().get("/v1/me", headers=bearer(token)).status_code


# -- JWKS --------------------------------------------------------------------------------------


def test_jwks_lists_public_keys_only(app, client):
    r = client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    body = r.get_json()
    assert set(body) == {"keys"} and body["keys"]
    for key in body["keys"]:
        assert "d" not in key, "a private key is published"
        assert not {"p", "q", "dp", "dq", "qi", "k"} & set(key)
        assert key["kid"] and key["kty"] == "OKP" and key["x"]
    configured = app.extensions["settings"].jwt_keys["keys"]
    assert {k["kid"] for k in body["keys"]} == {k["kid"] for k in configured}
    for private in (k["d"] for k in configured):
        assert private not in r.get_data(as_text=True)


def test_jwks_is_public(client):
    assert client.get("/.well-known/jwks.json").status_code == 200


def test_the_key_file_is_created_private(file_app, key_file):
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    data = json.loads(key_file.read_text())
    assert [k["kid"] for k in data["keys"]] == [data["signing_kid"]]
    assert all("d" in k for k in data["keys"])
    assert kids(file_app) == [data["signing_kid"]]
    assert "d" not in jwks(file_app)["keys"][0]


# -- rotation --------------------------------------------------------------------------------


def test_rotation_add_activate_retire(file_app, key_file):
    world = World(file_app)
    person = world.user()
    old_token = person.token
    old_kid = header_of(old_token)["kid"]
    assert status(file_app, old_token) == 200

    # 1. add: published, verifies, does not sign yet.
    result = keys(file_app, "add")
    assert result.exit_code == 0, result.output
    new_kid = result.output.strip().splitlines()[-1]
    assert new_kid and new_kid != old_kid
    stored = {k["kid"]: k for k in json.loads(key_file.read_text())["keys"]}
    assert stored[new_kid]["d"] not in result.output, "the private key is printed"
    reload_now(file_app)
    assert kids(file_app) == sorted([old_kid, new_kid])
    assert all("d" not in k for k in jwks(file_app)["keys"])
    assert header_of(new_token(file_app, person))["kid"] == old_kid
    listing = keys(file_app, "list")
    assert listing.exit_code == 0
    assert f"{old_kid}" in listing.output and "signing" in listing.output
    assert new_kid in listing.output and "verify-only" in listing.output

    # 2. activate: new tokens carry the new kid; tokens signed before still verify.
    result = keys(file_app, "activate", new_kid)
    assert result.exit_code == 0, result.output
    reload_now(file_app)
    fresh = new_token(file_app, person)
    assert header_of(fresh)["kid"] == new_kid
    assert status(file_app, fresh) == 200
    assert status(file_app, old_token) == 200, "rotation must not log anyone out"

    # 3. retire the old key: its tokens stop verifying; the new ones keep working.
    result = keys(file_app, "retire", old_kid)
    assert result.exit_code == 0, result.output
    reload_now(file_app)
    assert kids(file_app) == [new_kid]
    r = file_app.test_client().get("/v1/me", headers=bearer(old_token))
    assert r.status_code == 401 and r.mimetype == "application/problem+json"
    assert status(file_app, fresh) == 200
    assert json.loads(key_file.read_text())["signing_kid"] == new_kid


def test_logins_sign_with_the_activated_key(file_app):
    from tests.support import PASSWORD

    person = World(file_app).user()
    new_kid = keys(file_app, "add", "--activate").output.strip().splitlines()[-1]
    reload_now(file_app)
    r = file_app.test_client().post(
        "/v1/auth/login", json={"email": person.email, "password": PASSWORD}
    )
    assert r.status_code == 200
    assert header_of(r.get_json()["access_token"])["kid"] == new_kid
    refreshed = file_app.test_client().post(
        "/v1/auth/refresh", json={"refresh_token": r.get_json()["refresh_token"]}
    )
    assert header_of(refreshed.get_json()["access_token"])["kid"] == new_kid


def test_the_signing_key_cannot_be_retired(file_app, key_file):
    signing = json.loads(key_file.read_text())["signing_kid"]
    before = key_file.read_text()
    result = keys(file_app, "retire", signing)
    assert result.exit_code != 0
    assert "activate another key" in result.output
    assert key_file.read_text() == before
    # Even with another key published, the signing one stays until another is activated.
    assert keys(file_app, "add").exit_code == 0
    assert keys(file_app, "retire", signing).exit_code != 0
    assert json.loads(key_file.read_text())["signing_kid"] == signing


@pytest.mark.parametrize("command", ["activate", "retire"])
def test_unknown_kids_are_refused(file_app, key_file, command):
    before = key_file.read_text()
    result = keys(file_app, command, "no-such-kid")
    assert result.exit_code != 0 and "no key no-such-kid" in result.output
    assert key_file.read_text() == before


def test_keys_from_the_environment_cannot_be_edited(app):
    for args in (["add"], ["list"], ["retire", "x"]):
        result = keys(app, *args)
        assert result.exit_code != 0
        assert "JWT_KEYS" in result.output


def test_the_key_file_is_reread_at_most_every_two_seconds(file_app):
    store = file_app.extensions["keys"]
    store.ring()
    store.checked = time.monotonic()  # just checked
    new_kid = keys(file_app, "add").output.strip().splitlines()[-1]
    assert new_kid not in store.ring().by_kid, "re-read before the interval"
    store.checked = time.monotonic() - 2.1  # the interval has passed
    assert new_kid in store.ring().by_kid


def test_a_broken_key_file_keeps_the_last_good_keys(file_app, key_file):
    person = World(file_app).user()
    kid = header_of(person.token)["kid"]
    key_file.write_text("{not json")
    reload_now(file_app)
    assert kids(file_app) == [kid]
    assert status(file_app, person.token) == 200
    key_file.write_text(json.dumps({"keys": [{"kid": "x", "kty": "OKP"}]}))  # no private part
    reload_now(file_app)
    assert kids(file_app) == [kid]
    assert status(file_app, new_token(file_app, person)) == 200


def test_a_token_of_a_key_never_published_is_refused(app, file_app):
    """Two deployments with different keys: one's tokens mean nothing to the other."""
    person = World(app).user()
    assert status(app, person.token) == 200
    assert status(file_app, person.token) == 401

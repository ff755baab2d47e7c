"""Accounts, logins, /v1/me, the JWKS, and every way an access token must be refused.

Bad tokens are built with the app's own signing key (so the one defect under test is
the only reason to refuse them), and each case has a positive control: the same builder
with nothing wrong is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey
from sqlalchemy import select, update

from app.auth import invalidation
from app.db import owner_sessionmaker, utcnow
from app.models import AuthSession, User
from tests.support import PASSWORD

pytestmark = pytest.mark.portable

PROBLEM = "application/problem+json"


# -- helpers -----------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def payload_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def sid_of(person: Any) -> uuid.UUID:
    return uuid.UUID(payload_of(person.token)["sid"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response: Any, *secrets: str) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == 401, (response.status_code, text)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == 401
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for secret in secrets:
        if len(secret) >= 8:
            assert secret not in text, "the refused token is echoed back"


def signing_key(app: Any) -> OKPKey:
    keys = app.extensions["keys"]
    return (keys.ring() if hasattr(keys, "ring") else keys).signing


def alg(app: Any) -> str:
    return app.extensions["settings"].jwt_algorithms[0]


def good_claims(app: Any, person: Any) -> dict[str, Any]:
    """Claims of a valid access token for `person`'s existing session."""
    s = app.extensions["settings"]
    now = int(time.time())
    return {
        "iss": s.jwt_issuer,
        "aud": s.jwt_audience,
        "sub": str(person.id),
        "sid": payload_of(person.token)["sid"],
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }


def sign(
    app: Any,
    claims: dict[str, Any],
    *,
    header: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    key: OKPKey | None = None,
) -> str:
    key = key or signing_key(app)
    hdr = {"alg": alg(app), "kid": key.kid, "typ": "at+jwt", **(header or {})}
    for name in drop:
        hdr.pop(name, None)
    # Signed by hand: joserfc would refuse to even produce some of these headers.
    signing_input = f"{b64json(hdr)}.{b64json(claims)}"
    return f"{signing_input}.{b64(key.private_key.sign(signing_input.encode()))}"


def without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != name}


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def set_row(app: Any, model: type, row_id: uuid.UUID, user_id: uuid.UUID, **values: Any) -> None:
    """Change a row behind the API's back, announcing it as the app's own writes do."""
    with owner_sessionmaker(app)() as session, session.begin():
        session.execute(update(model).where(model.id == row_id).values(**values))
        invalidation.user_changed(session, user_id)


# -- register ----------------------------------------------------------------------------------


def register(client: Any, **body: Any) -> Any:
    body.setdefault("password", "a sufficiently long password")
    return client.post("/v1/auth/register", json=body)


@pytest.mark.production_passwords
def test_register_creates_an_unverified_account_with_a_lowercased_email(app, client, inbox):
    r = register(client, email="  Alice.Smith@Example.COM ", display_name="Alice")
    assert r.status_code == 202, r.json
    assert set(r.json) == {"message"}
    with owner_sessionmaker(app)() as session:
        user = session.scalar(select(User).where(User.email == "alice.smith@example.com"))
        assert user is not None and user.display_name == "Alice"
        assert user.email_verified_at is None
        # argon2id at RFC 9106's low-memory profile: 64 MiB, 3 passes, 4 lanes
        assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert "a sufficiently long password" not in user.password_hash
    (message,) = inbox.wait_for("alice.smith@example.com")
    assert message["Subject"] == "Confirm your email address"


def test_register_then_login_with_any_case_of_the_email(client):
    assert register(client, email="bob@example.com").status_code == 202
    r = client.post(
        "/v1/auth/login",
        json={"email": "BOB@Example.com", "password": "a sufficiently long password"},
    )
    assert r.status_code == 200, r.json


@pytest.mark.parametrize("second", ["carol@example.com", "CAROL@EXAMPLE.COM", " Carol@example.com"])
def test_register_a_taken_email_answers_as_a_new_one_and_warns_the_owner(app, client, inbox,
                                                                         second):
    first = register(client, email="carol@example.com")
    again = register(client, email=second, password="another long password")
    assert (again.status_code, again.get_data()) == (first.status_code, first.get_data())
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    verify, warning = inbox.wait_for("carol@example.com", count=2)
    assert verify["Subject"] == "Confirm your email address"
    assert warning["Subject"] == "Someone tried to register with your address"
    # The first account is intact: its password still works, the second one does not.
    ok = client.post("/v1/auth/login", json={"email": "carol@example.com",
                                              "password": "a sufficiently long password"})
    assert ok.status_code == 200
    refused = client.post("/v1/auth/login", json={"email": "carol@example.com",
                                                   "password": "another long password"})
    assert refused.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "d@example.com", "password": "123456789"}, "password"),  # 9 < 10
        ({"email": "d@example.com", "password": "x" * 257}, "password"),
        ({"email": "d@example.com", "password": ""}, "password"),
        ({"email": "d@example.com"}, "password"),
        ({"password": "long enough password"}, "email"),
        ({"email": "not-an-email", "password": "long enough password"}, "email"),
        (
            {"email": "d@example.com", "password": "long enough password", "is_admin": True},
            "is_admin",
        ),
        (
            {"email": "d@example.com", "password": "long enough password", "role": "org_admin"},
            "role",
        ),
        ({"email": "d@example.com", "password": 1234567890123}, "password"),
    ],
)
def test_register_rejects_invalid_input_with_400(client, body, field):
    r = client.post("/v1/auth/register", json=body)
    assert r.status_code == 400, r.json
    assert r.mimetype == PROBLEM
    assert field in r.json["errors"], r.json
    assert "long enough password" not in r.get_data(as_text=True)


@pytest.mark.parametrize("length", [10, 256])
def test_register_accepts_passwords_at_the_length_bounds(client, length):
    r = register(client, email=f"len{length}@example.com", password="p" * length)
    assert r.status_code == 202, r.json
    r = client.post(
        "/v1/auth/login", json={"email": f"len{length}@example.com", "password": "p" * length}
    )
    assert r.status_code == 200


# -- login -------------------------------------------------------------------------------------


def test_login_returns_a_working_access_token(app, client, world):
    person = world.user(email="erin@example.com")
    r = client.post("/v1/auth/login", json={"email": "erin@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.json
    body = r.json
    assert {"access_token", "token_type", "expires_in"} <= set(body)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.extensions["settings"].jwt_access_ttl_seconds
    claims = payload_of(body["access_token"])
    assert claims["sub"] == str(person.id)
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    me = client.get("/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json["id"] == str(person.id)


def _login_failure(client: Any, email: str, password: str) -> tuple[dict[str, Any], dict[str, str]]:
    r = client.post("/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 401, r.json
    assert r.mimetype == PROBLEM
    body = dict(r.json)
    assert body.pop("request_id") == r.headers["X-Request-ID"]
    headers = {k: v for k, v in r.headers.items() if k not in ("X-Request-ID", "Content-Length")}
    return body, headers


def test_unknown_email_and_wrong_password_answer_identically(app, client, world):
    world.user(email="frank@example.com")
    gone = world.user(email="gone@example.com")
    set_row(app, User, gone.id, gone.id, deleted_at=utcnow())
    wrong_password = _login_failure(client, "frank@example.com", "not the right password")
    unknown_email = _login_failure(client, "nobody@example.com", "not the right password")
    deleted_user = _login_failure(client, "gone@example.com", PASSWORD)
    assert wrong_password == unknown_email == deleted_user
    assert "frank" not in json.dumps(wrong_password[0])


def test_login_with_unknown_fields_or_missing_password_is_400(client):
    r = client.post("/v1/auth/login", json={"email": "x@example.com"})
    assert r.status_code == 400 and "password" in r.json["errors"]
    r = client.post(
        "/v1/auth/login", json={"email": "x@example.com", "password": "p" * 12, "otp": "1"}
    )
    assert r.status_code == 400 and "otp" in r.json["errors"]


@pytest.mark.slow
@pytest.mark.production_passwords
def test_login_takes_the_same_time_for_unknown_and_known_emails(client, world):
    world.user(email="timing@example.com")

    def once(email: str) -> float:
        start = time.perf_counter()
        r = client.post("/v1/auth/login", json={"email": email, "password": "wrong password!"})
        elapsed = time.perf_counter() - start
        assert r.status_code == 401
        return elapsed

    def medians(tries: int) -> tuple[float, float]:
        known: list[float] = []
        unknown: list[float] = []
        for _ in range(tries):  # interleaved, so a change of load affects both sides alike
            known.append(once("timing@example.com"))
            unknown.append(once("unknown@example.com"))
        return statistics.median(known), statistics.median(unknown)

    medians(2)  # warm-up: first requests pay for imports and connections
    # Wall-clock time on a shared machine is noisy: one more round before concluding.
    for _ in range(2):
        k, u = medians(11)
        if max(k, u) / min(k, u) <= 1.2:
            break
    assert max(k, u) / min(k, u) <= 1.2, f"known {k * 1000:.1f} ms vs unknown {u * 1000:.1f} ms"


# -- /v1/me ------------------------------------------------------------------------------------


def test_me_returns_the_user_and_its_memberships(client, world):
    tenant = world.tenant("MeCorp")
    org_id, site_id = str(tenant.org.id), str(tenant.site.id)

    r = client.get("/v1/me", headers=tenant["member"].headers)
    assert r.status_code == 200, r.json
    body = r.json
    assert body["id"] == str(tenant["member"].id)
    assert body["email"] == tenant["member"].email
    assert set(body) == {"id", "email", "display_name", "created_at", "email_verified",
                         "memberships"}
    assert body["email_verified"] is True
    assert body["memberships"] == [{"org_id": org_id, "site_id": None, "role": "member"}]

    r = client.get("/v1/me", headers=tenant["site_viewer"].headers)
    assert r.json["memberships"] == [{"org_id": org_id, "site_id": site_id, "role": "viewer"}]

    r = client.get("/v1/me", headers=tenant["outsider"].headers)
    assert r.status_code == 200 and r.json["memberships"] == []


def test_me_lists_the_grants_the_actor_was_resolved_with_in_the_stored_order(app, client, world):
    """/v1/me answers the grants of the request's actor (no query of its own): every one
    list_grants finds, organizations first then sites, each site with its organization."""
    from app.services import identity

    person = world.user()
    orgs = [world.org(f"org {n}") for n in range(3)]
    sites = [world.site(orgs[0], "a"), world.site(orgs[2], "b"), world.site(orgs[2], "c")]
    world.grant_site(person, sites[1], "viewer")
    world.grant_org(person, orgs[1], "org_admin")
    world.grant_site(person, sites[0], "site_admin")
    world.grant_org(person, orgs[0], "member")
    world.grant_site(person, sites[2], "member")
    r = client.get("/v1/me", headers=person.headers)
    assert r.status_code == 200, r.json
    with owner_sessionmaker(app)() as session:
        stored = identity.list_grants(session, person.id)
    expected = [{"org_id": str(g.org_id), "site_id": g.site_id and str(g.site_id),
                 "role": g.role} for g in stored]
    assert len(expected) == 5 and [g.site_id is None for g in stored] == [True] * 2 + [False] * 3
    assert r.json["memberships"] == expected


def test_me_never_shows_the_password_hash(client, world):
    person = world.user()
    text = client.get("/v1/me", headers=person.headers).get_data(as_text=True)
    assert "argon2" not in text and "password" not in text


# -- JWKS --------------------------------------------------------------------------------------

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


def test_jwks_serves_public_keys_only(app, client):
    r = client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    keys = r.json["keys"]
    assert keys
    for key in keys:
        assert not PRIVATE_JWK_MEMBERS & set(key), key
        assert key["kid"] and key["kty"] == "OKP" and key["crv"] == "Ed25519"
    assert signing_key(app).kid in {k["kid"] for k in keys}


def test_tokens_verify_against_the_published_jwks(app, client, world):
    person = world.user()
    keyset = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    decoded = jwt.decode(person.token, keyset, algorithms=[alg(app)])
    assert decoded.claims["sub"] == str(person.id)
    assert decoded.header["typ"] == "at+jwt"


# -- refused tokens ----------------------------------------------------------------------------


def test_crafted_token_without_defects_is_accepted(app, client, world):
    """Positive control for the builders below."""
    person = world.user()
    r = client.get("/v1/me", headers=bearer(sign(app, good_claims(app, person))))
    assert r.status_code == 200, r.json
    assert r.json["id"] == str(person.id)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer    "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token abc.def.ghi"},
    ],
    ids=["none", "empty", "scheme-only", "scheme-space", "blank-token", "basic", "token-scheme"],
)
def test_missing_or_wrong_scheme_is_401(client, headers):
    assert_401(client.get("/v1/me", headers=headers))


def test_a_valid_token_under_another_scheme_or_place_is_401(client, world):
    token = world.user().token
    assert_401(client.get("/v1/me", headers={"Authorization": token}), token)
    assert_401(client.get("/v1/me", headers={"Authorization": f"Basic {token}"}), token)
    assert_401(client.get(f"/v1/me?access_token={token}"), token)
    assert_401(client.get("/v1/me", headers={"X-Access-Token": token}), token)


def _other_key_same_kid(app: Any, person: Any) -> str:
    impostor = OKPKey.generate_key("Ed25519", parameters={"kid": signing_key(app).kid})
    return sign(app, good_claims(app, person), key=impostor)


def _expired(app: Any, person: Any) -> str:
    leeway = app.extensions["settings"].jwt_leeway_seconds
    claims = good_claims(app, person)
    claims["iat"] = claims["iat"] - 3600
    claims["exp"] = int(time.time()) - leeway - 60
    return sign(app, claims)


def _not_yet_valid(app: Any, person: Any) -> str:
    leeway = app.extensions["settings"].jwt_leeway_seconds
    return sign(app, {**good_claims(app, person), "nbf": int(time.time()) + leeway + 600})


def _alg_none(app: Any, person: Any, name: str = "none") -> str:
    header = {"alg": name, "kid": signing_key(app).kid, "typ": "at+jwt"}
    return f"{b64json(header)}.{b64json(good_claims(app, person))}."


def _public_key_secrets(app: Any) -> list[bytes]:
    public = signing_key(app).as_dict(private=False)
    raw_x = base64.urlsafe_b64decode(public["x"] + "=" * (-len(public["x"]) % 4))
    pem = signing_key(app).as_pem(private=False)
    return [pem, raw_x, public["x"].encode(), json.dumps(public).encode()]


def _hs256_with_public_key(secret_index: int) -> Callable[[Any, Any], str]:
    def build(app: Any, person: Any) -> str:
        header = {"alg": "HS256", "kid": signing_key(app).kid, "typ": "at+jwt"}
        return hs256(header, good_claims(app, person), _public_key_secrets(app)[secret_index])

    return build


def _claims(**changes: Any) -> Callable[[Any, Any], str]:
    def build(app: Any, person: Any) -> str:
        claims = good_claims(app, person)
        for name, value in changes.items():
            if value is None:
                claims.pop(name)
            else:
                claims[name] = value
        return sign(app, claims)

    return build


def _header(drop: tuple[str, ...] = (), **extra: Any) -> Callable[[Any, Any], str]:
    def build(app: Any, person: Any) -> str:
        return sign(app, good_claims(app, person), header=extra, drop=drop)

    return build


def _embedded_attacker_jwk(app: Any, person: Any) -> str:
    attacker = OKPKey.generate_key("Ed25519", parameters={"kid": signing_key(app).kid})
    header = {"jwk": attacker.as_dict(private=False)}
    return sign(app, good_claims(app, person), header=header, key=attacker)


def _embedded_own_jwk(app: Any, person: Any) -> str:
    header = {"jwk": signing_key(app).as_dict(private=False)}
    return sign(app, good_claims(app, person), header=header)


def _tampered_payload(app: Any, person: Any) -> str:
    token = sign(app, good_claims(app, person))
    head, _payload, sig = token.split(".")
    other = {**good_claims(app, person), "sub": str(uuid.uuid4())}
    return f"{head}.{b64json(other)}.{sig}"


def _stripped_signature(app: Any, person: Any) -> str:
    head, payload, _sig = sign(app, good_claims(app, person)).split(".")
    return f"{head}.{payload}."


def _nested_json_header(app: Any, person: Any) -> str:
    # Deep nesting made json.loads raise RecursionError (a 500) before the fix.
    return f"{b64(b'[' * 2500)}.{b64json(good_claims(app, person))}.sig"


def _oversized(app: Any, person: Any) -> str:
    return sign(app, {**good_claims(app, person), "pad": "x" * 5000})


BAD_TOKENS: dict[str, Callable[[Any, Any], str]] = {
    "expired": _expired,
    "not-yet-valid": _not_yet_valid,
    "other-key-same-kid": _other_key_same_kid,
    "alg-none": _alg_none,
    "alg-none-uppercase": lambda app, p: _alg_none(app, p, "None"),
    "hs256-public-pem": _hs256_with_public_key(0),
    "hs256-public-raw": _hs256_with_public_key(1),
    "hs256-public-x": _hs256_with_public_key(2),
    "hs256-public-jwk": _hs256_with_public_key(3),
    "wrong-iss": _claims(iss="https://evil.example"),
    "wrong-aud": _claims(aud="another-api"),
    "aud-list-without-ours": _claims(aud=["another-api"]),
    "missing-sid": _claims(sid=None),
    "missing-sub": _claims(sub=None),
    "missing-exp": _claims(exp=None),
    "missing-iat": _claims(iat=None),
    "missing-iss": _claims(iss=None),
    "missing-aud": _claims(aud=None),
    "sub-not-uuid": _claims(sub="admin"),
    "sid-not-uuid": _claims(sid="1 OR 1=1"),
    "unknown-sid": _claims(sid=str(uuid.uuid4())),
    "unknown-sub": _claims(sub=str(uuid.uuid4())),
    "exp-not-a-number": _claims(exp="tomorrow"),
    "unknown-kid": _header(kid="not-our-key"),
    "kid-not-a-string": _header(kid=123),
    "missing-kid": _header(drop=("kid",)),
    "extra-header-jku": _header(jku="https://evil.example/jwks.json"),
    "extra-header-x5u": _header(x5u="https://evil.example/cert.pem"),
    "extra-header-jwk-own-key": _embedded_own_jwk,
    "extra-header-jwk-attacker-key": _embedded_attacker_jwk,
    "extra-header-crit": _header(crit=["exp"]),
    "typ-jwt": _header(typ="JWT"),
    "typ-missing": _header(drop=("typ",)),
    "typ-refresh": _header(typ="rt+jwt"),
    "tampered-payload": _tampered_payload,
    "stripped-signature": _stripped_signature,
    "nested-json-header": _nested_json_header,
    "oversized": _oversized,
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_token_is_401(app, client, world, case):
    person = world.user()
    token = BAD_TOKENS[case](app, person)
    assert_401(client.get("/v1/me", headers=bearer(token)), token)


def test_token_of_a_revoked_session_is_401(app, client, world):
    person = world.user()
    assert client.get("/v1/me", headers=person.headers).status_code == 200
    set_row(app, AuthSession, sid_of(person), person.id, revoked_at=utcnow())
    assert_401(client.get("/v1/me", headers=person.headers), person.token)


def test_token_of_an_expired_session_is_401(app, client, world):
    person = world.user()
    assert client.get("/v1/me", headers=person.headers).status_code == 200
    set_row(app, AuthSession, sid_of(person), person.id, expires_at=utcnow())
    assert_401(client.get("/v1/me", headers=person.headers), person.token)


def test_token_of_a_deleted_user_is_401(app, client, world):
    person = world.user()
    assert client.get("/v1/me", headers=person.headers).status_code == 200
    set_row(app, User, person.id, person.id, deleted_at=utcnow())
    assert_401(client.get("/v1/me", headers=person.headers), person.token)


def test_logout_ends_its_access_token_at_once(client, world):
    person, other = world.user(), world.token_for(world.user().user)
    assert client.get("/v1/me", headers=person.headers).status_code == 200  # now cached
    assert client.post("/v1/auth/logout", headers=person.headers).status_code == 204
    assert_401(client.get("/v1/me", headers=person.headers), person.token)
    assert client.get("/v1/me", headers=bearer(other)).status_code == 200


def test_session_of_another_user_is_401(app, client, world):
    """`sub` and `sid` must belong together: another user's session id does not work."""
    alice, bob = world.user(), world.user()
    claims = {**good_claims(app, alice), "sid": payload_of(bob.token)["sid"]}
    assert_401(client.get("/v1/me", headers=bearer(sign(app, claims))))


def test_revoking_one_session_leaves_the_others_working(app, client, world):
    person = world.user()
    second = world.token_for(person.user)
    set_row(app, AuthSession, sid_of(person), person.id, revoked_at=utcnow())
    assert_401(client.get("/v1/me", headers=person.headers))
    assert client.get("/v1/me", headers=bearer(second)).status_code == 200


# -- garbage, property-based -------------------------------------------------------------------

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
header_like = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["Ed25519", "EdDSA", "none", "HS256", "RS256", ""]) | json_values,
        "typ": st.sampled_from(["at+jwt", "JWT"]) | json_values,
        "kid": st.just("<real>") | json_values,
        "jku": st.text(max_size=30),
        "crit": json_values,
    },
)


def _no_newlines(s: str) -> bool:
    return "\n" not in s and "\r" not in s


tokenish = st.one_of(
    st.text(max_size=200).filter(_no_newlines),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")).filter(_no_newlines),
    st.lists(st.binary(max_size=120).map(b64), min_size=1, max_size=5).map(".".join),
    st.lists(st.text(B64_ALPHABET, max_size=80), min_size=3, max_size=3).map(".".join),
    st.tuples(
        json_values.map(b64json),
        json_values.map(b64json),
        st.binary(max_size=80).map(b64),
    ).map(".".join),
    st.tuples(header_like, json_values, st.binary(min_size=0, max_size=80).map(b64)).map(
        lambda t: (t[0], b64json(t[1]), t[2])
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(token=tokenish, scheme=st.sampled_from(["Bearer ", "bearer ", "", "Bearer  "]))
@example(token=f"{b64(b'[' * 3000)}.e30.e30", scheme="Bearer ")
@example(token="a.b.c", scheme="Bearer ")
@example(token="\x00.\x00.\x00", scheme="Bearer ")
def test_garbage_tokens_are_401_never_500(app, token, scheme):
    if isinstance(token, tuple):  # a structured header: fill in the real kid when asked
        header, payload, sig = token
        if header.get("kid") == "<real>":
            header = {**header, "kid": signing_key(app).kid}
        token = f"{b64json(header)}.{payload}.{sig}"
    response = app.test_client().get("/v1/me", headers={"Authorization": scheme + token})
    assert_401(response)

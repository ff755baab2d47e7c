"""Fuzzing the contract: schemathesis over every operation of the OpenAPI document.

In-process against the WSGI app (PostgreSQL, the runtime role, row-level security), through
schemathesis' own engine, the one `schemathesis run` drives: its coverage phase (boundary and
invalid values, unexpected methods), its fuzzing phase (Hypothesis) and its stateful phase
(chains inferred from the document: create, then read, change, delete). Every check is on,
among them:

- not_a_server_error: no 5xx, ever;
- response_schema_conformance: every body matches its documented schema, and output schemas
  forbid unknown properties (`additionalProperties: false`), so a leaked field fails;
- status_code_conformance, content_type_conformance, response_headers_conformance;
- negative_data_rejection, missing_required_header, unsupported_method, allow_header_conformance;
- ignored_auth: each operation is replayed without credentials and with invalid ones;
- use_after_free, ensure_resource_availability: a deleted resource is gone, a created one is there;
- object_level_authorization: two org_admins of two tenants are peers; what one reads of its
  own, the other is asked for and must not get.

Callers are users with roles, logged in through `POST /v1/auth/login`: `alice` is the org_admin
of tenant Alpha, `bob` of tenant Beta, `carol` a member of Alpha (she ends sessions), and an
ingest key of Alpha's site sends events. Path
parameters are drawn by schemathesis (random ids, and ids seen in earlier responses); a hook
also substitutes the ids of Alpha's real rows, so item routes reach real resources.

The run is bounded (examples per operation, steps per stateful scenario) and seeded, so it is
the same run every time; `FUZZ_SEED=<n>` explores another one, `FUZZ_EXAMPLES=<n>` a larger one.
"""

from __future__ import annotations

import json
import os
import traceback
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.engine import events, from_schema
from schemathesis.transport.wsgi import WSGITransport
from schemathesis.wfc.escalation import restore_identity_assignments

from app.db import owner_sessionmaker, utcnow
from app.models import Asset
from tests.support import PASSWORD, Person, Tenant, World
from tests.support.http import assert_problem

SEED = int(os.environ.get("FUZZ_SEED", "20240611"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
STATEFUL_STEPS = 10

HOSTILE_STRINGS = [
    "a\x00b",  # PostgreSQL text cannot hold U+0000
    "\u202egnp.exe",  # right-to-left override
    "' OR '1'='1",
    "%00",
    "\r\nX-Injected: 1",
    "😀" * 3,
    "x" * 5000,
]

# The checks the contract is held to; the run fails unless each of them actually ran.
REQUIRED_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "ignored_auth",
    "use_after_free",
    "object_level_authorization",
}

# Routes that end the caller's own session (or all of them). Schemathesis logs in again when a
# request answers 401 in its unit phases, but not within a stateful scenario, where every step
# after one of these would be a 401 and test nothing.
SESSION_ENDING = ["/v1/auth/logout", "/v1/auth/logout-all", "/v1/auth/sessions/{session_id}"]


def config(auth_file: Path) -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": SEED,
        # No state carried over from an earlier run (identities, ids seen, examples that
        # failed): every run is the same run, and nothing is written to the working tree.
        "cache": {"enabled": False},
        "generation": {
            "max-examples": EXAMPLES,
            "database": "none",
            # Strings known to break storage or parsing, mixed into generated strings.
            "dictionaries": {"string": {"dictionary": "hostile", "probability": 0.2}},
        },
        "dictionaries": {"hostile": {"values": HOSTILE_STRINGS}},
        "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
        "auth": {"wfc": {"path": str(auth_file), "peers": ["alice", "bob"]}},
        "checks": {
            # Its premise, "any request the schema allows is accepted", cannot hold here:
            # opaque cursors, ETags in If-Match, ids of rows that must exist (an account's
            # email, an asset), cross-field rules (`until` after `since`) and the state of a
            # resource (completing an upload that never happened) are refused with 4xx by
            # design, and a JSON Schema cannot express them.
            "positive_data_acceptance": {"enabled": False},
            # 428 Precondition Required (RFC 6585) is the answer to a missing `If-Match`.
            "missing_required_header": {
                "expected-statuses": [400, 401, 403, 406, 415, 428],
            },
            # A value outside its schema (a string past its maximum, each character up to 12
            # bytes percent-encoded) can make the URI longer than 8,000 bytes: a 414, which
            # refuses it too (the valid maxima fit: tests/api/test_uri_limits.py).
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 414, 415, 422, 428,
                                      429, "5xx"],
            },
        },
        "operations": [
            {
                # A batch is validated event by event: invalid events are reported in
                # `rejected` of a 200 while the valid ones are stored (documented on the
                # operation), so a batch holding a schema-violating event is not refused.
                "include-path": "/v1/events/batch",
                "checks": {"negative_data_rejection": {"enabled": False}},
            },
            {
                # Adding a member invites (202): the member exists once the invitation is
                # accepted, so what the POST answered is no member to change or remove yet.
                "include-path-regex": r"/members/\{user_id\}$",
                "checks": {"ensure_resource_availability": {"enabled": False}},
            },
            {
                "include-path": SESSION_ENDING,
                "phases": {"stateful": {"enabled": False}},
            },
        ],
    })


# -- the people and the rows the run starts from ------------------------------------------------


@dataclass
class Seed:
    """Real rows of one tenant, whose ids the path-parameter hook hands out."""

    tenant: Tenant
    ids: dict[str, str] = field(default_factory=dict)
    ingest_key_id: str = ""
    ingest_secret: str = ""


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def _seed(app: Any, world: World, tenant: Tenant) -> Seed:
    client = app.test_client()
    admin = tenant["org_admin"].headers
    seed = Seed(tenant)
    asset_id = uuid.uuid4()
    with owner_sessionmaker(app)() as session, session.begin():
        session.add(Asset(
            id=asset_id, org_id=tenant.org.id, site_id=tenant.site.id,
            key=f"orgs/{tenant.org.id}/sites/{tenant.site.id}/assets/{asset_id}",
            filename="photo.png", content_type="image/png", size_bytes=1234, status="ready",
            tags=[], created_by=tenant["org_admin"].id, completed_at=utcnow(),
        ))
    gallery = _ok(client.post(f"{tenant.site_path}/galleries", json={"title": "Summer"},
                              headers=admin))
    item = _ok(client.post(f"{tenant.site_path}/galleries/{gallery['id']}/items",
                           json={"asset_id": str(asset_id)}, headers=admin))
    api_key = _ok(client.post(f"{tenant.org_path}/api-keys", json={"name": "ci", "role": "viewer"},
                              headers=admin))
    spare = _ok(client.post(f"{tenant.site_path}/ingest-keys", json={"name": "spare"},
                            headers=admin))
    ingest = _ok(client.post(f"{tenant.site_path}/ingest-keys", json={"name": "fuzz"},
                             headers=admin))
    seed.ingest_key_id, seed.ingest_secret = ingest["id"], ingest["secret"]
    stamp = utcnow().isoformat()
    _ok(client.post("/v1/events/batch", json={"events": [
        {"name": "page.view", "timestamp": stamp, "distinct_id": "v-1"},
    ]}, headers={"Authorization": f"Bearer {ingest['secret']}"}), 200)
    seed.ids = {
        "org_id": str(tenant.org.id),
        "site_id": str(tenant.site.id),
        "gallery_id": gallery["id"],
        "item_id": item["id"],
        "asset_id": str(asset_id),
        "user_id": str(tenant["member"].id),
        "site_user_id": str(tenant["site_member"].id),
        "api_key_id": api_key["id"],
        "ingest_key_id": spare["id"],  # never the key the run sends events with
    }
    return seed


@pytest.fixture
def wsgi_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Work around a schemathesis bug (4.32): the probes of `ignored_auth` and of
    `object_level_authorization` go through the WSGI transport without a `requests.Session`,
    which is the only case where it drops the socket-level settings (`max_redirects`,
    `verify`, ...) the engine passes; werkzeug's client then fails with
    `EnvironBuilder.__init__() got an unexpected keyword argument 'max_redirects'`, and the
    check errors out instead of probing."""
    send = WSGITransport.send

    def send_without_socket_settings(self: Any, case: Any, *, session: Any = None,
                                     **kwargs: Any) -> Any:
        if not isinstance(session, requests.Session):
            for name in ("max_redirects", "verify", "cert", "proxies"):
                kwargs.pop(name, None)
        return send(self, case, session=session, **kwargs)

    monkeypatch.setattr(WSGITransport, "send", send_without_socket_settings)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _login(name: str, person: Person) -> dict[str, Any]:
    return {"name": name, "loginEndpointAuth": {
        "endpoint": "/v1/auth/login", "verb": "POST", "contentType": "application/json",
        "payloadRaw": json.dumps({"email": person.email, "password": PASSWORD}),
        "token": {"extractFrom": "body", "extractSelector": "/access_token",
                  "sendIn": "header", "sendName": "Authorization",
                  "sendTemplate": "Bearer {token}"},
    }}


@pytest.fixture
def fuzzed(app: Any, world: World, tmp_path: Path, wsgi_probes: None) -> Any:
    alpha, beta = world.tenant("Alpha"), world.tenant("Beta")
    a = _seed(app, world, alpha)
    _seed(app, world, beta)  # bob's own rows: what object_level_authorization compares
    decoy_org = world.org("Decoy")
    decoy = {"org_id": str(decoy_org.id), "site_id": str(world.site(decoy_org).id)}
    world.grant_org(alpha["org_admin"], decoy_org, "org_admin")
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auth": [
        _login("alice", alpha["org_admin"]),
        _login("bob", beta["org_admin"]),
        _login("carol", alpha["member"]),
        {"name": "ingest", "fixedHeaders": [
            {"name": "Authorization", "value": f"Bearer {a.ingest_secret}"},
        ]},
    ]}))
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config(auth_file))
    # Each operation runs as the first identity of the document (alice) unless it refuses
    # her (schemathesis then moves it on to the next one). Routes that end sessions start
    # with carol, a member of Alpha, so that alice's and bob's sessions live through the
    # stateful phase; events are sent with the ingest key.
    restore_identity_assignments(schema, {
        **{f"POST {path}": "carol" for path in SESSION_ENDING[:2]},
        f"DELETE {SESSION_ENDING[2]}": "carol",
        "POST /v1/events/batch": "ingest",
    })

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        """Cases get the ids of Alpha's real rows, or keep the ones schemathesis drew. A value
        that is not a UUID is a negative case's: it is kept, or the case would turn valid."""
        if not path_parameters:
            return st.just(path_parameters)
        ids = dict(a.ids)
        path = context.operation.path if context.operation is not None else ""
        ids["key_id"] = ids["ingest_key_id"] if "/ingest-keys/" in path else ids["api_key_id"]
        if "/sites/{site_id}/members/" in path:
            ids["user_id"] = ids["site_user_id"]
        real = {
            name: ids[name] if name in ids and _is_uuid(value) else value
            for name, value in path_parameters.items()
        }
        return st.sampled_from([real, path_parameters])

    @schema.hook
    def map_case(context: Any, case: Any) -> Any:
        """Alpha's organization and site, and the ingest key the run sends events with, must
        last the whole run: deleting them (`If-Match: *` matches any ETag) is exercised on
        a decoy organization instead. Applies to the cases of every phase."""
        params = case.path_parameters
        if case.method.upper() != "DELETE" or not params:
            return case
        path = case.operation.path
        if path == "/v1/orgs/{org_id}" and params["org_id"] == a.ids["org_id"]:
            params["org_id"] = decoy["org_id"]
        elif path == "/v1/orgs/{org_id}/sites/{site_id}" and params["site_id"] == a.ids["site_id"]:
            params.update(decoy)
        elif path.endswith("/ingest-keys/{key_id}") and params["key_id"] == a.ingest_key_id:
            params["key_id"] = a.ids["ingest_key_id"]
        return case

    return schema


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    checks: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)


def _label(interaction: Any) -> str:
    return f"{interaction.request.method} {interaction.request.uri}"


def run(schema: Any) -> Outcome:
    outcome = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for nodes in recorder.checks.values():
                for node in nodes:
                    outcome.checks[node.name] += 1
                    if node.failure_info is not None:
                        failure = node.failure_info.failure
                        outcome.failures.append(
                            f"[{event.phase.value}] {recorder.label}: {node.name}: "
                            f"{failure.title}\n{failure.message}\n{node.failure_info.code_sample}"
                        )
            for case_id, interaction in recorder.interactions.items():
                response = interaction.response
                if response is None:
                    continue
                if response.status_code >= 500:
                    outcome.server_errors.append(f"{response.status_code} {_label(interaction)}")
                node = recorder.cases.get(case_id)
                # Probes with other methods (unsupported_method) are not the operation's.
                if node is not None and interaction.request.method == node.value.method.upper():
                    outcome.statuses[node.value.operation.label][response.status_code] += 1
        elif isinstance(event, events.NonFatalError):
            outcome.errors.append(
                f"{event.label}: {''.join(traceback.format_exception(event.value))}"
            )
        elif isinstance(event, events.FatalError):
            outcome.errors.append("".join(traceback.format_exception(event.exception)))
        elif isinstance(event, events.EngineFinished):
            for failure in event.failures:
                outcome.failures.append(f"{failure.title}\n{failure.message}")
    return outcome


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_holds_to_its_contract(fuzzed: Any) -> None:
    schema = fuzzed
    outcome = run(schema)

    assert not outcome.errors, "\n\n".join(outcome.errors)
    assert not outcome.failures, f"{len(outcome.failures)} failure(s):\n\n" + "\n\n".join(
        outcome.failures
    )
    assert not outcome.server_errors, outcome.server_errors  # probes included

    # The run covered the whole document, with every check it is held to.
    documented = {op.label for op in _operations(schema)}
    assert len(documented) >= 58
    assert set(outcome.statuses) == documented, documented - set(outcome.statuses)
    assert set(outcome.checks) >= REQUIRED_CHECKS, REQUIRED_CHECKS - set(outcome.checks)

    # Authenticated requests reached real resources, not only 401s and 404s.
    served = {label for label, codes in outcome.statuses.items()
              if any(200 <= code < 300 for code in codes)}
    assert len(served) >= 0.8 * len(documented), (len(served), sorted(documented - served))


# -- what fuzzing found, pinned: deterministic -----------------------------------------------------
#
# The run above finds these only when its draws happen to hit them; these tests hold the fixes
# whatever the seed. They run on SQLite too.

NUL = "a\x00b"


def _ids(app: Any, world: World, tenant: Tenant) -> dict[str, str]:
    seed = _seed(app, world, tenant)
    return {**seed.ids, "key_id": seed.ids["api_key_id"]}


def _path(template: str, ids: dict[str, str]) -> str:
    return template.format(**ids)


def test_strings_no_database_can_store_are_refused(app: Any, client: Any, world: World,
                                                    tenant: Tenant) -> None:
    """NUL in free text (PostgreSQL's text cannot hold it) was a 500 at the INSERT or in the
    WHERE clause; a JSON string with a lone surrogate escape (no encoding can store it) was a
    500 on every endpoint storing text. Now a 400 each."""
    ids = _ids(app, world, tenant)
    admin = tenant["org_admin"].headers
    site = "/v1/orgs/{org_id}/sites/{site_id}"
    gallery = site + "/galleries/{gallery_id}"
    nul_bodies = [
        ("POST", site + "/galleries", {"title": "t", "description": NUL}, "description"),
        ("POST", gallery + "/items", {"asset_id": ids["asset_id"], "caption": NUL}, "caption"),
        ("PATCH", gallery + "/items/{item_id}", {"caption": NUL}, "caption"),
    ]
    for method, template, body, name in nul_bodies:
        response = client.open(_path(template, ids), method=method, json=body, headers=admin)
        assert_problem(response, 400, errors={name})
    # PATCH of a gallery needs its ETag; the body is checked first.
    response = client.patch(_path(gallery, ids), json={"description": NUL},
                            headers={**admin, "If-Match": "*"})
    assert_problem(response, 400, errors={"description"})
    nul_queries = [
        (site + "/galleries", "q"),
        (site + "/events", "name"),
        (site + "/events", "distinct_id"),
    ]
    for template, name in nul_queries:
        response = client.get(_path(template, ids), query_string={name: NUL}, headers=admin)
        assert_problem(response, 400, errors={name})
    stats = client.get(_path(site + "/events/stats", ids), headers=admin, query_string={
        "name": NUL, "since": "2030-01-01T00:00:00Z", "until": "2030-01-02T00:00:00Z",
    })
    assert_problem(stats, 400, errors={"name"})

    surrogate = '"a\\ud83db"'  # the JSON text of a string holding half of a surrogate pair
    raw_bodies = [
        ("POST", "/v1/orgs", '{"name": %s}'),
        ("POST", "/v1/orgs/{org_id}/sites", '{"name": %s}'),
        ("POST", "/v1/orgs/{org_id}/api-keys", '{"name": %s, "role": "viewer"}'),
        ("POST", site + "/galleries", '{"title": "t", "description": %s}'),
        ("POST", site + "/uploads", '{"filename": %s, "content_type": "image/png", '
                                    '"size_bytes": 3}'),
    ]
    json_headers = {**admin, "Content-Type": "application/json"}
    for method, template, body in raw_bodies:
        response = client.open(_path(template, ids), method=method, data=body % surrogate,
                               headers=json_headers)
        assert_problem(response, 400)
        # A whole pair is one character, and fine.
        fine = client.open(_path(template, ids), method=method,
                           data=body % '"ok \\ud83d\\ude00.png"', headers=json_headers)
        assert fine.status_code == 201, fine.get_data(as_text=True)


def test_a_malformed_if_match_is_a_400_not_a_mismatch(app: Any, client: Any, world: World,
                                                      tenant: Tenant) -> None:
    """`If-Match` holding text that is no list of entity tags (tabs between tags, a line
    break) was a 412, as if it named another version; now a 400 naming the header, on every
    operation that checks it. Well-formed tags that do not match stay a 412."""
    ids = _ids(app, world, tenant)
    admin = tenant["org_admin"].headers
    gallery = _path("/v1/orgs/{org_id}/sites/{site_id}/galleries/{gallery_id}", ids)
    site = _path("/v1/orgs/{org_id}/sites/{site_id}", ids)
    for value in ('Wz]Z|p ,\tt2vX\tc*', '"a" "b"', "\u00e9"):
        for path, body in ((gallery, {"title": "t"}), (site, {"name": "n"})):
            response = client.patch(path, json=body, headers={**admin, "If-Match": value})
            assert_problem(response, 400, errors={"If-Match"})
    for value in ('"nope"', 'W/"a", "b"'):
        response = client.patch(gallery, json={"title": "t"}, headers={**admin, "If-Match": value})
        assert_problem(response, 412)


def test_unknown_query_parameters_are_refused(app: Any, client: Any, world: World,
                                              tenant: Tenant) -> None:
    """Every operation with query parameters refuses one it does not document (400 naming
    it), as bodies refuse unknown fields: a misspelt filter is not silently ignored."""
    ids = _ids(app, world, tenant)
    spec = client.get("/openapi.json").get_json()
    checked = 0
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            names = {p.get("name") for p in operation.get("parameters", [])
                     if p.get("in") == "query"}
            if not names:
                continue
            if operation.get("x-error-format") == "RFC 6749":
                # The one documented exception (tests/test_client_generation.py): RFC 6749
                # 3.1 has the authorization server ignore parameters it does not know.
                assert template == "/oauth/authorize", template
                continue
            path = _path(template, {**ids, "session_id": str(uuid.uuid4())})
            response = client.open(path, method=method.upper(), headers=tenant["org_admin"].headers,
                                   query_string={"stauts": "ready"})
            problem = assert_problem(response, 400)
            assert problem["errors"].get("stauts") == ["Unknown field."], (template, problem)
            checked += 1
    assert checked >= 13  # every list, plus the event stats


def test_error_responses_are_documented_as_problem_json(client: Any) -> None:
    """Errors are served as application/problem+json, and the document says so: every
    documented error response (the `default` one included) with a body is problem+json."""
    spec = client.get("/openapi.json").get_json()
    components = spec["components"]["responses"]
    seen = 0
    for operations in spec["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    response = components[response["$ref"].rsplit("/", 1)[-1]]
                if status.startswith(("2", "3")) or "content" not in response:
                    continue
                if (operation.get("x-error-format") == "RFC 6749"
                        and status in ("400", "401")):
                    # The one documented exception: RFC 6749's error JSON
                    # (tests/test_client_generation.py names the operations).
                    assert set(response["content"]) == {"application/json"}, status
                    continue
                assert set(response["content"]) == {"application/problem+json"}, status
                seen += 1
    assert seen >= 58  # at least the `default` of every operation

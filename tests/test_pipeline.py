"""The request pipeline (app/pipeline.py): its steps and their order are the whole story of
a request, a view without a declaration is authenticated, the unit of work is the one
owner of commits and of the row-level security scope, and a dependency that fails is a
503 problem on any route, never a 500."""

from __future__ import annotations

import ast
import inspect
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from flask import g

from app import create_app, db, needs, pipeline
from app.storage import StorageError
from tests.support.http import assert_problem

APP = Path(__file__).resolve().parents[1] / "app"


def test_the_steps_are_the_documented_ones_in_order():
    assert [step.__name__ for step in pipeline.BEFORE] == [
        "assign_request_id", "authenticate_actor", "scope_tenant", "check_media_type",
        "apply_limits", "claim_idempotency",
    ]
    assert [step.__name__ for step in pipeline.AFTER] == [
        "commit", "write_denials", "finish_response",
    ]
    numbered = re.findall(r"^ +(\d+)\. ([a-z ]+?) {2,}", pipeline.__doc__ or "", re.M)
    assert numbered == [(str(i), name) for i, name in enumerate([
        "request id", "authenticate", "tenant scope", "media type", "limits", "idempotency",
        "commit", "denial audit", "response headers"], start=1)]


def test_the_pipeline_owns_every_request_hook_of_the_app(app):
    """No module of the app registers a request hook of its own, nor does an extension
    (flask-limiter's would check limits no view declares to it, at a cost per request): the
    order of the steps is the pipeline's list, not Flask's registration order."""
    hooks = [
        *app.before_request_funcs.get(None, []),
        *app.after_request_funcs.get(None, []),
        *app.teardown_request_funcs.get(None, []),
        *app.teardown_appcontext_funcs,
    ]
    names = {f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', f)}" for f in hooks}
    assert names == {"app.pipeline.before", "app.pipeline.after", "app.pipeline.teardown"}
    for blueprint in app.blueprints.values():
        assert not blueprint.before_request_funcs and not blueprint.after_request_funcs, (
            blueprint.name
        )


@pytest.fixture
def app_with_extra_routes(app: Any, database_url: str, tmp_path: Any) -> Any:
    """An app with two views of no blueprint: one undeclared, one declared public."""
    base = app.extensions["settings"]
    extra = create_app({
        "database_url": base.database_url, "migration_database_url": base.migration_database_url,
        "instance_path": str(tmp_path), "jwt_keys": base.jwt_keys,
        "ratelimit_enabled": False, "log_level": "WARNING",
    })

    def undeclared() -> dict[str, Any]:
        return {"actor": str(g.actor.id)}

    def open_view() -> dict[str, Any]:
        return {"actor": g.actor}

    needs.declare(open_view, needs.PUBLIC)
    extra.add_url_rule("/undeclared", "undeclared", undeclared)
    extra.add_url_rule("/open", "open", open_view)
    yield extra
    extra.extensions["actor_cache"].close()
    extra.extensions["db.engine"].dispose()


def test_a_view_without_a_declaration_is_authenticated(app_with_extra_routes, world):
    client = app_with_extra_routes.test_client()
    assert_problem(client.get("/undeclared"), 401)
    person = world.user()
    token, _ = app_with_extra_routes.extensions["tokens"].issue_access_token(
        person.id, _session_of(world, person))
    answer = client.get("/undeclared", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.get_json() == {"actor": str(person.id)}
    assert client.get("/open").get_json() == {"actor": None}


def _session_of(world: Any, person: Any) -> Any:
    from tests.support.routes import session_of

    return session_of(person)


def _sources(folder: Path) -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(folder.rglob("*.py"))]


def _calls(tree: ast.Module, names: set[str]) -> list[int]:
    return [
        node.lineno for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in names
    ]


def test_services_never_commit_roll_back_or_scope():
    """The unit of work (app/db.py) is the one owner: services get a session and use it."""
    found = [f"{p.relative_to(APP)}:{line}" for p, tree in _sources(APP / "services")
             for line in _calls(tree, {"commit", "rollback", "commit_now", "scope", "enter"})]
    assert found == []


def test_the_row_level_security_scope_is_set_in_one_place():
    mentions = [p.relative_to(APP) for p in sorted(APP.rglob("*.py"))
                if "set_config(" in p.read_text()]
    assert mentions == [Path("db.py")]
    assert "_apply_scope" in inspect.getsource(db.UnitOfWork.scope)


def test_the_data_layer_raises_no_http_errors():
    tree = ast.parse((APP / "db.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "app.errors" not in imported


@pytest.fixture
def database_down(app: Any, tmp_path: Any) -> Any:
    """The app with its database at a port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = app.extensions["settings"]
    url = f"postgresql+psycopg://nobody@127.0.0.1:{port}/none"
    down = create_app({
        "database_url": url, "migration_database_url": url, "instance_path": str(tmp_path),
        "jwt_keys": base.jwt_keys, "ratelimit_enabled": False, "log_level": "CRITICAL",
    })
    yield down
    down.extensions["actor_cache"].close()
    down.extensions["db.engine"].dispose()


@pytest.mark.parametrize("path", ["/v1/me", "/v1/orgs", "/v1/auth/sessions"])
def test_a_database_that_cannot_be_reached_is_a_503_on_any_route(database_down, world, path):
    person = world.user()
    token, _ = database_down.extensions["tokens"].issue_access_token(
        person.id, _session_of(world, person))
    response = database_down.test_client().get(path, headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "5"
    login = database_down.test_client().post(
        "/v1/auth/login", json={"email": "a@example.com", "password": "x" * 12})
    assert_problem(login, 503)


def test_a_storage_error_is_a_503_problem():
    error = StorageError("head failed")
    assert (error.status, error.headers) == (503, {"Retry-After": "5"})
    assert "head failed" not in (error.detail or "")  # the reason is for logs only


def test_a_commit_that_fails_answers_its_problem_and_releases_the_key(
    app_with_extra_routes, world
):
    """The view succeeded but its work could not be committed: the client must not be
    told it succeeded, and its Idempotency-Key must not hold a record of a success."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    extra = app_with_extra_routes
    failures = []

    def write() -> tuple[dict[str, Any], int]:
        session = db.session()

        def refuse(_session: Any) -> None:
            if not failures:
                failures.append(1)
                raise OperationalError("COMMIT", {}, Exception("connection lost"))

        event.listen(session, "before_commit", refuse, once=True)
        return {"done": True}, 201

    extra.add_url_rule("/write", "write", write, methods=["POST"])
    person = world.user()
    token, _ = extra.extensions["tokens"].issue_access_token(person.id, _session_of(world, person))
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "retry-me"}
    client = extra.test_client()
    assert_problem(client.post("/write", json={}, headers=headers), 503)
    retried = client.post("/write", json={}, headers=headers)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert client.post("/write", json={}, headers=headers).headers["Idempotent-Replayed"] == "true"

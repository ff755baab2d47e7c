"""docs/endpoints.md says what each view asks the policy because each view declares it
(`@blp.needs(checks=..., lists=...)`); this holds the declarations to the code: the
actions the view (and the helpers of its module it calls) pass to `authorize`,
`authorized` and `condition`, and to the policy: every declared permission exists."""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from functools import cache

from app import needs
from app.api.reference import render_markdown
from app.authz.matrix import declared_permissions
from app.models.resource import model_named, polar_name


@cache
def _module_functions(module_name: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(inspect.getsource(sys.modules[module_name]))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _asked(func: ast.FunctionDef, module: str, seen: set[str]) -> tuple[set[str], set[str]]:
    """(actions passed to authorize, "ACTION Type" of the filters) in `func` and in the
    functions of its module it calls."""
    checks: set[str] = set()
    lists: set[str] = set()
    helpers = _module_functions(module)
    for node in ast.walk(func):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        args = node.args
        if name == "authorize":
            checks.add(ast.literal_eval(args[1]))
        elif name in ("authorized", "condition"):
            at = 2 if name == "authorized" else 1
            model = model_named_or_class(ast.unparse(args[at + 1]))
            lists.add(f"{ast.literal_eval(args[at])} {model}")
        elif name in helpers and name not in seen:
            seen.add(name)
            more = _asked(helpers[name], module, seen)
            checks |= more[0]
            lists |= more[1]
    return checks, lists


def model_named_or_class(name: str) -> str:
    from app import models

    return polar_name(getattr(models, name))


def _views(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in needs.FOREIGN_PUBLIC:
            continue
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method in (rule.methods or ()):
                yield rule, method, needs.handler(app, rule.endpoint, method)


def test_every_view_declares_what_it_asks_the_policy(app):
    permissions = declared_permissions(app.extensions["settings"].policy_dir)
    wrong = []
    for rule, method, func in _views(app):
        spec = needs.of_function(func) or needs.DEFAULT
        source = textwrap.dedent(inspect.getsource(inspect.unwrap(func)))
        tree = ast.parse(source).body[0]
        assert isinstance(tree, ast.FunctionDef)
        checks, lists = _asked(tree, func.__module__, set())
        where = f"{method} {rule.rule}"
        if {c.split()[0] for c in spec.checks} != checks:
            wrong.append(f"{where}: declares checks {spec.checks}, authorizes {sorted(checks)}")
        if set(spec.lists) != lists:
            wrong.append(f"{where}: declares lists {spec.lists}, filters {sorted(lists)}")
        for asked in (*spec.checks, *spec.lists):
            action, type_name = asked.split()
            model_named(type_name)  # a resource type of the policy
            if action not in permissions.get(type_name, []):
                wrong.append(f"{where}: {type_name} has no permission {action!r}")
        if not spec.public and not (spec.checks or spec.lists):
            wrong.append(f"{where}: asks the policy nothing")
    assert not wrong, "\n".join(wrong)


def test_the_reference_lists_every_route_and_method(app):
    with app.app_context():
        text = render_markdown(app)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`/" in line]
    expected = sum(1 for rule in app.url_map.iter_rules()
                   for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if m in (rule.methods or ()))
    assert len(rows) == expected
    gallery = next(r for r in rows if r.startswith(
        "| PATCH | `/v1/orgs/<uuid:org_id>/sites/<uuid:site_id>/galleries/<uuid:gallery_id>` |"))
    assert "| access token, API key | `access` on Organization; `update` on Gallery; list " \
        "filter `read` on Asset |" in gallery
    batch = next(r for r in rows if "/v1/events/batch" in r)
    assert "| access token, API key, ingest key | `write_events` on Site |" in batch
    login = next(r for r in rows if "/v1/auth/login" in r)
    assert "| none (public) | none | none (public) | `login`: `RATELIMIT_PER_IP`" in login

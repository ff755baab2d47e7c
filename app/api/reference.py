"""docs/endpoints.md: every route of the app as a security reviewer reads it, generated from
the route table and each view's declaration (`@blp.needs`, app/needs.py): credentials,
the policy questions it asks, tenant scope, rate limits, `Idempotency-Key`, and the first
paragraph of its docstring. `flask docs write` writes it; tests/test_docs.py checks it."""

from __future__ import annotations

import inspect

from flask import Flask

from app import needs

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
FOREIGN = "served by the framework: static files, the OpenAPI document and its UI"
_PER = {"ip": "client address", "account": "account"}


def _policy(spec: needs.Needs, org_in_path: bool) -> str:
    asked = [f"`{a}` on {t}" for a, _, t in (c.partition(" ") for c in spec.checks)]
    asked += [f"list filter `{a}` on {t}" for a, _, t in (c.partition(" ") for c in spec.lists)]
    if org_in_path:
        asked.insert(0, "`access` on Organization")
    return "; ".join(asked) or "none"


def _scope(spec: needs.Needs, arguments: set[str]) -> str:
    if spec.public:
        return "none (public)"
    if "org_id" in arguments:
        others = sorted(arguments - {"org_id"})
        looked_up = f"; {', '.join(f'`{a}`' for a in others)} looked up in it" if others else ""
        return f"`org_id` of the path, RLS on it{looked_up}"
    if needs.Credential.INGEST_KEY in spec.credentials:
        return "the key's own site and organization (RLS)"
    return "the caller's own rows (RLS: the person, or a key's organization)"


def _limits(spec: needs.Needs) -> str:
    return "; ".join(
        f"`{limit.name}`: `{limit.setting.upper()}` per {_PER.get(limit.per, limit.per)}"
        + (", fails open" if limit.fails_open else "")
        for limit in spec.limits
    ) or "none"


def _description(func: object) -> str:
    doc = inspect.getdoc(func) if func is not None else None
    return " ".join(doc.split("\n\n")[0].split()) if doc else ""


def rows(app: Flask) -> list[tuple[str, ...]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in METHODS:
            if method not in (rule.methods or ()):
                continue
            foreign = rule.endpoint in needs.FOREIGN_PUBLIC
            func = None if foreign else needs.handler(app, rule.endpoint, method)
            spec = needs.PUBLIC if foreign else needs.of_function(func) or needs.DEFAULT
            credentials = ", ".join(
                c.value for c in needs.Credential if c in spec.credentials
            ) or "none (public)"
            idempotent = method == "POST" and spec.idempotent and not spec.public
            arguments = set(rule.arguments)
            found.append((
                method, f"`{rule.rule}`", credentials,
                _policy(spec, "org_id" in arguments), _scope(spec, arguments), _limits(spec),
                "yes" if idempotent else "no",
                _description(func) or (FOREIGN if foreign else ""),
            ))
    return sorted(found, key=lambda r: (r[1].strip("`"), METHODS.index(r[0])))


def render_markdown(app: Flask) -> str:
    header = ("method", "path", "credentials", "policy asks", "tenant scope", "rate limit",
              "Idempotency-Key", "description")
    lines = [
        "# Endpoints",
        "",
        "Generated from the route table and each view's `@blp.needs(...)` declaration by",
        "`flask docs write`; do not edit by hand.",
        "",
        "- **credentials**: what authenticates the call (an access token is a person's JWT;",
        "  an API key `sk_` a machine's role; an ingest key `ik_` a browser's right to send",
        "  events). Anything else is a 401.",
        "- **policy asks**: the Oso questions the view asks (`ACTION` on a resource type of",
        "  `policies/`; see docs/permissions.md). A refused `read` is a 404, any other",
        "  refusal on something the caller may read a 403. A *list filter* is the policy",
        "  compiled into the SQL of the rows returned. Every route with `org_id` first asks",
        "  `access` on that organization (404 otherwise).",
        "- **tenant scope**: where the rows come from. PostgreSQL row-level security (RLS)",
        "  limits every query to that organization whatever the code asks.",
        "- **rate limit**: the counter, its setting, and what it counts per (429 beyond).",
        "  Without the counters' storage (Redis) a limit answers 503, or, where it *fails",
        "  open*, lets the request through (README, Operating it).",
        "- **Idempotency-Key**: a POST that replays its first answer for a repeated key.",
        "",
        "| " + " | ".join(header) + " |",
        "|---" * len(header) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
              for row in rows(app)]
    return "\n".join(lines) + "\n"

"""The shape of the house, checked: layers that hold, and one description per resource.

- Views (app/api) import no other resource's view module, and never write attributes on
  what they hold (presentation lives in schemas: `Out`); queries are built in services.
- Every model described by `__resource__` has a resource block in the policies and the
  policies have no block without one; every described tenant table is under forced
  row-level security with its tenant policy in the migrated database.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.authz.matrix import declared_permissions
from app.config import Settings
from app.models.resource import described, polar_name

APP = Path(__file__).resolve().parents[1] / "app"
VIEWS = sorted(p for p in (APP / "api").glob("*.py") if p.name not in ("__init__.py",))
# Shared by every view module: the blueprint class, small helpers, path validation.
SHARED = {"app.api", "app.api.helpers", "app.api.paths"}


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: p.name)
def test_a_view_module_imports_no_other_view_module(path):
    tree = ast.parse(path.read_text())
    imported = {node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    others = {m for m in imported if m.startswith("app.api") and m not in SHARED}
    assert others == set()


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: p.name)
def test_a_view_never_writes_attributes(path):
    """Presentation does not stick attributes on ORM rows (schemas' `Out` carries them),
    and changes are the services' business."""
    tree = ast.parse(path.read_text())
    writes = [
        node.lineno for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute)
    ]
    assert writes == []


def test_every_described_model_has_a_policy_block_and_every_block_a_model():
    blocks = set(declared_permissions(Settings().policy_dir))
    assert blocks == {polar_name(model) for model, _ in described()}


def test_every_path_parameter_names_a_described_resource_or_a_special_one(app):
    from tests.support.routes import SPECIAL_PARAMS

    declared = {r.path_param for _, r in described() if r.path_param}
    params = {
        name for rule in app.url_map.iter_rules()
        for name in re.findall(r"<(?:\w+:)?(\w+)>", rule.rule) if name != "filename"
    }
    assert params <= declared | set(SPECIAL_PARAMS)


# Forced row-level security without a described resource: rows the policy never sees.
RLS_WITHOUT_RESOURCE = {
    "idempotency_keys",  # per organization, read by the pipeline only
    "oauth_codes",  # of a client's organization, read by the token endpoint only
}


def test_every_tenant_table_is_under_row_level_security(database_url, is_postgres):
    if not is_postgres:
        pytest.skip("row-level security is PostgreSQL's")
    tenant_tables = {model.__tablename__ for model, r in described() if r.tenant}
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            forced = set(conn.scalars(text(
                "SELECT relname FROM pg_class WHERE relforcerowsecurity AND relkind IN ('r', 'p')"
                " AND relnamespace = 'public'::regnamespace AND relispartition = false")))
            isolated = set(conn.scalars(text(
                "SELECT tablename FROM pg_policies WHERE policyname = 'tenant_isolation'")))
    finally:
        engine.dispose()
    assert tenant_tables <= forced & isolated
    assert forced - tenant_tables == RLS_WITHOUT_RESOURCE

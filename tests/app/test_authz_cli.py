"""`flask authz explain`, `test` and `diff` as a reviewer runs them, on real policies and
real rows (explain reads the database as the tables' owner)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.support import Tenant
from tests.support.galleries import new_gallery
from tests.support.keys import create_api_key, create_ingest_key


def _run(app, *args: str):
    with app.app_context():
        return app.test_cli_runner().invoke(args=["authz", *args])


def test_explain_an_allowed_gallery_update(app, world, tenant: Tenant):
    gallery = new_gallery(world, tenant.site, tenant["site_member"])
    result = _run(app, "explain", tenant["site_site_admin"].email, "update", "gallery",
                  str(gallery))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (f"ALLOWED: User {tenant['site_site_admin'].email} -> update -> "
                        f"Gallery {gallery}")
    assert f"  site_admin on Site {tenant.site.id} (direct: policies/sites.polar:34)" in lines
    assert f"  guest on Organization {tenant.org.id} (direct: policies/organizations.polar:38)" \
        in lines
    chain = lines[lines.index("rule chain (each rule fired; indented: what its conditions "
                              "needed):") + 1:]
    assert [line.split()[0] for line in chain] == [
        "policies/base.polar:25", "policies/scopes.polar:11", "policies/galleries.polar:10",
        "policies/galleries.polar:15", "policies/sites.polar:34",
    ]
    assert chain[2].strip() == 'policies/galleries.polar:10  "update" if "site_admin" on "site";'


def test_explain_a_denied_gallery_update_names_the_failed_conditions(app, world, tenant):
    gallery = new_gallery(world, tenant.site, tenant["site_member"])
    viewer = tenant["site_viewer"]
    result = _run(app, "explain", f"user:{viewer.email}", "update", "Gallery", str(gallery),
                  "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["allowed"] is False and data["chain"] == []
    assert [(m["rule"], m["failed"]) for m in data["could_have_allowed"]] == [
        ("policies/galleries.polar:10", 'has_role(actor, "site_admin", related)'),
        ("policies/galleries.polar:19", "gallery.created_by = user.id"),
    ]
    failed = data["could_have_allowed"][1]["values"]
    assert failed == {"gallery.created_by": repr(str(tenant["site_member"].id)),
                      "user.id": repr(str(viewer.id))}
    assert [(r["role"], r["direct"]) for r in data["roles"]] == [("viewer", True),
                                                                 ("guest", True)]


def test_explain_keys_and_the_sql_of_list_endpoints(app, client, world, tenant, is_postgres):
    api_key = create_api_key(client, tenant, role="member", site_id=str(tenant.site.id))
    result = _run(app, "explain", f"api-key:{api_key.id}", "read", "gallery",
                  str(new_gallery(world, tenant.site, None)), "--sql")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"ALLOWED: ApiClient {api_key.id} -> read")
    assert "policies/sites.polar:37" in result.output  # the key's site role
    sql = result.output.split("list filter (SQL WHERE):\n")[1].strip()
    assert sql == f"galleries.site_id IN ('{tenant.site.id}')"

    ingest = create_ingest_key(client, tenant)
    result = _run(app, "explain", f"ingest-key:{ingest.id}", "write_events", "site",
                  str(tenant.site.id))
    assert result.exit_code == 0, result.output
    assert "policies/events.polar:16" in result.output and "ALLOWED" in result.output
    result = _run(app, "explain", f"ingest-key:{ingest.id}", "read", "organization",
                  str(tenant.org.id))
    assert result.output.startswith("DENIED") and "the actor is not" not in result.output


def test_explain_an_oauth_client_acting_with_its_own_role(app, client, world, tenant):
    from tests.support.oauth import create_oauth_client

    machine = create_oauth_client(client, tenant, "confidential", role="viewer",
                                  scopes=["read"])
    result = _run(app, "explain", f"oauth-client:{machine.id}", "read", "site",
                  str(tenant.site.id))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"ALLOWED: ApiClient {machine.id} -> read")
    assert "policies/scopes.polar:21" in result.output  # its `read` scope allowed it
    result = _run(app, "explain", f"oauth-client:{machine.id}", "update", "site",
                  str(tenant.site.id))
    assert result.output.startswith("DENIED")


@pytest.mark.parametrize(("args", "message"), [
    (["nobody@example.com", "read", "site", "{site}"], "no user nobody@example.com"),
    (["{admin}", "frobnicate", "site", "{site}"],
     "Site has no permission 'frobnicate': one of read, update, delete"),
    (["{admin}", "read", "widget", "{site}"],
     "unknown resource type 'widget': one of Account, ApiKey, Asset"),
    (["robot:1", "read", "site", "{site}"], "unknown actor kind 'robot': use one of user:..."),
    (["{admin}", "read", "gallery", "{site}"], "no Gallery {site}"),
])
def test_explain_refuses_what_does_not_exist_and_lists_what_does(app, tenant, args, message):
    values = {"site": str(tenant.site.id), "admin": tenant["org_admin"].email}
    result = _run(app, "explain", *(a.format(**values) for a in args))
    assert result.exit_code == 1
    assert message.format(**values) in result.output


def test_authz_test_passes_and_reports_coverage(app):
    result = _run(app, "test", "--coverage")
    assert result.exit_code == 0, result.output
    assert "policies/galleries.polar:19" in result.output
    assert re.fullmatch(r"rules: (\d+), exercised \1, unexercised 0",
                        result.output.splitlines()[-1])
    assert " 0 failed" in result.output.splitlines()[-2]


def test_authz_test_fails_on_a_broken_policy_with_a_table(app, tmp_path, monkeypatch):
    policies = tmp_path / "policies"
    settings = app.extensions["settings"]
    shutil.copytree(settings.policy_dir, policies)
    path = policies / "sites.polar"
    path.write_text(path.read_text().replace('  "update" if "site_admin";\n', ""))
    monkeypatch.setitem(app.extensions, "settings",
                        settings.with_overrides({"policy_dir": str(policies)}))
    result = _run(app, "test")
    assert result.exit_code == 1
    assert "case" in result.output and "expected | actual" in result.output
    assert "sites.toml: site_admin update main" in result.output


def test_authz_diff_against_a_revision(app, tmp_path, monkeypatch):
    settings = app.extensions["settings"]
    repo = tmp_path
    shutil.copytree(settings.policy_dir, repo / "policies")
    for args in (["init", "-q"], ["add", "."],
                 ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "p"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    path = repo / "policies" / "audit.polar"
    path.write_text(path.read_text().replace('"read_audit" on', '"read" on'))
    monkeypatch.setitem(app.extensions, "settings",
                        settings.with_overrides({"policy_dir": str(repo / "policies")}))
    result = _run(app, "diff", "HEAD")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "policy changes since HEAD: 6 cell(s) granted, 0 revoked"
    assert lines[2:] == [
        f"+ granted  AuditEvent.read  to  {kind} org:{role}"
        for kind in ("API key", "user") for role in ("member", "site_admin", "viewer")
    ]
    refused = _run(app, "diff", "nope")
    assert refused.exit_code == 1 and "git ls-tree" in refused.output

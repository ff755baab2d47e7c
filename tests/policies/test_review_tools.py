"""The reviewer's tools on real policies: rule attribution agrees with oso on every cell of
the permission matrix, explanations name the rules and the failed condition, the parser
reads every rule, and `diff` reports a policy change cell by cell (on a throwaway git
repository)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy.orm import Session

from app.authz.engine import AuthzEngine
from app.authz.matrix import KINDS, InMemoryLookup, Sample, declared_permissions, holders
from app.authz.review.diff import diff, render
from app.authz.review.explain import Reviewer
from app.authz.review.polar import parse
from app.config import Settings

POLICY = Path(Settings().policy_dir)


def _reviewer(sample: Sample) -> Reviewer:
    lookup = InMemoryLookup(sample.objects)
    return Reviewer(POLICY, session=lambda: cast(Session, lookup))


def test_the_parser_reads_every_rule_where_it_is_written():
    policy = parse(POLICY)
    for rule in policy.rules:
        line = (POLICY.parent / rule.file).read_text().splitlines()[rule.line - 1]
        first = rule.text.split("(")[0] if not rule.shorthand else rule.text
        assert line.strip().startswith(first.split(" if ")[0]), (rule.where, line)
    assert set(policy.blocks) == set(declared_permissions(POLICY))
    texts = {r.text for r in policy.rules}
    assert '"update" if "site_admin" on "site";' in texts
    explicit = sum((POLICY / f).read_text().count(head) for f in
                   [p.name for p in POLICY.glob("*.polar")]
                   for head in ("\nhas_", "\nscope_allows(", "\nreading("))
    assert sum(not r.shorthand and r.name != "allow" for r in policy.rules) == explicit


def test_attribution_agrees_with_oso_on_every_cell_of_the_matrix():
    """A rule is found exactly when oso allows, and the probes change no decision."""
    sample = Sample()
    reviewer = _reviewer(sample)
    plain = AuthzEngine(POLICY, session=lambda: cast(Session, InMemoryLookup(sample.objects)))
    asked = 0
    for kind in KINDS.values():
        for label, actor in holders(sample.org, sample.site, kind).items():
            for name, permissions in declared_permissions(POLICY).items():
                resources = [sample.resource(name, actor), sample.created_by(name, actor)]
                for resource in resources:
                    for permission in permissions:
                        explained = reviewer.explain(actor, permission, resource)
                        assert explained.agrees, (label, name, permission)
                        assert explained.allowed == plain.is_allowed(actor, permission, resource)
                        asked += 1
    assert asked > 1500


def test_an_allowed_decision_shows_roles_and_the_chain_down_to_the_grant():
    sample = Sample()
    reviewer = _reviewer(sample)
    actor = holders(sample.org, sample.site)["org:org_admin"]
    explained = reviewer.explain(actor, "update", sample.resource("Gallery", actor))
    chain = [rule.where for rule in explained.rules()]
    assert chain == [
        "policies/base.polar:25", "policies/scopes.polar:11", "policies/galleries.polar:10",
        "policies/galleries.polar:15", "policies/sites.polar:26", "policies/sites.polar:40",
        "policies/organizations.polar:23", "policies/organizations.polar:35",
    ]
    held = {(r.role, r.on.split()[0], r.direct) for r in explained.roles}
    assert ("org_admin", "Organization", True) in held
    assert ("site_admin", "Site", False) in held
    assert "ALLOWED" in explained.text() and "policies/galleries.polar:10" in explained.text()


def test_a_denial_names_the_rules_that_could_have_allowed_and_the_failed_condition():
    sample = Sample()
    reviewer = _reviewer(sample)
    actor = holders(sample.org, sample.site)["site:viewer"]
    explained = reviewer.explain(actor, "update", sample.resource("Gallery", actor))
    assert not explained.allowed and not explained.proofs
    failed = {m.rule.where: m.failed for m in explained.misses}
    assert failed == {
        "policies/galleries.polar:10": 'has_role(actor, "site_admin", related)',
        "policies/galleries.polar:19": "gallery.created_by = user.id",
    }
    key = holders(sample.org, sample.site, KINDS["API key"])["site:member"]
    explained = reviewer.explain(key, "delete", sample.created_by("Gallery", key))
    assert {m.rule.where: m.failed for m in explained.misses}[
        "policies/galleries.polar:19"] == "the actor is not a User"
    assert explained.as_json()["allowed"] is False


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A throwaway repository whose first commit holds the real policies."""
    shutil.copytree(POLICY, tmp_path / "policies", ignore=shutil.ignore_patterns("tests"))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    return tmp_path


def test_diff_of_an_unchanged_policy_is_empty(repo):
    assert diff("HEAD", repo / "policies") == []


def test_diff_reports_a_widened_rule_cell_by_cell(repo):
    path = repo / "policies" / "galleries.polar"
    path.write_text(path.read_text().replace(
        '"restore" if "site_admin" on "site";', '"restore" if "member" on "site";'))
    changes = diff("HEAD", repo / "policies")
    assert {(c.granted, c.section, c.row, c.column) for c in changes} == {
        (True, "Gallery", "restore", column) for column in (
            "user org:member", "user site:member", "API key org:member", "API key site:member")
    }
    text = render("HEAD", changes)
    assert "4 cell(s) granted, 0 revoked" in text
    assert "+ granted  Gallery.restore  to  user site:member" in text


def test_diff_reports_a_removed_rule_and_an_added_role(repo):
    path = repo / "policies" / "organizations.polar"
    text = path.read_text()
    text = text.replace('  "read_audit" if "org_admin";\n', "")
    text = text.replace('roles = ["guest",', 'roles = ["owner", "guest",')
    text = text.replace('  "site_admin" if "org_admin";\n',
                        '  "site_admin" if "org_admin";\n  "org_admin" if "owner";\n')
    path.write_text(text)
    changes = diff("HEAD", repo / "policies")
    revoked = {(c.section, c.row, c.column) for c in changes if not c.granted}
    assert ("Organization", "read_audit", "API key org:org_admin") in revoked
    assert ("AuditEvent", "read", "API key org:org_admin") in revoked
    # A person keeps reading the audit log through nothing else: revoked too.
    assert ("Organization", "read_audit", "user org:org_admin") in revoked
    assert not [c for c in changes if c.granted]  # nobody holds the new role


def test_diff_of_an_unknown_revision_is_an_error(repo):
    with pytest.raises(RuntimeError, match="no-such-rev"):
        diff("no-such-rev", repo / "policies")

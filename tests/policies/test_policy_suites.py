"""The policy's own tests (policies/tests/*.toml) pass, cover every resource block and
permission, and exercise every rule; and each check fails on a deliberately broken copy."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from app.authz.review.suites import Report, SuiteError, run
from app.config import Settings

POLICY = Path(Settings().policy_dir)
SUITES = POLICY / "tests"


@pytest.fixture(scope="module")
def report() -> Report:
    return run(POLICY)


def test_every_case_of_every_suite_passes(report):
    assert len(report.cases) > 1000
    assert not report.failures, "\n" + report.failures_table()


def test_every_resource_block_has_a_suite_and_every_permission_a_case(report):
    assert not report.problems, report.problems


def test_every_rule_of_every_policy_file_is_exercised(report):
    files = {rule.file for rule in report.rules}
    assert files == {f"policies/{p.name}" for p in POLICY.glob("*.polar")}
    assert not report.unexercised(), report.summary(coverage=True)


def _copy(tmp_path: Path) -> Path:
    policies = tmp_path / "policies"
    shutil.copytree(POLICY, policies, ignore=shutil.ignore_patterns("tests"))
    return policies


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_removed_rule_fails_the_cases_that_needed_it(tmp_path):
    policies = _copy(tmp_path)
    _edit(policies / "galleries.polar", '  "update" if "site_admin" on "site";\n', "")
    report = run(policies, SUITES)
    failed = {(c.principal, c.action, c.resource) for c in report.failures}
    assert ("site_admin", "update", "theirs") in failed
    assert ("key_org_admin", "update", "theirs") in failed
    assert ("member", "update", "mine") not in failed  # the creator rule still grants it
    assert all(c.expected and not c.actual for c in report.failures)
    # The table says which rule could still have granted it, and why it did not.
    row = next(line for line in report.failures_table().splitlines()
               if line.startswith("galleries.toml: site_admin update theirs "))
    assert row.endswith("policies/galleries.polar:18 failed: gallery.created_by = user.id")


def test_an_added_role_leaves_its_rule_unexercised(tmp_path):
    policies = _copy(tmp_path)
    _edit(policies / "organizations.polar", 'roles = ["guest",', 'roles = ["owner", "guest",')
    _edit(policies / "organizations.polar", '  "site_admin" if "org_admin";\n',
          '  "site_admin" if "org_admin";\n  "org_admin" if "owner";\n')
    report = run(policies, SUITES)
    assert not report.failures
    unexercised = [f"{r.where} {r.text}" for r in report.unexercised()]
    assert unexercised == ['policies/organizations.polar:24 "org_admin" if "owner";']


def test_a_rule_whose_cases_are_removed_is_reported_unexercised(tmp_path):
    suites = tmp_path / "tests"
    shutil.copytree(SUITES, suites)
    text = (suites / "galleries.toml").read_text()
    # Drop the tables of the galleries people created themselves.
    for name in ("mine",):
        text = re.sub(rf'\[\[expect\]\]\nresource = "{name}"\n(?:[^\[\n].*\n|\n)*', "", text)
    (suites / "galleries.toml").write_text(text)
    report = run(POLICY, suites)
    assert [r.where for r in report.unexercised()] == ["policies/galleries.polar:19"]


def test_a_block_without_a_suite_and_a_permission_without_a_case_are_problems(tmp_path):
    suites = tmp_path / "tests"
    shutil.copytree(SUITES, suites)
    _edit(suites / "audit.toml", 'blocks = ["AuditEvent"]', "blocks = []")
    _edit(suites / "galleries.toml", 'restore = ["org_admin", "org_site_admin", "site_admin", '
          '"key_org_admin", "key_site_admin"]\n', "")
    _edit(suites / "galleries.toml", 'restore = ["org_admin", "org_site_admin", "site_admin", '
          '"key_org_admin", "key_site_admin"]\n', "")
    problems = run(POLICY, suites).problems
    assert len(problems) == 2
    assert problems[0].startswith("resource block AuditEvent (policies/audit.polar:3) has no")
    assert problems[1].startswith("no case asks Gallery.restore")


@pytest.mark.parametrize(("old", "new", "message"), [
    ('kind = "ingest_key"', 'kind = "robot"', "kind is one of"),
    ('read = ["org_admin", "key_org_admin"]', 'frobnicate = ["org_admin"]',
     "AuditEvent has no permission 'frobnicate'"),
    ('read = ["org_admin", "key_org_admin"]', 'read = ["org_admin", "nobody_here"]',
     "no principal ['nobody_here']"),
    ('type = "AuditEvent", org = "acme"', 'type = "Widget"', "unknown resource type 'Widget'"),
])
def test_a_suite_that_cannot_be_read_says_where(tmp_path, old, new, message):
    suites = tmp_path / "tests"
    shutil.copytree(SUITES, suites)
    _edit(suites / "audit.toml", old, new)
    with pytest.raises(SuiteError, match=re.escape(message)):
        run(POLICY, suites)

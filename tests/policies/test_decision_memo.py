"""Decisions about organizations and sites are memoized per actor (AuthzEngine.is_allowed):
safe only while the policies read nothing of them but their ids. These tests hold both."""

import uuid
from datetime import UTC, datetime

import pytest

from app.authz.actors import ApiClientActor, IngestClientActor, UserActor
from app.authz.engine import AuthzEngine
from app.authz.matrix import InMemoryLookup, declared_permissions, holders
from app.config import Settings
from app.models import Organization, Site
from app.models.resource import described

pytestmark = pytest.mark.portable

PERMISSIONS = declared_permissions(Settings().policy_dir)


def world():
    org = Organization(id=uuid.uuid4(), name="org")
    site = Site(id=uuid.uuid4(), org_id=org.id, name="site")
    site.parent = org
    other_org = Organization(id=uuid.uuid4(), name="other")
    other = Site(id=uuid.uuid4(), org_id=other_org.id, name="other site")
    other.parent = other_org
    actors = [*holders(org, site).values(), *holders(org, site, ApiClientActor).values(),
              IngestClientActor(uuid.uuid4(), site_id=site.id, site_orgs={site.id: org.id})]
    lookup = InMemoryLookup([org, site, other_org, other])
    return AuthzEngine(Settings().policy_dir, session=lambda: lookup), actors, [
        org, site, other_org, other]


def test_memoized_decisions_are_oso_s_own():
    engine, actors, resources = world()
    for actor in actors:
        for _ in range(2):  # the second round answers from the memo
            for resource in resources:
                for action in PERMISSIONS[type(resource).__name__]:
                    assert engine.is_allowed(actor, action, resource) == bool(
                        engine.oso.is_allowed(actor, action, resource)
                    ), (actor, action, resource)
        assert actor.decisions  # the memo was used


def test_the_policies_read_nothing_but_the_ids():
    """Every other column changed (the ones a policy might be tempted to read, deleted_at
    included): no decision moves."""
    engine, actors, (org, site, *_) = world()
    when = datetime(2030, 1, 1, tzinfo=UTC)
    changed_org = Organization(id=org.id, name="changed", deleted_at=when, created_at=when)
    changed_site = Site(id=site.id, org_id=org.id, name="changed", deleted_at=when,
                        created_at=when)
    changed_site.parent = changed_org
    assert {Organization, Site} == {model for model, r in described() if r.decided_by}
    for actor in actors:
        for original, changed in ((org, changed_org), (site, changed_site)):
            for action in PERMISSIONS[type(original).__name__]:
                assert engine.oso.is_allowed(actor, action, original) == engine.oso.is_allowed(
                    actor, action, changed), (actor, action)


def test_the_memo_is_per_actor_and_per_resource():
    engine, _, (org, site, _, other) = world()
    writer = IngestClientActor(uuid.uuid4(), site_id=site.id, site_orgs={site.id: org.id})
    assert engine.is_allowed(writer, "write_events", site)
    assert not engine.is_allowed(writer, "write_events", other)
    stranger = UserActor(uuid.uuid4())
    assert not engine.is_allowed(stranger, "read", site)
    admin = UserActor(uuid.uuid4(), org_roles={org.id: "org_admin"})
    assert engine.is_allowed(admin, "read", site)
    assert stranger.decisions != admin.decisions

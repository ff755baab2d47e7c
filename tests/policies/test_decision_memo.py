"""Decisions about organizations, sites, galleries and accounts are memoized per actor
(AuthzEngine.is_allowed): safe only while the policies read nothing of them but the columns
their `decided_by` names. These tests hold both."""

import uuid
from datetime import UTC, datetime

from app.authz.actors import ApiClientActor, IngestClientActor, UserActor
from app.authz.engine import AuthzEngine
from app.authz.matrix import InMemoryLookup, declared_permissions, holders
from app.config import Settings
from app.models import Gallery, Organization, Site, User
from app.models.resource import described, polar_name

PERMISSIONS = declared_permissions(Settings().policy_dir)


def world():
    org = Organization(id=uuid.uuid4(), name="org")
    site = Site(id=uuid.uuid4(), org_id=org.id, name="site")
    site.parent = org
    other_org = Organization(id=uuid.uuid4(), name="other")
    other = Site(id=uuid.uuid4(), org_id=other_org.id, name="other site")
    other.parent = other_org
    people = holders(org, site)
    actors = [*people.values(), *holders(org, site, ApiClientActor).values(),
              IngestClientActor(uuid.uuid4(), site_id=site.id, site_orgs={site.id: org.id})]
    # People signed in through an OAuth client, whose scopes cap what they may do.
    actors += [UserActor(uuid.uuid4(), org_roles={org.id: "org_admin"}, scopes=scopes)
               for scopes in (("read",), ("write",), ("events:write",), ())]
    # Galleries created by a site member, an org member (the creator rule), nobody, and one
    # on the other organization's site.
    galleries = [gallery(s, creator) for s, creator in (
        (site, people["site:member"].id), (site, people["org:member"].id), (site, None),
        (other, people["org:member"].id))]
    # Every actor's own account (keys' ids too: the policy compares ids), and a stranger's.
    accounts = [account(a.id) for a in actors] + [account(uuid.uuid4())]
    lookup = InMemoryLookup([org, site, other_org, other])
    return AuthzEngine(Settings().policy_dir, session=lambda: lookup), actors, [
        org, site, other_org, other, *galleries, *accounts]


def account(user_id: uuid.UUID, **changed) -> User:
    columns = {"email": f"{user_id.hex}@memo.test", "password_hash": "-", "display_name": "",
               **changed}
    return User(id=user_id, **columns)


def gallery(site: Site, creator: uuid.UUID | None, **changed) -> Gallery:
    columns = {"title": "g", "description": "", "item_count": 0, **changed}
    return Gallery(id=uuid.uuid4(), org_id=site.org_id, site_id=site.id, created_by=creator,
                   **columns)


def test_memoized_decisions_are_oso_s_own():
    engine, actors, resources = world()
    for actor in actors:
        for _ in range(2):  # the second round answers from the memo
            for resource in resources:
                for action in PERMISSIONS[polar_name(type(resource))]:
                    assert engine.is_allowed(actor, action, resource) == bool(
                        engine.oso.is_allowed(actor, action, resource)
                    ), (actor, action, resource)
        assert actor.decisions  # the memo was used


def test_the_policies_read_nothing_but_the_ids():
    """Every other column changed (the ones a policy might be tempted to read, deleted_at
    included): no decision moves."""
    engine, actors, (org, site, _, _, *rest) = world()
    galleries = [r for r in rest if isinstance(r, Gallery)]
    accounts = [r for r in rest if isinstance(r, User)]
    when = datetime(2030, 1, 1, tzinfo=UTC)
    changed_org = Organization(id=org.id, name="changed", deleted_at=when, created_at=when)
    changed_site = Site(id=site.id, org_id=org.id, name="changed", deleted_at=when,
                        created_at=when)
    changed_site.parent = changed_org
    changed_galleries = [
        Gallery(id=uuid.uuid4(), org_id=g.org_id, site_id=g.site_id, created_by=g.created_by,
                title="changed", description="changed", cover_asset_id=uuid.uuid4(),
                item_count=7, deleted_at=when, created_at=when, updated_at=when)
        for g in galleries]
    changed_accounts = [
        account(a.id, email="changed@memo.test", display_name="changed", deleted_at=when,
                email_verified_at=when, created_at=when, updated_at=when)
        for a in accounts]
    assert {Organization, Site, Gallery, User} == {
        model for model, r in described() if r.decided_by}
    pairs = [(org, changed_org), (site, changed_site),
             *zip(galleries, changed_galleries, strict=True),
             *zip(accounts, changed_accounts, strict=True)]
    for actor in actors:
        for original, changed in pairs:
            for action in PERMISSIONS[polar_name(type(original))]:
                assert engine.oso.is_allowed(actor, action, original) == engine.oso.is_allowed(
                    actor, action, changed), (actor, action)


def test_the_memo_is_per_actor_and_per_resource():
    engine, _, (org, site, _, other, *_) = world()
    writer = IngestClientActor(uuid.uuid4(), site_id=site.id, site_orgs={site.id: org.id})
    assert engine.is_allowed(writer, "write_events", site)
    assert not engine.is_allowed(writer, "write_events", other)
    stranger = UserActor(uuid.uuid4())
    assert not engine.is_allowed(stranger, "read", site)
    admin = UserActor(uuid.uuid4(), org_roles={org.id: "org_admin"})
    assert engine.is_allowed(admin, "read", site)
    assert stranger.decisions != admin.decisions
    assert engine.is_allowed(stranger, "read_profile", User(id=stranger.id))
    assert not engine.is_allowed(stranger, "read_profile", User(id=admin.id))
    key = ApiClientActor(uuid.uuid4(), org_roles={org.id: "org_admin"})
    assert not engine.is_allowed(key, "read_profile", User(id=key.id))  # people only

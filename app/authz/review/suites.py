"""Policy tests as data (`policies/tests/*.toml`) and the rule coverage they reach.

A suite names the resource blocks it covers, its principals (a kind of actor and its
grants), its resources (a type, where it lives, who created it, fields to set) and tables
of what each principal may do: for each resource, each action lists the principals
allowed; every other principal of the suite is expected to be denied. The world is fixed:
organization `acme` with sites `main` and `other`, organization `rival` with site
`rival_site`. policies/tests/README.md shows the format.

`run()` decides every case with oso, attributes the allowed ones to rules (explain.py),
and reports, beside the failed cases, what makes CI fail: a resource block no suite
covers, a declared permission no table asks, a rule no case exercised.
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy.orm import Session

from app.authz.actors import ApiClientActor, IngestClientActor, Principal, UserActor
from app.authz.matrix import InMemoryLookup
from app.authz.review.explain import Reviewer
from app.authz.review.polar import Rule
from app.models import Organization, Site
from app.models.resource import Place, make, model_named

WORLD = {"acme": ("main", "other"), "rival": ("rival_site",)}
NOBODY = "nobody"  # a `creator` nobody in the suite is


class SuiteError(ValueError):
    """A suite that cannot be read: names what is wrong and where."""


@dataclass
class World:
    orgs: dict[str, Organization] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)
    objects: list[Any] = field(default_factory=list)

    @classmethod
    def build(cls) -> World:
        world = cls()
        for org_name, site_names in WORLD.items():
            org = world.orgs[org_name] = Organization(id=uuid.uuid4(), name=org_name)
            world.objects.append(org)
            for site_name in site_names:
                site = world.sites[site_name] = Site(id=uuid.uuid4(), org_id=org.id,
                                                     name=site_name)
                world.objects.append(site)
        return world

    def org_of(self, site: Site) -> Organization:
        return next(o for o in self.orgs.values() if o.id == site.org_id)


def _grants(world: World, spec: dict[str, Any], where: str) -> dict[str, Any]:
    org_roles: dict[uuid.UUID, str] = {}
    site_roles: dict[uuid.UUID, str] = {}
    site_orgs: dict[uuid.UUID, uuid.UUID] = {}
    for grant in spec.get("grants", []):
        role, on, place = grant.partition(" on ")
        if not on:
            raise SuiteError(f"{where}: a grant reads `ROLE on PLACE`, not {grant!r}")
        if place in world.orgs:
            org_roles[world.orgs[place].id] = role
        elif place in world.sites:
            site = world.sites[place]
            site_roles[site.id] = role
            site_orgs[site.id] = site.org_id
        else:
            raise SuiteError(f"{where}: no place {place!r} (one of {_places()})")
    return {"org_roles": org_roles, "site_roles": site_roles, "site_orgs": site_orgs}


def _places() -> str:
    return ", ".join([*WORLD, *(s for sites in WORLD.values() for s in sites)])


def _scopes(spec: dict[str, Any]) -> tuple[str, ...] | None:
    """`scopes`: an OAuth client's token (a list, maybe empty); absent: not capped."""
    scopes = spec.get("scopes")
    return None if scopes is None else tuple(scopes)


def _user(world: World, spec: dict[str, Any], where: str) -> Principal:
    """A person; `email` and `verified` (a proven address) as the invitation rules read;
    `scopes` for a person's token that an OAuth client obtained."""
    return UserActor(uuid.uuid4(), email=spec.get("email", ""),
                     verified=bool(spec.get("verified", False)), scopes=_scopes(spec),
                     **_grants(world, spec, where))


def _api_key(world: World, spec: dict[str, Any], where: str) -> Principal:
    """A machine with a role: an API key, or with `scopes` an OAuth client's own token."""
    return ApiClientActor(uuid.uuid4(), scopes=_scopes(spec), **_grants(world, spec, where))


def _ingest_key(world: World, spec: dict[str, Any], where: str) -> Principal:
    site = world.sites.get(spec.get("site", ""))
    if site is None:
        raise SuiteError(f"{where}: an ingest key names its `site` (one of {list(world.sites)})")
    return IngestClientActor(uuid.uuid4(), site_id=site.id, site_orgs={site.id: site.org_id})


# Principal kinds a suite may name. A new kind of actor (an OAuth client) adds its maker.
KINDS: dict[str, Callable[[World, dict[str, Any], str], Principal]] = {
    "user": _user, "api_key": _api_key, "ingest_key": _ingest_key,
}


@dataclass
class Case:
    suite: str
    principal: str
    action: str
    resource: str
    expected: bool
    actual: bool
    rules: list[Rule]
    why: str = ""

    @property
    def name(self) -> str:
        return f"{self.suite}: {self.principal} {self.action} {self.resource}"

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


@dataclass
class Report:
    cases: list[Case]
    rules: list[Rule]
    problems: list[str]  # uncovered blocks, unasked permissions

    @property
    def failures(self) -> list[Case]:
        return [c for c in self.cases if not c.passed]

    def hits(self) -> dict[str, list[str]]:
        """Rule (file:line) -> names of the cases that exercised it."""
        found: dict[str, list[str]] = {rule.where: [] for rule in self.rules}
        for case in self.cases:
            for where in dict.fromkeys(r.where for r in case.rules):
                found.setdefault(where, []).append(case.name)
        return found

    def unexercised(self) -> list[Rule]:
        hits = self.hits()
        return [rule for rule in self.rules if not hits[rule.where]]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems

    def failures_table(self) -> str:
        rows = [("case", "expected", "actual", "rule chain of the actual decision")]
        for case in self.failures:
            rows.append((case.name, _word(case.expected), _word(case.actual), case.why))
        return _table(rows)

    def coverage_text(self, shown: int | None = 3) -> str:
        """Every rule with the cases that exercised it (the first `shown`; None: all)."""
        lines = []
        hits = self.hits()
        for rule in self.rules:
            names = hits[rule.where]
            mark = f"{len(names):4d} case(s)" if names else "  UNEXERCISED"
            lines.append(f"{rule.where:40} {mark}  {rule.text[:90]}")
            lines += [f"{'':40}   - {name}" for name in names[:shown]]
            if shown is not None and len(names) > shown:
                lines.append(f"{'':40}   - ... {len(names) - shown} more")
        return "\n".join(lines) + "\n"

    def summary(self, coverage: bool = False) -> str:
        passed = len(self.cases) - len(self.failures)
        out = [f"{len(self.cases)} case(s): {passed} passed, {len(self.failures)} failed"]
        if coverage:
            unexercised = self.unexercised()
            covered = len(self.rules) - len(unexercised)
            out.append(f"rules: {len(self.rules)}, exercised {covered}, "
                       f"unexercised {len(unexercised)}")
            out += [f"  UNEXERCISED {r.where}  {r.text}" for r in unexercised]
        out += [f"  PROBLEM {p}" for p in self.problems]
        return "\n".join(out) + "\n"


def _word(allowed: bool) -> str:
    return "allow" if allowed else "deny"


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def _resource(world: World, spec: dict[str, Any], principals: dict[str, Principal],
              where: str) -> Any:
    spec = dict(spec)
    type_name = spec.pop("type", None)
    try:
        model = model_named(type_name or "")
    except LookupError:
        raise SuiteError(f"{where}: unknown resource type {type_name!r}") from None
    if "org" in spec:
        org = world.orgs[spec.pop("org")]
        site = next(s for s in world.sites.values() if s.org_id == org.id)
    else:
        site = world.sites[spec.pop("site", "main")]
        org = world.org_of(site)
    creator = spec.pop("creator", NOBODY)
    created_by = principals[creator].id if creator in principals else uuid.uuid4()
    place = Place(org, site, created_by=created_by)
    row = make(model, place)
    for name, value in spec.items():
        is_key = name == "id" or name.endswith("_id")
        setattr(row, name, _value(world, principals, value) if is_key else value)
    world.objects += [row, *place.made.values()]
    return row


def _value(world: World, principals: dict[str, Principal], value: Any) -> Any:
    """A key field's value: a principal, organization or site name stands for its id."""
    if value == "none":
        return None
    for names in (principals, world.orgs, world.sites):
        if isinstance(value, str) and value in names:
            return cast(Any, names[value]).id
    return value


@dataclass
class Suite:
    name: str
    blocks: list[str]
    principals: dict[str, Principal]
    resources: dict[str, Any]
    expect: list[tuple[str, str, set[str]]]  # (resource, action, principals allowed)


def load(path: Path, world: World, permissions: dict[str, list[str]]) -> Suite:
    data = tomllib.loads(path.read_text())
    name = path.name
    principals = {}
    for key, spec in data.get("principals", {}).items():
        kind = KINDS.get(spec.get("kind", ""))
        if kind is None:
            raise SuiteError(f"{name}: principal {key!r}: kind is one of {sorted(KINDS)}")
        principals[key] = kind(world, spec, f"{name}: principal {key!r}")
    resources = {
        key: _resource(world, spec, principals, f"{name}: resource {key!r}")
        for key, spec in data.get("resources", {}).items()
    }
    expect = []
    for row in data.get("expect", []):
        row = dict(row)
        resource = row.pop("resource", None)
        if resource not in resources:
            raise SuiteError(f"{name}: expect: no resource {resource!r}")
        type_name = _type(resources[resource])
        for action, allowed in row.items():
            if action not in permissions.get(type_name, []):
                raise SuiteError(f"{name}: {type_name} has no permission {action!r} (it has "
                                 f"{permissions.get(type_name, [])})")
            unknown = set(allowed) - set(principals)
            if unknown:
                raise SuiteError(f"{name}: {resource}.{action}: no principal {sorted(unknown)}")
            expect.append((resource, action, set(allowed)))
    return Suite(name, list(data.get("blocks", [])), principals, resources, expect)


def _type(resource: Any) -> str:
    from app.models.resource import polar_name

    return polar_name(type(resource))


def _why(reviewer: Reviewer, actor: Principal, action: str, target: Any,
         proofs: list[Any]) -> str:
    """The rules that allowed (the top of each chain), or those that could have and the
    condition that failed."""
    if proofs:
        return "; ".join(
            " > ".join([p.rule.where, *(c.rule.where for c in p.children[:1])])
            for proof in proofs for p in proof.children
        )
    misses = reviewer.misses(actor, action, target)
    return "; ".join(f"{m.rule.where} failed: {m.failed}" for m in misses) or "no rule names it"


def run(policy_dir: str | Path, suite_dir: str | Path | None = None) -> Report:
    """Every case of every suite in `suite_dir` (default: `policy_dir`/tests)."""
    policy_dir = Path(policy_dir)
    suite_dir = Path(suite_dir) if suite_dir is not None else policy_dir / "tests"
    world = World.build()
    lookup = InMemoryLookup(world.objects)
    reviewer = Reviewer(policy_dir, session=lambda: cast(Session, lookup))
    permissions = {name: block.permissions for name, block in reviewer.policy.blocks.items()}
    cases: list[Case] = []
    covered: set[str] = set()
    asked: set[tuple[str, str]] = set()
    for path in sorted(suite_dir.glob("*.toml")):
        suite = load(path, world, permissions)
        covered.update(suite.blocks)
        for resource, action, allowed in suite.expect:
            target = suite.resources[resource]
            asked.add((_type(target), action))
            for principal, actor in suite.principals.items():
                actual = reviewer.is_allowed(actor, action, target)
                proofs = reviewer.prove("allow", [actor, action, target]) if actual else []
                case = Case(suite.name, principal, action, resource, principal in allowed,
                            actual, [rule for proof in proofs for rule in proof.rules()])
                if not case.passed:
                    case.why = _why(reviewer, actor, action, target, proofs)
                cases.append(case)
    problems = [
        f"resource block {name} ({block.file}:{block.line}) has no suite: add its name to "
        f"`blocks` of a suite in {suite_dir.name}/"
        for name, block in reviewer.policy.blocks.items() if name not in covered
    ]
    problems += [
        f"no case asks {name}.{permission}: add it to an `expect` table"
        for name, block in reviewer.policy.blocks.items()
        for permission in block.permissions if (name, permission) not in asked
    ]
    return Report(cases, reviewer.policy.rules, problems)

"""Why a decision came out as it did: the Polar rules that fired, each at its file:line.

How rules are attributed. oso 0.27 has no trace API, so every rule of the policy (as
`polar.parse` reads it, shorthand rules expanded) is loaded a second time under a name of
its own, once per prefix of its conditions:

    review_probe_7_2(user: User, action: String, gallery: Gallery, bound) if
      action in ["update", "delete"] and gallery.created_by = user.id and bound = {...};

next to the real policy, in a second Oso with the same registered classes. A rule *fired*
for a goal (`has_permission(actor, "update", gallery)`) when oso proves its full probe
with the goal's arguments: its head matched and all its conditions held, as oso evaluates
them, against the real rules they call. The chain below a fired rule is the goals its
conditions call (`has_role(...)`, `has_relation(...)`), with the values oso bound
(`bound` carries the rule's variables out). For a denial, each rule that could have
granted the action (its head names that action, or any, on that resource type) is
reported with the first condition whose prefix probe fails: that is the condition that
failed. The decision itself is always oso's `is_allowed`; `Explanation.agrees` checks
that the attribution found a rule exactly when oso allowed (a test asks it of every cell
of the permission matrix).
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polar import Variable
from polar.exceptions import PolarRuntimeError
from sqlalchemy.orm import Session

from app.authz.actors import Principal
from app.authz.engine import ACTORS, AuthzEngine
from app.authz.review.polar import Policy, Rule, parse, split_top
from app.models.resource import polar_name

CALLED = ("has_permission", "has_role", "has_relation", "allow", "scope_allows", "reading")
_CALL = re.compile(r"^(\w+)\((.*)\)$", re.S)
_MAX_DEPTH = 12


def type_of(value: object) -> str | None:
    """The Polar type of a value, as the rule heads name it."""
    if isinstance(value, str):
        return "String"
    for cls, name in ACTORS.items():
        if isinstance(value, cls):
            return name
    if hasattr(type(value), "__table__"):
        return polar_name(type(value))
    return None


def describe(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    kind = type_of(value)
    ident = getattr(value, "id", None)
    email = getattr(value, "email", None) if isinstance(value, Principal) else None
    if email:
        return f"{kind} {email}"
    return f"{kind} {ident}" if kind else repr(value)


@dataclass
class Proof:
    """A rule that fired for `goal`, and the proofs of the goals its conditions call."""

    rule: Rule
    goal: str
    children: list[Proof] = field(default_factory=list)

    def rules(self) -> list[Rule]:
        found = [self.rule]
        for child in self.children:
            found += child.rules()
        return found

    def lines(self, depth: int = 0) -> list[str]:
        out = [f"{'  ' * depth}{self.rule.where}  {self.rule.text}"]
        for child in self.children:
            out += child.lines(depth + 1)
        return out

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule.where, "text": self.rule.text, "goal": self.goal,
                "because": [c.as_json() for c in self.children]}


@dataclass
class Miss:
    """A rule that could have granted the action, and what stopped it."""

    rule: Rule
    failed: str
    values: dict[str, str]

    def lines(self) -> list[str]:
        values = ", ".join(f"{k} = {v}" for k, v in self.values.items())
        return [f"  {self.rule.where}  {self.rule.text}",
                f"    failed: {self.failed}" + (f"   [{values}]" if values else "")]


@dataclass
class RoleHeld:
    role: str
    on: str
    direct: bool
    rules: list[str]


@dataclass
class Explanation:
    actor: str
    action: str
    resource: str
    allowed: bool
    proofs: list[Proof]
    misses: list[Miss]
    roles: list[RoleHeld]
    sql: str | None = None

    @property
    def agrees(self) -> bool:
        return self.allowed == bool(self.proofs)

    def rules(self) -> list[Rule]:
        return [rule for proof in self.proofs for rule in proof.rules()]

    def text(self) -> str:
        verdict = "ALLOWED" if self.allowed else "DENIED"
        out = [f"{verdict}: {self.actor} -> {self.action} -> {self.resource}", "",
               "effective roles:"]
        out += [
            f"  {r.role} on {r.on} ({'direct' if r.direct else 'inherited'}: "
            f"{', '.join(r.rules)})" for r in self.roles
        ] or ["  none"]
        out.append("")
        if self.proofs:
            out.append("rule chain (each rule fired; indented: what its conditions needed):")
            for proof in self.proofs:
                out += ["  " + line for line in proof.lines()]
        else:
            out.append("no rule grants it. Rules that could have, and the condition that failed:")
            for miss in self.misses:
                out += miss.lines()
            if not self.misses:
                out.append("  none: no rule names this action on this resource type")
        if not self.agrees:
            out.append("WARNING: the rule attribution disagrees with oso's decision")
        if self.sql is not None:
            out += ["", "list filter (SQL WHERE):", "  " + self.sql]
        return "\n".join(out) + "\n"

    def as_json(self) -> dict[str, Any]:
        return {
            "actor": self.actor, "action": self.action, "resource": self.resource,
            "allowed": self.allowed,
            "roles": [vars(r) for r in self.roles],
            "chain": [p.as_json() for p in self.proofs],
            "could_have_allowed": [
                {"rule": m.rule.where, "text": m.rule.text, "failed": m.failed,
                 "values": m.values} for m in self.misses
            ],
            "sql": self.sql,
        }


def _probe_text(index: int, upto: int, rule: Rule) -> str:
    bound = ", ".join(f"{v}: {v}" for v in rule.variables(upto))
    conditions = [*rule.conditions[:upto], f"review_bound = {{{bound}}}"]
    params = ", ".join([*(p.text for p in rule.params), "review_bound"])
    return f"review_probe_{index}_{upto}({params}) if\n  " + " and\n  ".join(conditions) + ";\n"


class Reviewer:
    """The policy in `policy_dir`, loaded twice into one Oso: as is, and as probes."""

    def __init__(
        self, policy_dir: str | Path, session: Callable[[], Session],
        root: str | Path | None = None,
    ) -> None:
        self.policy: Policy = parse(policy_dir, root)
        self.engine = AuthzEngine(policy_dir, session=session)
        probes = "".join(
            _probe_text(i, k, rule)
            for i, rule in enumerate(self.policy.rules)
            for k in range(len(rule.conditions) + 1)
        )
        files: list[Path | str] = [*sorted(Path(policy_dir).glob("*.polar"))]
        with tempfile.TemporaryDirectory() as tmp:
            extra = Path(tmp) / "review_probes.polar"
            extra.write_text(probes)
            self.engine.oso.clear_rules()
            self.engine.oso.load_files([*files, extra])
        self.index = {id(rule): i for i, rule in enumerate(self.policy.rules)}
        self._memo: dict[tuple[object, ...], list[Proof]] = {}

    # -- evaluation ------------------------------------------------------------------------

    def _bound(self, rule: Rule, upto: int, args: list[object]) -> dict[str, object] | None:
        """The rule's variables when its head and first `upto` conditions hold for `args`."""
        name = f"review_probe_{self.index[id(rule)]}_{upto}"
        try:
            for result in self.engine.oso.query_rule(name, *args, Variable("b")):
                bound = result["bindings"]["b"]
                return dict(bound) if isinstance(bound, dict) else {}
        except PolarRuntimeError:
            # A prefix that only constrains a variable (`related matches Site`) leaves it
            # unbound: satisfiable, so it holds; the next condition binds it.
            if upto < len(rule.conditions):
                return {}
            raise
        return None

    def _head_may_match(self, rule: Rule, args: list[object]) -> bool:
        """A cheap filter before asking oso: literals and known types must agree."""
        if len(rule.params) != len(args):
            return False
        for param, arg in zip(rule.params, args, strict=True):
            if param.literal is not None and arg != param.literal:
                return False
            if param.type and param.type != "Actor" and type_of(arg) not in (param.type, None):
                return False
            if param.type == "Actor" and not isinstance(arg, Principal):
                return False
        return True

    def candidates(self, name: str, args: list[object]) -> list[Rule]:
        return [r for r in self.policy.rules if r.name == name and self._head_may_match(r, args)]

    def prove(self, name: str, args: list[object], depth: int = 0) -> list[Proof]:
        """Every rule that fires for `name(args)`, each with the chain below it."""
        key = (name, *args)  # actors and rows hash by identity; the memo keeps them alive
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = []  # a goal that needs itself proves nothing more
        goal = f"{name}({', '.join(describe(a) for a in args)})"
        proofs = []
        for rule in self.candidates(name, args):
            bound = self._bound(rule, len(rule.conditions), args)
            if bound is None:
                continue
            proof = Proof(rule, goal)
            if depth < _MAX_DEPTH:
                env = {p.var: a for p, a in zip(rule.params, args, strict=True) if p.var}
                env.update(bound)
                for condition in rule.conditions:
                    call = _call(condition, env)
                    if call is not None:
                        proof.children += self.prove(call[0], call[1], depth + 1)
            proofs.append(proof)
        self._memo[key] = proofs
        return proofs

    def misses(self, actor: Principal, action: str, resource: object) -> list[Miss]:
        """The rules that could have granted `action`, each with the condition that failed."""
        found = []
        for rule in self.policy.rules:
            if rule.name != "has_permission" or rule.resource_type != type_of(resource):
                continue
            if rule.action not in (None, action):
                continue
            args: list[object] = [actor, action, resource]
            if self._bound(rule, 0, args) is None:
                wanted = rule.params[0].type
                found.append(Miss(rule, f"the actor is not a {wanted}", {}))
                continue
            for upto in range(1, len(rule.conditions) + 1):
                if self._bound(rule, upto, args) is None:
                    before = self._bound(rule, upto - 1, args) or {}
                    condition = rule.conditions[upto - 1]
                    values = _values(condition, before)
                    found.append(Miss(rule, condition, values))
                    break
        return found

    def related(self, resource: object) -> list[object]:
        """`resource` and what it is related to, transitively (gallery, site, organization)."""
        seen: list[object] = [resource]
        for obj in seen:
            block = self.policy.blocks.get(type_of(obj) or "")
            for relation in block.relations if block else {}:
                for result in self.engine.oso.query_rule(
                    "has_relation", Variable("x"), relation, obj
                ):
                    other = result["bindings"]["x"]
                    if all(other is not s for s in seen):
                        seen.append(other)
                    break
        return seen

    def roles(self, actor: Principal, resource: object) -> list[RoleHeld]:
        held = []
        for obj in self.related(resource):
            block = self.policy.blocks.get(type_of(obj) or "")
            for role in block.roles if block else []:
                proofs = self.prove("has_role", [actor, role, obj])
                if proofs:
                    held.append(RoleHeld(
                        role, describe(obj), any(not p.rule.shorthand for p in proofs),
                        [p.rule.where for p in proofs],
                    ))
        return held

    def is_allowed(self, actor: Principal, action: str, resource: object) -> bool:
        """oso's own decision, with the probes loaded beside the policy."""
        return bool(self.engine.oso.is_allowed(actor, action, resource))

    def explain(
        self, actor: Principal, action: str, resource: object, model_sql: type | None = None,
    ) -> Explanation:
        allowed = self.is_allowed(actor, action, resource)
        proofs = self.prove("allow", [actor, action, resource])
        misses = [] if proofs else self.misses(actor, action, resource)
        sql = None
        if model_sql is not None:
            sql = where_sql(self.engine, actor, action, model_sql)
        return Explanation(
            describe(actor), action, describe(resource), allowed, proofs, misses,
            self.roles(actor, resource), sql,
        )


def _values(condition: str, bound: dict[str, object]) -> dict[str, str]:
    """What the variables and fields a condition reads held (`gallery.created_by = ...`)."""
    values = {}
    for name, attr in re.findall(r"\b([a-z_]\w*)(?:\.([a-z_]\w*))?(?!\s*\()", condition):
        if name not in bound or isinstance(bound[name], Variable):
            continue
        value = bound[name]
        if attr and hasattr(value, attr) and not callable(getattr(value, attr)):
            values[f"{name}.{attr}"] = _short(getattr(value, attr))
        elif not attr:
            values[name] = describe(value)
    return values


def _short(value: object) -> str:
    return describe(value) if type_of(value) and not isinstance(value, str) else repr(
        value if not isinstance(value, uuid.UUID) else str(value))


def _call(condition: str, env: dict[str, object]) -> tuple[str, list[object]] | None:
    """A condition that calls a rule, with its arguments' values; None otherwise or when
    an argument is not a literal or a bound variable."""
    match = _CALL.match(condition)
    if match is None or match.group(1) not in CALLED:
        return None
    args: list[object] = []
    for text in split_top(match.group(2), ","):
        if text.startswith('"'):
            args.append(text.strip('"'))
        elif text in env and not isinstance(env[text], Variable):
            args.append(env[text])
        else:
            return None
    return match.group(1), args


def where_sql(engine: AuthzEngine, actor: Principal, action: str, model: type) -> str:
    """The WHERE clause list endpoints add for `actor` and `action` on `model`, as
    PostgreSQL runs it (values inlined)."""
    from sqlalchemy.dialects import postgresql

    where = engine.oso.authorized_query(actor, action, model).where
    compiled = where.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled)


__all__ = ["Explanation", "Reviewer", "describe", "type_of"]

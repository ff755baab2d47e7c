"""Python asks the policy; it never decides. Read from the code itself (ast), so a new view
that composes a permission name or tests what kind of actor is calling fails here, and a
reviewer reading `policies/` sees every rule there is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
# The policy engine itself, the actor classes, the matrix that renders the policy and the
# reviewer's tools (review/): the only code allowed to handle actor kinds and permission
# names as data.
AUTHZ = APP / "authz"
ASKING = {"authorize", "authorized", "is_allowed", "condition", "filter", "deny"}
ACTOR_CLASSES = {"Principal", "UserActor", "ApiClientActor", "IngestClientActor"}


def sources() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(), str(path)))
        for path in sorted(APP.rglob("*.py"))
        if AUTHZ not in path.parents
    ]


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def composed_actions(tree: ast.Module) -> list[int]:
    """Lines where a policy question's action is not a plain string literal."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in ASKING:
            args = node.args
            # authorize(actor, ACTION, resource); authorized(stmt, actor, ACTION, Model)
            index = 2 if _name(node.func) == "authorized" else 1
            if len(args) > index and not (
                isinstance(args[index], ast.Constant) and isinstance(args[index].value, str)
            ):
                lines.append(node.lineno)
    return lines


def actor_type_tests(tree: ast.Module) -> list[int]:
    """Lines that test an actor's class or kind, or import an actor class."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in ("isinstance", "issubclass", "type"):
            names = {_name(n) for arg in node.args[1:] for n in ast.walk(arg)}
            if names & ACTOR_CLASSES:
                lines.append(node.lineno)
        if isinstance(node, ast.Compare) and any(
            isinstance(side, ast.Attribute) and side.attr == "kind"
            for side in (node.left, *node.comparators)
        ):
            lines.append(node.lineno)
    return lines


def actor_imports(tree: ast.Module) -> list[int]:
    """Lines importing an actor class at run time. An import under `if TYPE_CHECKING:`
    serves annotations only: the name does not exist when the code runs, so nothing can
    test a class with it."""
    for_annotations = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _name(node.test) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and id(node) not in for_annotations
        and {alias.name for alias in node.names} & ACTOR_CLASSES
    ]


# Where actors are made (from a token or a key) may name their classes; nothing decides
# on them there either (actor_type_tests still applies).
MAKERS = {APP / "services" / "identity.py", APP / "services" / "credentials.py"}


def test_no_code_outside_the_policy_composes_a_permission_name():
    found = [f"{p.relative_to(APP.parent)}:{line}"
             for p, tree in sources() for line in composed_actions(tree)]
    assert not found, f"a permission name built in Python (write it in policies/): {found}"


def test_no_code_outside_the_policy_tests_an_actor_type():
    found = [f"{p.relative_to(APP.parent)}:{line}"
             for p, tree in sources() for line in actor_type_tests(tree)]
    found += [f"{p.relative_to(APP.parent)}:{line} imports an actor class"
              for p, tree in sources() if p not in MAKERS for line in actor_imports(tree)]
    assert not found, f"an actor kind decided in Python (say it in policies/): {found}"


@pytest.mark.parametrize(
    ("code", "composed", "typed"),
    [
        ('authorize(me, f"grant_{role}", org)', True, False),
        ('authorize(me, "grant_" + role, org)', True, False),
        ("authorized(stmt, me, action, Site)", True, False),
        ('authorize(me, "read", org)', False, False),
        ("isinstance(me, UserActor)", False, True),
        ('me.kind == "user"', False, True),
        ("isinstance(x, (int, IngestClientActor))", False, True),
        ("isinstance(x, dict)", False, False),
    ],
)
def test_the_checks_catch_what_they_say(code, composed, typed):
    tree = ast.parse(code)
    assert bool(composed_actions(tree)) is composed
    assert bool(actor_type_tests(tree)) is typed


@pytest.mark.parametrize(
    ("code", "flagged"),
    [
        ("from app.authz.actors import UserActor", True),
        ("from app.authz.actors import Principal", True),
        ("if TYPE_CHECKING:\n    from app.authz.actors import Principal", False),
        ("if typing.TYPE_CHECKING:\n    from app.authz.actors import UserActor", False),
        ("if DEBUG:\n    from app.authz.actors import UserActor", True),
    ],
)
def test_only_run_time_imports_of_actor_classes_are_flagged(code, flagged):
    assert bool(actor_imports(ast.parse(code))) is flagged

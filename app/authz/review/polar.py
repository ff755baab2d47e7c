"""The rules of the `.polar` files, each with the file and line a reviewer reads it at.

oso 0.27 exposes no parse tree, so this is a small parser of what the policies use: rules
(`name(params) if a and b;`, split into their top-level conditions) and resource blocks,
whose shorthand rules (`"x" if "y";`, `"x" if "y" on "rel";`) are expanded into the rules
oso itself derives from them. `probes()` turns every rule into Polar that oso evaluates
alone (see explain.py); nothing here decides anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

KEYWORDS = {"and", "or", "not", "in", "matches", "if", "nil", "true", "false", "forall",
            "cut", "print", "new", "isa"}
_IDENT = re.compile(r"(?<![\w.])([a-z_]\w*)\b(?!\s*\()")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_CALL = re.compile(r"^(\w+)\((.*)\)$", re.S)


@dataclass(frozen=True)
class Param:
    """One head parameter: a variable (`user: User`, `action`) or a literal (`"delete"`)."""

    text: str
    var: str | None
    literal: str | None
    type: str | None


@dataclass(frozen=True)
class Rule:
    """file: relative to the project (`policies/x.polar`); text: as written, on one line;
    conditions: the top-level conjuncts of the body (a shorthand rule's expansion)."""

    file: str
    line: int
    text: str
    name: str
    params: tuple[Param, ...]
    conditions: tuple[str, ...]
    shorthand: bool = False

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def resource_type(self) -> str | None:
        """The type of the resource the rule is about (its last parameter's specializer)."""
        return self.params[-1].type if self.params else None

    @property
    def action(self) -> str | None:
        """For has_permission/has_role: the permission or role literal, if the head names one."""
        return self.params[1].literal if len(self.params) == 3 else None

    def variables(self, upto: int) -> list[str]:
        """Variables of the head and of the first `upto` conditions, in order of appearance."""
        found: list[str] = []
        for text in [p.text for p in self.params] + list(self.conditions[:upto]):
            for name in _IDENT.findall(_STRING.sub('""', text)):
                if name not in KEYWORDS and not name.startswith("_") and name not in found:
                    found.append(name)
        return found


@dataclass
class Block:
    name: str
    file: str
    line: int
    roles: list[str] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    relations: dict[str, str] = field(default_factory=dict)


@dataclass
class Policy:
    rules: list[Rule]
    blocks: dict[str, Block]


def _strip_comments(text: str) -> str:
    """Comments become spaces, so offsets (and lines) stay where they were."""
    out, in_string, i = [], False, 0
    while i < len(text):
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif c == "#":
            while i < len(text) and text[i] != "\n":
                out.append(" ")
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _outside_strings(text: str) -> Iterator[tuple[int, str, int]]:
    """(index, character, bracket depth) of each character outside string literals; a
    closing bracket is reported at the depth it closes back to."""
    depth, in_string, i = 0, False, 0
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        else:
            depth -= c in ")]}"
            yield i, c, depth
            depth += c in "([{"
        i += 1


def split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` (a word like `and`, or `,`/`;`) outside strings and brackets."""
    parts, start = [], 0
    word = sep.isalpha()

    def bounded(i: int) -> bool:
        after = text[i + len(sep):i + len(sep) + 1]
        return (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) and not (
            after.isalnum() or after == "_")

    for i, _, depth in _outside_strings(text):
        if i >= start and depth == 0 and text.startswith(sep, i) and (not word or bounded(i)):
            parts.append(text[start:i])
            start = i + len(sep)
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _statements(text: str) -> list[tuple[int, str]]:
    """(offset, statement) for each `;`-ended statement or `{}` block at depth 0."""
    found, start = [], 0
    for i, c, depth in _outside_strings(text):
        if depth == 0 and c == "}" and re.match(r"\s*(resource|actor)\b", text[start:]):
            found.append((start, text[start:i + 1]))
            start = i + 1
        elif c == ";" and depth == 0:
            found.append((start, text[start:i]))
            start = i + 1
    return [(offset + len(s) - len(s.lstrip()), s.strip()) for offset, s in found if s.strip()]


def _param(text: str) -> Param:
    if text.startswith('"'):
        return Param(text, None, text.strip('"'), None)
    var, _, typ = (t.strip() for t in text.partition(":"))
    return Param(text, var, None, typ or None)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _rule(file: str, line: int, statement: str) -> Rule:
    head, *rest = split_top(statement, "if")
    body = " if ".join(rest)
    match = _CALL.match(head.strip())
    if match is None:
        raise ValueError(f"{file}:{line}: cannot read the rule head {head!r}")
    params = tuple(_param(p) for p in split_top(match.group(2), ","))
    conditions = tuple(_one_line(c) for c in split_top(body, "and")) if body else ()
    return Rule(file, line, _one_line(statement) + ";", match.group(1), params, conditions)


def _block(file: str, line: int, statement: str) -> tuple[Block, list[tuple[int, str]]]:
    """The block's declarations, and its shorthand rules as (line within the body, text)."""
    kind_name, _, inner = statement.partition("{")
    block = Block(kind_name.split()[1], file, line)
    inner = inner.rsplit("}", 1)[0]
    shorthands = []
    for offset, stmt in _statements(inner):
        at = inner.count("\n", 0, offset)
        key, eq, value = stmt.partition("=")
        key = key.strip()
        if eq and key in ("roles", "permissions"):
            getattr(block, key).extend(s.strip('"') for s in _STRING.findall(value))
        elif eq and key == "relations":
            for pair in split_top(value.strip().strip("{}"), ","):
                rel, _, typ = (t.strip() for t in pair.partition(":"))
                block.relations[rel] = typ
        else:
            shorthands.append((at, stmt))
    return block, shorthands


def _expand(block: Block, blocks: dict[str, Block], file: str, line: int, stmt: str) -> Rule:
    """A shorthand rule as the rule oso derives from it."""
    strings = [s.strip('"') for s in _STRING.findall(stmt)]
    target, source = strings[0], strings[1]
    name = "has_role" if target in block.roles else "has_permission"
    resource = block.name.lower()
    params = (Param("actor: Actor", "actor", None, "Actor"),
              Param(f'"{target}"', None, target, None),
              Param(f"{resource}: {block.name}", resource, None, block.name))
    if len(strings) == 3:  # "x" if "y" on "rel"
        relation = strings[2]
        other = blocks[block.relations[relation]]
        ask = "has_role" if source in other.roles else "has_permission"
        conditions: tuple[str, ...] = (
            f"related matches {other.name}",
            f'has_relation(related, "{relation}", {resource})',
            f'{ask}(actor, "{source}", related)',
        )
    else:
        ask = "has_role" if source in block.roles else "has_permission"
        conditions = (f'{ask}(actor, "{source}", {resource})',)
    return Rule(file, line, _one_line(stmt) + ";", name, params, conditions, shorthand=True)


def parse(policy_dir: str | Path, root: str | Path | None = None) -> Policy:
    """Every rule of every `.polar` file in `policy_dir`, in file and line order. `root`:
    what `Rule.file` is relative to (default: the policy directory's parent)."""
    policy_dir = Path(policy_dir)
    base = Path(root) if root is not None else policy_dir.parent
    rules: list[Rule] = []
    blocks: dict[str, Block] = {}
    pending: list[tuple[Block, str, int, str]] = []
    for path in sorted(policy_dir.glob("*.polar")):
        file = str(path.relative_to(base)) if path.is_relative_to(base) else path.name
        text = _strip_comments(path.read_text())
        for offset, stmt in _statements(text):
            line = text.count("\n", 0, offset) + 1
            if stmt.startswith("actor "):
                continue
            if stmt.startswith("resource "):
                body_offset = offset + stmt.index("{") + 1
                block, shorthands = _block(file, line, stmt)
                for at, short in shorthands:
                    inner_line = text.count("\n", 0, body_offset) + 1 + at
                    pending.append((block, file, inner_line, short))
                blocks[block.name] = block
                continue
            rules.append(_rule(file, line, stmt))
    rules += [_expand(block, blocks, file, line, stmt) for block, file, line, stmt in pending]
    rules.sort(key=lambda r: (r.file, r.line))
    return Policy(rules, blocks)

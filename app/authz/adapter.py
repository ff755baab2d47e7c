"""Compile Oso's data filters into SQLAlchemy boolean expressions.

Oso describes the allowed rows of a type as a disjunction of conjunctions of comparisons
(`Field op Field|value`) over the root type and types joined to it by `Relation`s. The
adapter shipped with oso turns that into a legacy `Query` with inner joins and
`SELECT DISTINCT`, and compiles `In` with Python's `in`. This one returns a plain
boolean expression over the root model, so endpoints compose it with `select()`:

- a comparison on a related type's key is rewritten onto the foreign key of the row that
  points at it (`organizations.id = X` via `sites.parent` becomes `sites.org_id = X`), and
  so is one on a column a composite foreign key pins to a column of that row
  (`galleries (site_id, org_id) -> sites (id, org_id)`: `sites.org_id` is
  `galleries.org_id`), so the common role checks need no join at all;
- what still needs a related row becomes a correlated `EXISTS`;
- single-comparison disjuncts on one column collapse into one `IN (...)`;
- comparisons keep Python's semantics for NULL (`IS DISTINCT FROM`, `NOT IN` or NULL);
- anything else raises `UnsupportedFilter` instead of compiling to something silently wrong.

Relations must be many-to-one over a non-nullable foreign key: then oso's inner join
never drops a row, and disjuncts that do not mention the related type need no EXISTS.

A filter template (app/authz/templates.py) compiles oso's filter for a probe actor whose
grants are placeholders, once per (actor class, action, model); `Placeholders` then
stands each placeholder for the real actor's list: `col = placeholder` in a disjunct
becomes `col IN (the actor's ids)`. A placeholder anywhere that union cannot express
exactly (twice in one conjunction, under `!=` or `in`, compared with a literal) raises
`UnsupportedFilter`, so the template is refused rather than wrong.

Oso also calls the adapter while deciding `is_allowed` on one object, to follow a
relation (`site.parent`): that filter is a primary-key lookup, answered by
`Session.get`, so an object the request already loaded costs no query.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from polar.data.adapter import DataAdapter
from polar.data.filter import Condition, DataFilter, Projection
from sqlalchemy import ColumnElement, and_, exists, false, inspect, or_, select, true
from sqlalchemy.orm import Mapper, Session, aliased


class UnsupportedFilter(RuntimeError):
    """Oso produced a filter this adapter cannot compile faithfully."""


class _Nowhere:
    """What a relation whose key points at no row leads to: equal to nothing."""

    def __repr__(self) -> str:
        return "NOWHERE"


NOWHERE = _Nowhere()


class _Literal:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Placeholders:
    """Literals that stand for lists of values (a filter template's grants)."""

    def stands_for(self, value: Any) -> tuple[object, Sequence[Any]] | None:
        """(what it names, its values) when `value` is a placeholder, else None (a plain
        literal); raises UnsupportedFilter for one it does not know."""
        return None


NO_PLACEHOLDERS = Placeholders()


@dataclass(frozen=True)
class CompiledFilter:
    model: type
    where: ColumnElement[bool]
    lookup: bool = False  # the filter is exactly `pk = key`: oso following a relation
    key: Any = None
    source: DataFilter | None = None  # oso's filter, which a template compiles again


def compile_filter(f: DataFilter, placeholders: Placeholders) -> ColumnElement[bool]:
    """`f` as a WHERE clause, each placeholder standing for its values."""
    return _Compiler(f, placeholders).compile()


class SqlFilterAdapter(DataAdapter):
    def __init__(self, session: Callable[[], Session]) -> None:
        self.session = session

    def build_query(self, filter: DataFilter) -> CompiledFilter:
        lookup, key = _primary_key(filter)
        where = _Compiler(filter, NO_PLACEHOLDERS).compile()
        return CompiledFilter(filter.model, where, lookup, key, filter)

    def execute_query(self, query: CompiledFilter) -> list[Any]:
        session = self.session()
        if query.lookup:
            # oso asserts exactly one row for a "one" relation. A NULL or dangling key
            # answers NOWHERE, which equals no resource, so the relation does not hold
            # (None would make oso read the attribute off the row instead).
            found = None if query.key is None else session.get(query.model, query.key)
            return [NOWHERE if found is None else found]
        return list(session.scalars(select(query.model).where(query.where)))


def _primary_key(f: DataFilter) -> tuple[bool, Any]:
    if f.relations or len(f.conditions) != 1 or len(f.conditions[0]) != 1:
        return False, None
    cond = f.conditions[0][0]
    key = inspect(f.model).primary_key[0].name
    if (
        cond.cmp == "Eq"
        and isinstance(cond.left, Projection)
        and cond.left.source is f.model
        and (cond.left.field or key) == key
        and not isinstance(cond.right, Projection)
    ):
        return True, cond.right
    return False, None


class _Compiler:
    def __init__(self, f: DataFilter, placeholders: Placeholders) -> None:
        self.placeholders = placeholders
        self.root = f.model
        self.types = f.types
        # type -> (parent type, my_field on parent, other_field on type)
        self.edges: dict[type, tuple[type, str, str]] = {}
        for rel in f.relations:
            spec = self.types[rel.left].fields[rel.name]
            if spec.kind != "one":
                raise UnsupportedFilter(f"relation {rel.name!r} must be many-to-one")
            if rel.right is self.root or rel.right in self.edges:
                raise UnsupportedFilter(f"type {rel.right.__name__} is joined more than once")
            self.edges[rel.right] = (rel.left, spec.my_field, spec.other_field)
        self.disjuncts = f.conditions

    def compile(self) -> ColumnElement[bool]:
        in_lists: dict[str, set[Any]] = defaultdict(set)
        others: list[ColumnElement[bool]] = []
        seen: set[frozenset[str]] = set()  # oso repeats a conjunction once per role path
        for conjunction in self.disjuncts:
            conditions = [self._normalize(c) for c in conjunction]
            if any(c is False for c in conditions):
                continue
            conditions = [c for c in conditions if c is not True]
            if not conditions:
                return true()
            self._once_each(conditions)
            single = conditions[0] if len(conditions) == 1 else None
            if single is not None and _is_root_equality(single):
                column, value = single
                stands = self.placeholders.stands_for(value)
                in_lists[column].update([value] if stands is None else stands[1])
                continue
            signature = frozenset(repr(self._plain(c)) for c in conditions)
            if signature not in seen:
                seen.add(signature)
                others.append(self._conjunction(conditions))
        parts = [self._column(self.root, col).in_(sorted(vals, key=str)) for col, vals in
                 sorted(in_lists.items())]
        parts.extend(others)
        if not parts:
            return false()
        return parts[0] if len(parts) == 1 else or_(*parts)

    # -- conditions -------------------------------------------------------------------------

    def _normalize(self, cond: Condition) -> Any:
        """Rewrite a condition onto the root where possible; fold literal-only ones."""
        left, right = self._side(cond.left), self._side(cond.right)
        op = cond.cmp
        if op not in ("Eq", "Neq", "In", "Nin"):
            raise UnsupportedFilter(f"comparison {op!r}")
        if isinstance(left, _Literal) and isinstance(right, _Literal):
            if self._placeholder(left.value) or self._placeholder(right.value):
                raise UnsupportedFilter("a placeholder compared with a literal")
            return _evaluate(op, left.value, right.value)
        if op in ("Eq", "Neq") and isinstance(left, _Literal):
            left, right = right, left
        if op != "Eq" and isinstance(right, _Literal) and any(
            self._placeholder(v) for v in _members(right.value)
        ):
            raise UnsupportedFilter(f"a placeholder under {op!r}: only `=` stands for a list")
        if op in ("In", "Nin") and not isinstance(right, _Literal):
            raise UnsupportedFilter(f"{op} against a field: only literal lists compile")
        if op in ("In", "Nin") and not isinstance(right.value, list | tuple | set | frozenset):
            raise UnsupportedFilter(f"{op} against a non-list literal")
        if op == "Eq" and isinstance(right, _Literal) and left[0] is self.root:
            return (left[1], right.value)  # root column = literal: the common, indexable case
        return (op, left, right)

    def _placeholder(self, value: Any) -> bool:
        return self.placeholders.stands_for(value) is not None

    def _once_each(self, conditions: list[Any]) -> None:
        """A placeholder used twice in one conjunction binds both uses to the same value:
        no pair of independent `IN` lists says that."""
        used = [v for c in conditions for v in _literals(c) if self._placeholder(v)]
        if len(used) != len(set(used)):
            raise UnsupportedFilter("a placeholder used twice in one conjunction")

    def _plain(self, cond: Any) -> Any:
        """A normalized condition with literals unwrapped, placeholders by what they name:
        equal conditions look equal."""
        def plain(value: Any) -> Any:
            stands = self.placeholders.stands_for(value)
            return value if stands is None else ("placeholder", stands[0])

        return tuple(plain(c.value if isinstance(c, _Literal) else c) for c in cond)

    def _side(self, side: Any) -> Any:
        if isinstance(side, Projection):
            return self._hoist(side.source, side.field or _identity(side.source))
        mapper = inspect(type(side), raiseerr=False)
        if mapper is not None and hasattr(mapper, "primary_key"):
            return _Literal(getattr(side, mapper.primary_key[0].name))
        if side is None or isinstance(side, str | int | float | bool | list | tuple):
            return _Literal(side)
        if type(side).__module__ in ("uuid", "datetime", "decimal"):
            return _Literal(side)
        raise UnsupportedFilter(f"cannot compile a literal of type {type(side).__name__}")

    def _hoist(self, source: type, field: str) -> tuple[type, str]:
        """Follow `related.field` back along the relations while a foreign key guarantees
        the row pointing at it holds the same value in one of its own columns."""
        while source is not self.root:
            parent, my_field, other_field = self._edge(source)
            same = _pinned_columns(parent, my_field, source, other_field).get(field)
            if same is None:
                break
            source, field = parent, same
        return (source, field)

    def _edge(self, source: type) -> tuple[type, str, str]:
        if source not in self.edges:
            raise UnsupportedFilter(f"type {source.__name__} is not related to the root")
        return self.edges[source]

    def _conjunction(self, conditions: list[Any]) -> ColumnElement[bool]:
        related = {
            proj[0]
            for cond in conditions
            for proj in _projections(cond)
            if proj[0] is not self.root
        }
        if not related:
            return and_(*(self._sql(c, {}) for c in conditions))
        # Every type on the path from the root to a referenced type goes into one EXISTS.
        path: set[type] = set()
        for t in related:
            while t is not self.root:
                path.add(t)
                t = self._edge(t)[0]
        alias: dict[type, Any] = {t: aliased(t) for t in path}
        joins = [
            self._column(child, other_field, alias) == self._column(parent, my_field, alias)
            for child in path
            for parent, my_field, other_field in [self.edges[child]]
        ]
        where = joins + [self._sql(c, alias) for c in conditions]
        return exists(select(1).select_from(*alias.values()).where(*where).correlate(self.root))

    def _sql(self, cond: Any, alias: dict[type, Any]) -> ColumnElement[bool]:
        if len(cond) == 2:
            column, value = cond
            stands = self.placeholders.stands_for(value)
            if stands is not None:
                return self._column(self.root, column).in_(stands[1])
            return self._column(self.root, column) == value
        op, left, right = cond
        lhs = self._column(left[0], left[1], alias)
        nullable = _nullable(left[0], left[1])
        if isinstance(right, _Literal):
            value = right.value
            stands = self.placeholders.stands_for(value)
            if stands is not None:  # only under Eq (see _normalize); never NULL
                return lhs.in_(stands[1])
            if op == "Eq":
                return lhs.is_(None) if value is None else lhs == value
            if op == "Neq":
                return lhs.is_not(None) if value is None else lhs.is_distinct_from(value)
            # Python's `in`: None is in a list that holds None; SQL's IN never matches NULL.
            values = sorted((v for v in value if v is not None), key=str)
            has_none = len(values) < len(value)
            if op == "In":
                match = lhs.in_(values)
                return or_(lhs.is_(None), match) if has_none and nullable else match
            miss = lhs.not_in(values)
            if not nullable:
                return miss
            return and_(lhs.is_not(None), miss) if has_none else or_(lhs.is_(None), miss)
        rhs = self._column(right[0], right[1], alias)
        either_nullable = nullable or _nullable(right[0], right[1])
        if op == "Eq":
            return lhs.is_not_distinct_from(rhs) if either_nullable else lhs == rhs
        if op == "Neq":
            return lhs.is_distinct_from(rhs) if either_nullable else lhs != rhs
        raise UnsupportedFilter(f"{op} between two fields")

    def _column(self, model: type, field: str, alias: dict[type, Any] | None = None) -> Any:
        target = model if model is self.root else (alias or {}).get(model)
        if target is None:
            raise UnsupportedFilter(f"{model.__name__}.{field} is outside the query")
        try:
            return getattr(target, field)
        except AttributeError as exc:
            raise UnsupportedFilter(f"{model.__name__} has no column {field!r}") from exc


@functools.cache
def _pinned_columns(child: type, my_field: str, parent: type, other_field: str) -> dict[str, str]:
    """Parent attribute -> child attribute with the same value in every row, by a foreign
    key of the child that includes `child.my_field -> parent.other_field`: the join key
    itself, and the other columns of a composite key (e.g. org_id)."""
    child_mapper: Mapper[Any] = inspect(child)
    parent_mapper: Mapper[Any] = inspect(parent)
    pinned = {other_field: my_field}
    join = (child_mapper.columns[my_field], parent_mapper.columns[other_field])
    for fk in child_mapper.local_table.foreign_key_constraints:  # type: ignore[attr-defined]  # typed FromClause; a model's is a Table
        pairs = [(element.parent, element.column) for element in fk.elements]
        if fk.referred_table is not parent_mapper.local_table or join not in pairs:
            continue
        for child_column, parent_column in pairs:
            pinned[parent_mapper.get_property_by_column(parent_column).key] = (
                child_mapper.get_property_by_column(child_column).key
            )
    return pinned


def _identity(model: type) -> str:
    """The column that stands for a whole row when oso compares rows themselves."""
    mapper: Mapper[Any] = inspect(model)
    key = mapper.primary_key
    if len(key) != 1:
        raise UnsupportedFilter(f"{model.__name__} has a composite key: compare a field")
    return mapper.get_property_by_column(key[0]).key  # the attribute (`_column` reads it)


def _literals(cond: Any) -> list[Any]:
    """The literal values of a normalized condition (list members included)."""
    if len(cond) == 2:
        return [cond[1]]
    return [v for side in cond[1:] if isinstance(side, _Literal) for v in _members(side.value)]


def _members(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | set | frozenset) else [value]


def _projections(cond: Any) -> list[tuple[type, str]]:
    if len(cond) == 2:
        return []
    return [side for side in cond[1:] if isinstance(side, tuple)]


def _is_root_equality(cond: Any) -> bool:
    """`root.column = literal` (not NULL: `IN (NULL)` would never match)."""
    return len(cond) == 2 and cond[1] is not None


def _nullable(model: type, field: str) -> bool:
    mapper: Mapper[Any] = inspect(model)
    column = mapper.columns.get(field)
    return column is None or bool(column.nullable)


def _evaluate(op: str, left: Any, right: Any) -> bool:
    if op == "Eq":
        return bool(left == right)
    if op == "Neq":
        return bool(left != right)
    if op == "In":
        return left in right
    return left not in right

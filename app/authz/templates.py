"""Filter templates: oso's data filter for a kind of actor, compiled once, filled per actor.

Oso's partial evaluation costs tens of milliseconds and grows with the actor's grants (it
enumerates every id of every list the policy reads). Its result depends on those ids only
through disjuncts of the form `... and column = id`, one per id. So the engine asks oso
once per (actor class, action, model), for a *probe* actor of that class whose every read
answers distinct placeholder ids (one per call: `org_ids("viewer")` gives `[P1]`, its
`id` is `P2`, ...), and keeps oso's filter. A real actor's filter is that same filter
compiled with each placeholder standing for what the same read answers for it
(`column = P1` becomes `column IN (its viewer organizations)`): the same disjuncts oso
would enumerate, in one `IN` each, at a cost independent of the grants.

It is exact under conditions checked here, else the engine asks oso itself:
- for the template: the probe read nothing but `Principal.POLICY_READS` and the actor's
  fields, every answer shows in oso's filter (none was consumed by the evaluation, e.g.
  compared with a literal), and sits where a list can stand for it (`adapter.Placeholders`);
  a template refused is logged once, as a WARNING;
- for an actor: every value it answers is a UUID (no None: `column = NULL` is not `IN`) and
  no id is answered by two different reads (the probe's placeholders never equal each other,
  so oso never saw two reads agree; an actor whose reads agree is left to oso).
`tests/authz/test_parity.py` checks template == oso's filter == `is_allowed`, row for row.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from oso import Oso
from sqlalchemy import ColumnElement

from app.authz.actors import Principal
from app.authz.adapter import CompiledFilter, Placeholders, UnsupportedFilter, compile_filter

Read = tuple[str, tuple[object, ...]]  # (attribute, call arguments; () for a field)


class _Minted(Placeholders):
    """Placeholder ids under a random 64-bit prefix (no real id shares it), each naming
    the read that answered it; `fill` gives the values a real actor answers."""

    def __init__(self) -> None:
        self.prefix = secrets.randbits(64) << 64
        self.reads: dict[uuid.UUID, Read] = {}

    def mint(self, read: Read) -> uuid.UUID:
        placeholder = uuid.UUID(int=self.prefix | (len(self.reads) + 1))
        self.reads[placeholder] = read
        return placeholder

    def stands_for(self, value: Any) -> tuple[object, Sequence[Any]] | None:
        if not isinstance(value, uuid.UUID) or value.int >> 64 << 64 != self.prefix:
            return None
        read = self.reads.get(value)
        if read is None:
            raise UnsupportedFilter("a placeholder no read answered")
        return read, [value]


class _Filled(Placeholders):
    def __init__(self, minted: _Minted, values: dict[Read, Sequence[Any]]) -> None:
        self.minted, self.values = minted, values

    def stands_for(self, value: Any) -> tuple[object, Sequence[Any]] | None:
        stands = self.minted.stands_for(value)
        return None if stands is None else (stands[0], self.values[stands[0]])  # type: ignore[index]  # a Read


def _probe(cls: type[Principal], minted: _Minted, strays: list[str],
           shape: dict[str, Any]) -> Principal:
    """An actor of class `cls` (so the policy's specializers match it) whose reads answer
    placeholders, but for its `shape` (`Principal.POLICY_SHAPE`: values the policy tests
    rather than lists it matches ids against, such as whether an address is proven), which
    answer the real actor's own; any other public attribute read is noted in `strays`."""
    fields = {f.name for f in dataclasses.fields(cls)}
    reads = cls.POLICY_READS

    class Probe(cls):  # type: ignore[valid-type,misc]  # a subclass of whichever actor class
        def __getattribute__(self, name: str) -> Any:
            if name in shape:
                return shape[name]
            if name in reads:
                return lambda *args: [minted.mint((name, args))]
            if name in fields and not name.startswith("_") and name != "decisions":
                return minted.mint((name, ()))
            if not name.startswith("_"):
                strays.append(name)
            return object.__getattribute__(self, name)

    Probe.__name__ = Probe.__qualname__ = f"Probe{cls.__name__}"
    return Probe(id=uuid.uuid4())


def _answer(actor: Principal, read: Read) -> Sequence[Any] | None:
    """What `actor` answers to `read` as a list of ids (UUIDs, or strings such as the
    address invitations are matched on), or None when it cannot be a list."""
    name, args = read
    value = getattr(actor, name)
    answer = list(value(*args)) if callable(value) else [value]
    return answer if all(isinstance(v, uuid.UUID | str) for v in answer) else None


def _members(side: Any) -> list[Any]:
    return list(side) if isinstance(side, list | tuple | set | frozenset) else [side]


@dataclass(frozen=True)
class Template:
    """Oso's filter for a probe actor, and how to fill it in for a real one."""

    compiled: CompiledFilter
    minted: _Minted
    reads: frozenset[Read]

    @classmethod
    def build(cls, oso: Oso, actor_cls: type[Principal], action: str, model: type,
              shape: dict[str, Any]) -> Template:
        """Raises UnsupportedFilter when the template could not stand for oso's filter."""
        minted, strays = _Minted(), list[str]()
        compiled = oso.authorized_query(_probe(actor_cls, minted, strays, shape), action, model)
        if strays:
            raise UnsupportedFilter(f"the policy reads {sorted(set(strays))} of the actor")
        if compiled.source is None:
            raise UnsupportedFilter("oso's filter was not kept")
        compile_filter(compiled.source, minted)  # every placeholder where a list can stand
        shown = {v for conjunction in compiled.source.conditions for c in conjunction
                 for side in (c.left, c.right) for v in _members(side)}
        consumed = sorted({read[0] for p, read in minted.reads.items() if p not in shown})
        if consumed:  # e.g. compared with a literal while oso evaluated: its answer mattered
            raise UnsupportedFilter(f"the policy reads {consumed} other than against a column")
        return cls(compiled, minted, frozenset(minted.reads.values()))

    def fill(self, actor: Principal) -> ColumnElement[bool] | None:
        """The filter for `actor`, or None when the template is not exact for it."""
        values: dict[Read, Sequence[Any]] = {}
        seen: set[Any] = set()
        for read in self.reads:
            answer = _answer(actor, read)
            if answer is None or seen.intersection(answer):
                return None
            seen.update(answer)
            values[read] = answer
        assert self.compiled.source is not None  # checked by build
        return compile_filter(self.compiled.source, _Filled(self.minted, values))


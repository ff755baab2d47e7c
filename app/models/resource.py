"""What the authorization policy knows of a model, declared beside it: `__resource__`.

One description per model, from which everything else that needs the list of resources
is derived: the policy engine's class registration (app/authz/engine.py), the samples the
permission matrix asks about (app/authz/matrix.py), the rows the parity test seeds, the
resources the tenant-isolation test puts behind each path id, and the check that every
tenant table is under row-level security. Adding a resource touches its model (this
description), its policy block and its migration; a test fails when one is missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.db import Base


@dataclass
class Place:
    """Where a sample row goes: its organization and site, who created it, and rows of
    other models it points at (made on demand by `make`)."""

    org: Any
    site: Any
    created_by: uuid.UUID | None = None
    made: dict[type, Any] = field(default_factory=dict)

    def of(self, model: type) -> Any:
        """The row of `model` this place's samples point at (made once)."""
        if model not in self.made:
            self.made[model] = make(model, self)
        return self.made[model]


@dataclass(frozen=True)
class Resource:
    """fields:    columns the policy may read (their types come from the model);
    relations:    Polar relation name -> (related model name, this model's column that
                  holds its id): many-to-one;
    tenant:       rows of an organization (`org_id`): row-level security applies;
    sample:       a valid, unsaved row at a `Place` (other rows through `place.of`);
    path_param:   the URL parameter that names one of these rows;
    name:         the policy's name for it, when not the class name;
    decided_by:   the policy reads nothing of it but these columns: decisions about one are
                  memoized per actor (AuthzEngine.is_allowed)."""

    fields: tuple[str, ...]
    sample: Callable[[Place], Any]
    relations: dict[str, tuple[str, str]] = field(default_factory=dict)
    tenant: bool = True
    path_param: str | None = None
    name: str | None = None
    decided_by: tuple[str, ...] = ()


def described() -> Iterator[tuple[type[Base], Resource]]:
    """Every model with a `__resource__`, by policy name."""
    found = [(m.class_, m.class_.__dict__.get("__resource__")) for m in Base.registry.mappers]
    yield from sorted(((m, r) for m, r in found if r is not None),
                      key=lambda pair: pair[1].name or pair[0].__name__)


def by_model() -> dict[type, Resource]:
    return dict(described())


def polar_name(model: type) -> str:
    """The name the policies give a model."""
    resource = model.__dict__.get("__resource__")
    return (resource.name if resource else None) or model.__name__


def make(model: type, place: Place) -> Any:
    """A sample row of `model` at `place` (see Resource.sample)."""
    row = model.__dict__["__resource__"].sample(place)
    if getattr(row, "id", None) is None:
        row.id = uuid.uuid4()
    return row


def model_named(name: str) -> type:
    for model, _ in described():
        if polar_name(model) == name:
            return model
    raise LookupError(f"no model is the policy's {name!r}")

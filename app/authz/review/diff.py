"""What a policy change grants and revokes: the full permission matrix (app/authz/matrix.py:
every actor kind, creator rows, role ceilings) of the policy at a git revision against the
working tree's, cell by cell.

The old policy is read with `git show REV:policies/FILE` into a temporary directory and
loaded into its own Oso with the same registered classes (AuthzEngine), so a reviewer
runs `flask authz diff origin/main` on a pull request that touches `policies/`.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.authz.matrix import KINDS, ceilings, compute

# (section, row, column) -> granted; section is a resource or "ceiling".
Cells = set[tuple[str, str, str]]


@dataclass(frozen=True)
class Change:
    granted: bool
    section: str
    row: str
    column: str

    def line(self) -> str:
        sign = "+ granted" if self.granted else "- revoked"
        return f"{sign}  {self.section}.{self.row}  to  {self.column}"


def cells(policy_dir: str | Path) -> Cells:
    """Every allowed cell of the matrix the policy in `policy_dir` computes."""
    found: Cells = set()
    for kind_name, kind in KINDS.items():
        for resource, rows in compute(policy_dir, kind).items():
            for permission, labels in rows.items():
                found |= {(resource, permission, f"{kind_name} {label}") for label in labels}
        for label, given in ceilings(policy_dir, kind).items():
            for grant, roles in given.items():
                found |= {("ceiling", f"give {role} ({grant})", f"{kind_name} {label}")
                          for role in roles}
    return found


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - git, with arguments we build
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False  # noqa: S607
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def policy_at(revision: str, policy_dir: Path, into: Path) -> Path:
    """Write the `.polar` files of `policy_dir` as they were at `revision` into `into`."""
    top = Path(_git(policy_dir, "rev-parse", "--show-toplevel").strip())
    relative = policy_dir.resolve().relative_to(top.resolve()).as_posix()
    names = _git(top, "ls-tree", "--name-only", f"{revision}:{relative}").split()
    polar = [n for n in names if n.endswith(".polar")]
    if not polar:
        raise RuntimeError(f"no policy files in {relative}/ at {revision}")
    for name in polar:
        (into / name).write_text(_git(top, "show", f"{revision}:{relative}/{name}"))
    return into


def diff(revision: str, policy_dir: str | Path) -> list[Change]:
    """The cells granted and revoked going from the policy at `revision` to `policy_dir`."""
    policy_dir = Path(policy_dir)
    with tempfile.TemporaryDirectory() as tmp:
        before = cells(policy_at(revision, policy_dir, Path(tmp)))
    after = cells(policy_dir)
    changes = [Change(True, *cell) for cell in after - before]
    changes += [Change(False, *cell) for cell in before - after]
    return sorted(changes, key=lambda c: (c.section, c.row, c.column, c.granted))


def render(revision: str, changes: list[Change]) -> str:
    if not changes:
        return f"no change to the permission matrix since {revision}\n"
    granted = sum(c.granted for c in changes)
    lines = [f"policy changes since {revision}: {granted} cell(s) granted, "
             f"{len(changes) - granted} revoked", ""]
    lines += [change.line() for change in changes]
    return "\n".join(lines) + "\n"


__all__ = ["Change", "diff", "render"]

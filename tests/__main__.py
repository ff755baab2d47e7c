"""The project's test command: `python -m tests` (what README and .ci/run call).

1. ruff over the code,
2. the whole suite against PostgreSQL (a throwaway database per run),
3. the portable part again against SQLite, the embedded default.
Extra arguments go to both pytest runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(title: str, argv: list[str], **env: str) -> int:
    print(f"\n=== {title} ===", flush=True)
    started = time.monotonic()
    code = subprocess.call(argv, cwd=ROOT, env={**os.environ, **env})
    outcome = "ok" if code == 0 else f"exit {code}"
    print(f"=== {title}: {outcome} in {time.monotonic() - started:.0f}s", flush=True)
    return code


def main() -> int:
    extra = sys.argv[1:]
    python = sys.executable
    codes = [
        run("ruff", [python, "-m", "ruff", "check", "--quiet", "."]),
        run("pytest on SQLite (portable part)",
            [python, "-m", "pytest", "-m", "portable", *extra], TEST_DATABASE_URL="sqlite"),
        run("pytest on PostgreSQL (whole suite)", [python, "-m", "pytest", *extra]),
    ]
    return next((code for code in codes if code), 0)


if __name__ == "__main__":
    sys.exit(main())

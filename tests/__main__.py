"""The project's test command: `python -m tests` (what README and .ci/run call).

0. Debian's chromium, which the browser tests drive, is installed when missing,
1. side by side: ruff and mypy over the code; the whole suite against PostgreSQL on two
   pytest-xdist workers (a throwaway database each), a file's tests on one worker, the
   longest files first (tests/conftest.py LONGEST_FIRST, not xdist's most-tests-first); and
   the tests whose outcome depends on the database dialect (`portable`) again against
   SQLite, the embedded default, but for the slow ones (timing, gunicorn starts).
   Each run's output is printed whole when it ends.
Extra arguments go to both pytest runs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")  # tests/support/browser.py


def ensure_chromium() -> None:
    """`apt-get install chromium` (with sudo when not root), after `apt-get update` when
    the package lists do not know it yet: `.ci/run` passes on a fresh machine."""
    if CHROMIUM.exists():
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", "chromium"]
    print("installing chromium for the browser tests ...", flush=True)
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def environment(extra: dict[str, str]) -> dict[str, str]:
    """The runs' environment: bytecode is written even where the machine says not to, so
    that a module is compiled once (with the tests' rewritten asserts), not by every
    process the suite starts (pytest workers, gunicorn nodes, CLI runs: ~0.5 s each)."""
    env = {**os.environ, **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main() -> int:
    ensure_chromium()
    extra = sys.argv[1:]
    python = sys.executable
    runs = [
        ("ruff", [python, "-m", "ruff", "check", "--quiet", "."], {}),
        ("mypy", [python, "-m", "mypy"], {}),
        ("pytest on PostgreSQL (whole suite)",
         [python, "-m", "pytest", "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder",
          *extra], {}),
        ("pytest on SQLite (dialect-dependent part)",
         [python, "-m", "pytest", "-m", "portable and not slow", *extra],
         {"TEST_DATABASE_URL": "sqlite"}),
    ]
    codes = []
    with contextlib.ExitStack() as stack:
        started = []
        for title, argv, env in runs:
            output = stack.enter_context(tempfile.TemporaryFile())
            process = subprocess.Popen(argv, cwd=ROOT, env=environment(env),
                                       stdout=output, stderr=subprocess.STDOUT)
            started.append((title, process, output, time.monotonic()))
        ended: dict[str, float] = {}
        while len(ended) < len(started):
            for title, process, _, _ in started:
                if title not in ended and process.poll() is not None:
                    ended[title] = time.monotonic()
            time.sleep(0.1)
        for title, process, output, began in started:
            code = process.wait()
            took = ended[title] - began
            output.seek(0)
            print(f"\n=== {title} ===", flush=True)
            sys.stdout.buffer.write(output.read())
            print(f"=== {title}: {'ok' if code == 0 else f'exit {code}'} in {took:.0f}s",
                  flush=True)
            codes.append(code)
    return next((code for code in codes if code), 0)


if __name__ == "__main__":
    sys.exit(main())

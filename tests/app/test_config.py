"""Settings: safe defaults for a developer, refusals in production, and one declaration
per environment variable that both reads it and documents it."""

import re
from dataclasses import fields
from pathlib import Path

import pytest

from app import create_app
from app.auth.keys import KeyRing
from app.config import DEV_SECRET_KEY, OTHER, ConfigError, Settings, variables

PRODUCTION = {
    "env": "production",
    "secret_key": "s" * 40,
    "database_url": "postgresql+psycopg://app@db.internal/api",
    "jwt_keys": {"keys": [KeyRing.generate_key()]},
    "ratelimit_storage_uri": "redis://cache.internal:6379",
    "public_base_url": "https://api.example.com",
}


def test_a_complete_production_configuration_passes():
    Settings().with_overrides(PRODUCTION).check()


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"secret_key": DEV_SECRET_KEY}, "SECRET_KEY"),
        ({"secret_key": "short"}, "SECRET_KEY"),
        ({"jwt_keys": None}, "JWT_KEYS"),
        ({"database_url": "sqlite:///prod.db"}, "DATABASE_URL"),
        ({"jwt_algorithms": ("HS256",)}, "JWT_ALGORITHMS"),
        ({"jwt_algorithms": ("none",)}, "JWT_ALGORITHMS"),
        ({"ratelimit_storage_uri": "memory://"}, "RATELIMIT_STORAGE_URI"),
        ({"public_base_url": "http://api.example.com"}, "PUBLIC_BASE_URL"),  # the issuer
    ],
)
def test_production_refuses_development_defaults(override, complaint):
    with pytest.raises(ConfigError, match=complaint):
        create_app(Settings().with_overrides({**PRODUCTION, **override}))


def test_uploads_larger_than_one_copy_are_refused():
    """`complete` copies an upload to its final key in one CopyObject call (at most 5 GiB)."""
    Settings().with_overrides({"upload_max_bytes": 5 * 1024**3}).check()
    with pytest.raises(ConfigError, match="UPLOAD_MAX_BYTES"):
        Settings().with_overrides({"upload_max_bytes": 5 * 1024**3 + 1}).check()


def test_unknown_settings_are_refused():
    with pytest.raises(ConfigError, match="unknown settings"):
        Settings().with_overrides({"databse_url": "sqlite://"})


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("JWT_ACCESS_TTL_SECONDS", "60")
    monkeypatch.setenv("JWT_ALGORITHMS", "Ed25519, ES256")
    settings = Settings.from_env()
    assert settings.jwt_access_ttl_seconds == 60
    assert settings.jwt_algorithms == ("Ed25519", "ES256")


def test_a_non_integer_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DATABASE_POOL_SIZE", "lots")
    with pytest.raises(ConfigError, match="DATABASE_POOL_SIZE"):
        Settings.from_env()


def test_a_content_type_no_file_name_could_agree_with_is_refused_at_start():
    """A file's extension must agree with its content type (app/media_types.py): a type
    without known extensions could never be uploaded, in any environment."""
    with pytest.raises(ConfigError, match=r"UPLOAD_CONTENT_TYPES.*application/x-made-up"):
        Settings().with_overrides(
            {"upload_content_types": ("image/png", "application/x-made-up")}
        ).check()
    # One Python knows is fine: its extensions come from `mimetypes`.
    Settings().with_overrides({"upload_content_types": ("image/png", "text/csv")}).check()


@pytest.mark.parametrize("given", ["warning", "Info", "DEBUG"])
def test_log_level_is_read_in_any_case_as_gunicorn_reads_it(monkeypatch, given):
    monkeypatch.setenv("LOG_LEVEL", given)
    assert Settings.from_env().log_level == given.upper()


def test_an_unknown_log_level_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        create_app(Settings.from_env())
# -- one source: every variable declared with its meaning, and generated into the docs ------

ROOT = Path(__file__).resolve().parent.parent.parent
READ = re.compile(r"""os\.environ(?:\.get\(\s*|\[\s*)["']([A-Z][A-Z0-9_]+)["']""")
SAMPLES = {"int": ("7", 7), "bool": ("0", False), "str": ("some-value", "some-value")}


def test_every_variable_the_code_reads_is_declared_with_its_meaning():
    """Settings read theirs through their declaration; whatever else reads the environment
    (gunicorn.conf.py, the migrations, `flask demo`) is listed in config.OTHER."""
    sources = [*ROOT.glob("app/**/*.py"), *ROOT.glob("migrations/**/*.py"),
               ROOT / "gunicorn.conf.py", ROOT / "wsgi.py"]
    read = {name for path in sources for name in READ.findall(path.read_text())}
    declared = [f.metadata["env"] for f in variables()] + [v.env for v in OTHER]
    assert len(declared) == len(set(declared)), "a variable declared twice"
    assert read <= set(declared), sorted(read - set(declared))
    assert {"APP_DB_ROLE", "BIND", "WEB_CONCURRENCY"} <= set(declared)
    undeclared = [f.name for f in fields(Settings) if "env" not in f.metadata]
    assert undeclared == ["policy_dir", "extra"]  # not settings an operator makes
    for f in variables():
        assert f.metadata["doc"].strip(), f.name


def test_each_variable_sets_its_setting(monkeypatch):
    expected = {}
    for f in variables():
        kind = str(f.type)
        if kind.startswith("tuple"):
            raw, value = "a/b, c/d", ("a/b", "c/d")
        elif kind.startswith("dict"):
            raw, value = '{"keys": []}', {"keys": []}
        elif f.name == "log_level":  # read in any case, kept upper case
            raw, value = "warning", "WARNING"
        else:
            raw, value = SAMPLES[kind]
        monkeypatch.setenv(f.metadata["env"], raw)
        expected[f.name] = value
    settings = Settings.from_env()
    assert {name: getattr(settings, name) for name in expected} == expected


def test_production_empties_the_local_storage_defaults(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    for name in ("S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert (settings.s3_endpoint_url, settings.s3_access_key_id,
            settings.s3_secret_access_key) == ("", "", "")


def test_the_sqlite_default_follows_the_instance_path(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    assert Settings.from_env().database_url == f"sqlite:///{tmp_path / 'app.db'}"


def test_an_invalid_trusted_proxy_network_is_refused():
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_PEERS"):
        Settings().with_overrides({"trusted_proxy_peers": ("10.0.0.0/33",)}).check()

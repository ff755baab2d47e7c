"""Settings read from the environment, with defaults that are safe for local use only.

`APP_ENV=production` turns the defaults into errors: the app refuses to start with the
development secret key, without signing keys, on the embedded SQLite database, or with
rate limits counted per process.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from app.media_types import extensions

DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 - rejected in production
DEFAULT_INSTANCE = Path.cwd() / "instance"
MAX_COPY_BYTES = 5 * 1024**3  # the largest object S3 copies in one CopyObject call


class ConfigError(RuntimeError):
    """The configuration cannot run safely; the message says which setting."""


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw not in (None, "") else default
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer") from exc


def _env_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name)
    if not raw:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    secret_key: str = DEV_SECRET_KEY
    database_url: str = f"sqlite:///{DEFAULT_INSTANCE / 'app.db'}"
    database_pool_size: int = 5
    # The owner of the tables (migrations, admin commands); empty: DATABASE_URL. The app
    # itself connects as a role that owns nothing, so row-level security applies to it.
    migration_database_url: str = ""
    instance_path: str = str(DEFAULT_INSTANCE)

    # Access tokens: JWS signed with a key from `jwt_keys` (a JWK set with private keys).
    jwt_issuer: str = "tenant-api"
    jwt_audience: str = "tenant-api"
    jwt_algorithms: tuple[str, ...] = ("Ed25519",)
    jwt_access_ttl_seconds: int = 900
    jwt_keys: dict[str, Any] | None = None
    jwt_keys_file: str = ""
    jwt_leeway_seconds: int = 30

    auth_cache_ttl_seconds: int = 60
    session_idle_timeout_seconds: int = 14 * 24 * 3600
    session_absolute_lifetime_seconds: int = 90 * 24 * 3600

    # Development default: the local S3-compatible server `flask demo` starts.
    s3_endpoint_url: str = "http://127.0.0.1:9000"
    s3_bucket: str = "tenant-api"
    s3_region: str = "us-east-1"
    s3_access_key_id: str = "test"
    s3_secret_access_key: str = "test"  # noqa: S105 - the local server's placeholder
    s3_connect_timeout_seconds: int = 3
    s3_read_timeout_seconds: int = 10
    s3_max_attempts: int = 3

    upload_max_bytes: int = 25 * 1024 * 1024
    # The file-name extensions each type accepts: app/media_types.py.
    upload_content_types: tuple[str, ...] = (
        "image/jpeg", "image/png", "image/webp", "image/gif", "image/avif",
        "video/mp4", "application/pdf",
    )
    upload_url_ttl_seconds: int = 300
    download_url_ttl_seconds: int = 300
    purge_pending_after_seconds: int = 24 * 3600

    idempotency_ttl_seconds: int = 24 * 3600

    ingest_max_events: int = 1000
    ingest_max_body_bytes: int = 1024 * 1024  # after decompression
    ingest_rate_limit: str = "100000 per minute"  # events received per key, rejected included

    ratelimit_storage_uri: str = "memory://"
    ratelimit_enabled: bool = True
    ratelimit_per_ip: str = "30 per minute"
    ratelimit_per_account: str = "10 per minute"
    # Denials about organizations an actor holds nothing in, recorded per actor: beyond
    # this, probing ids fills no more of the audit log.
    audit_probe_limit: str = "30 per minute"

    # Failed passwords (sign-in and password change, app/auth/throttle.py): refused per
    # (account, client address); past the looser per-account ceiling every attempt waits,
    # longer each time, but the right password from a fresh address still signs in.
    login_failures_per_client: str = "5 per 15 minutes"
    login_failures_per_account: int = 20  # within login_failure_window_seconds
    login_failure_window_seconds: int = 15 * 60
    login_delay_base_ms: int = 250
    login_delay_max_ms: int = 5000
    # Mails a person can cause (verification resend, password reset), per account and IP.
    ratelimit_mail: str = "3 per 10 minutes"

    # Mail (app/mail.py): sent by SMTP from the outbox after the request commits. The
    # development default is the loopback server `flask demo` starts.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_seconds: int = 10
    mail_from: str = "Tenant API <no-reply@localhost>"
    mail_max_attempts: int = 8
    mail_retry_base_seconds: int = 30
    # Where the links in mails point (a front end that calls the API with the token).
    public_url: str = "http://127.0.0.1:8000"
    verify_token_ttl_seconds: int = 48 * 3600
    reset_token_ttl_seconds: int = 3600
    invitation_ttl_seconds: int = 7 * 24 * 3600

    max_content_length: int = 1024 * 1024
    log_level: str = "INFO"
    policy_dir: str = str(Path(__file__).resolve().parent.parent / "policies")
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def owner_database_url(self) -> str:
        return self.migration_database_url or self.database_url

    @classmethod
    def from_env(cls) -> Settings:
        keys_raw = os.environ.get("JWT_KEYS")
        try:
            jwt_keys = json.loads(keys_raw) if keys_raw else None
        except ValueError as exc:
            raise ConfigError("JWT_KEYS must be a JSON Web Key Set") from exc
        instance = _env("INSTANCE_PATH", str(DEFAULT_INSTANCE))
        production = _env("APP_ENV", "development") == "production"
        return cls(
            env=_env("APP_ENV", "development"),
            secret_key=_env("SECRET_KEY", DEV_SECRET_KEY),
            database_url=_env("DATABASE_URL", f"sqlite:///{Path(instance) / 'app.db'}"),
            database_pool_size=_env_int("DATABASE_POOL_SIZE", 5),
            migration_database_url=_env("MIGRATION_DATABASE_URL", ""),
            instance_path=instance,
            jwt_issuer=_env("JWT_ISSUER", cls.jwt_issuer),
            jwt_audience=_env("JWT_AUDIENCE", cls.jwt_audience),
            jwt_algorithms=_env_list("JWT_ALGORITHMS", cls.jwt_algorithms),
            jwt_access_ttl_seconds=_env_int("JWT_ACCESS_TTL_SECONDS", 900),
            jwt_keys=jwt_keys,
            jwt_keys_file=_env("JWT_KEYS_FILE", ""),
            jwt_leeway_seconds=_env_int("JWT_LEEWAY_SECONDS", 30),
            auth_cache_ttl_seconds=_env_int("AUTH_CACHE_TTL_SECONDS", 60),
            session_idle_timeout_seconds=_env_int("SESSION_IDLE_TIMEOUT_SECONDS", 14 * 24 * 3600),
            session_absolute_lifetime_seconds=_env_int(
                "SESSION_ABSOLUTE_LIFETIME_SECONDS", 90 * 24 * 3600
            ),
            s3_endpoint_url=_env("S3_ENDPOINT_URL", "" if production else cls.s3_endpoint_url),
            s3_bucket=_env("S3_BUCKET", cls.s3_bucket),
            s3_region=_env("S3_REGION", cls.s3_region),
            s3_access_key_id=_env("S3_ACCESS_KEY_ID", "" if production else "test"),
            s3_secret_access_key=_env("S3_SECRET_ACCESS_KEY", "" if production else "test"),
            s3_connect_timeout_seconds=_env_int("S3_CONNECT_TIMEOUT_SECONDS", 3),
            s3_read_timeout_seconds=_env_int("S3_READ_TIMEOUT_SECONDS", 10),
            s3_max_attempts=_env_int("S3_MAX_ATTEMPTS", 3),
            upload_max_bytes=_env_int("UPLOAD_MAX_BYTES", cls.upload_max_bytes),
            upload_content_types=_env_list("UPLOAD_CONTENT_TYPES", cls.upload_content_types),
            upload_url_ttl_seconds=_env_int("UPLOAD_URL_TTL_SECONDS", 300),
            download_url_ttl_seconds=_env_int("DOWNLOAD_URL_TTL_SECONDS", 300),
            purge_pending_after_seconds=_env_int("PURGE_PENDING_AFTER_SECONDS", 24 * 3600),
            idempotency_ttl_seconds=_env_int("IDEMPOTENCY_TTL_SECONDS", 24 * 3600),
            ingest_max_events=_env_int("INGEST_MAX_EVENTS", 1000),
            ingest_max_body_bytes=_env_int("INGEST_MAX_BODY_BYTES", 1024 * 1024),
            ingest_rate_limit=_env("INGEST_RATE_LIMIT", cls.ingest_rate_limit),
            ratelimit_storage_uri=_env("RATELIMIT_STORAGE_URI", "memory://"),
            ratelimit_enabled=_env("RATELIMIT_ENABLED", "1") not in ("0", "false", "no"),
            ratelimit_per_ip=_env("RATELIMIT_PER_IP", cls.ratelimit_per_ip),
            ratelimit_per_account=_env("RATELIMIT_PER_ACCOUNT", cls.ratelimit_per_account),
            audit_probe_limit=_env("AUDIT_PROBE_LIMIT", cls.audit_probe_limit),
            login_failures_per_client=_env(
                "LOGIN_FAILURES_PER_CLIENT", cls.login_failures_per_client
            ),
            login_failures_per_account=_env_int("LOGIN_FAILURES_PER_ACCOUNT", 20),
            login_failure_window_seconds=_env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60),
            login_delay_base_ms=_env_int("LOGIN_DELAY_BASE_MS", 250),
            login_delay_max_ms=_env_int("LOGIN_DELAY_MAX_MS", 5000),
            ratelimit_mail=_env("RATELIMIT_MAIL", cls.ratelimit_mail),
            smtp_host=_env("SMTP_HOST", cls.smtp_host),
            smtp_port=_env_int("SMTP_PORT", 587 if production else cls.smtp_port),
            smtp_user=_env("SMTP_USER", ""),
            smtp_password=_env("SMTP_PASSWORD", ""),
            smtp_starttls=_env("SMTP_STARTTLS", "1" if production else "0")
            not in ("0", "false", "no"),
            smtp_timeout_seconds=_env_int("SMTP_TIMEOUT_SECONDS", 10),
            mail_from=_env("MAIL_FROM", cls.mail_from),
            mail_max_attempts=_env_int("MAIL_MAX_ATTEMPTS", 8),
            mail_retry_base_seconds=_env_int("MAIL_RETRY_BASE_SECONDS", 30),
            public_url=_env("PUBLIC_URL", cls.public_url),
            verify_token_ttl_seconds=_env_int("VERIFY_TOKEN_TTL_SECONDS", 48 * 3600),
            reset_token_ttl_seconds=_env_int("RESET_TOKEN_TTL_SECONDS", 3600),
            invitation_ttl_seconds=_env_int("INVITATION_TTL_SECONDS", 7 * 24 * 3600),
            max_content_length=_env_int("MAX_CONTENT_LENGTH", 1024 * 1024),
            log_level=_env("LOG_LEVEL", "INFO"),
        )

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **overrides)

    def check(self) -> None:
        """Refuse configurations that cannot work, and in production those that are only
        acceptable on a developer's machine."""
        if self.upload_max_bytes > MAX_COPY_BYTES:
            # `complete` copies an upload with one CopyObject call, which S3 caps at 5 GiB.
            raise ConfigError("UPLOAD_MAX_BYTES may be at most 5 GiB")
        unknown = [t for t in self.upload_content_types if not extensions(t)]
        if unknown:  # no file name could agree with it: nothing could be uploaded
            raise ConfigError(f"UPLOAD_CONTENT_TYPES: no known file extension for "
                              f"{', '.join(unknown)} (see app/media_types.py)")
        if not self.is_production:
            return
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            raise ConfigError("SECRET_KEY must be set to at least 32 random characters")
        if not (self.jwt_keys or self.jwt_keys_file):
            raise ConfigError("JWT_KEYS or JWT_KEYS_FILE must provide the signing keys")
        if self.database_url.startswith("sqlite"):
            raise ConfigError("DATABASE_URL must point at PostgreSQL in production")
        if self.ratelimit_enabled and self.ratelimit_storage_uri.startswith("memory://"):
            # Each worker would count on its own: every limit multiplied by the workers.
            raise ConfigError("RATELIMIT_STORAGE_URI must name storage the workers share "
                              "(redis://...) in production")
        if "none" in {a.lower() for a in self.jwt_algorithms} or any(
            a.startswith("HS") for a in self.jwt_algorithms
        ):
            raise ConfigError("JWT_ALGORITHMS must list asymmetric algorithms only")

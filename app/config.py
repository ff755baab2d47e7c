"""Settings read from the environment, with defaults that are safe for local use only.

`APP_ENV=production` turns the defaults into errors: the app refuses to start with the
development secret key, without signing keys, on the embedded SQLite database, or with
rate limits counted per process.

Each field names its environment variable and says what it means (`setting(...)`); the
variables read elsewhere (gunicorn, the migrations, `flask demo`) are listed in `OTHER`.
`Settings.from_env` reads them and docs/configuration.md is generated from them
(`flask docs write`): there is no other list to keep in step.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import Field, dataclass, field, fields, replace
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from app.media_types import extensions

DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 - rejected in production
DEFAULT_INSTANCE = Path.cwd() / "instance"
MAX_COPY_BYTES = 5 * 1024**3  # the largest object S3 copies in one CopyObject call
_SAME: Any = object()  # `setting(production=...)` not given: one default everywhere
FALSE = ("0", "false", "no", "off")


class ConfigError(RuntimeError):
    """The configuration cannot run safely; the message says which setting."""


def setting(env: str, doc: str, default: Any = None, *, factory: Any = None,
            shown: str | None = None, production: Any = _SAME) -> Any:
    """A field read from the environment variable `env`, documented by `doc`: the one
    source of both `Settings.from_env` and docs/configuration.md. `production` is the
    default under `APP_ENV=production` when it differs; `shown` is the default as the
    documentation states it, when the value itself would mislead (a path of this machine)."""
    meta = {"env": env, "doc": doc, "shown": shown, "production": production}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Variable:
    """An environment variable read outside `Settings` (by gunicorn, the migrations)."""

    env: str
    default: str
    doc: str
    read_by: str


@dataclass(frozen=True)
class Settings:
    env: str = setting("APP_ENV", "`production` enforces the production checks (see "
                       "README) and empties the local S3 defaults", "development")
    secret_key: str = setting("SECRET_KEY", "signs pagination cursors; at least 32 random "
                              "characters in production", DEV_SECRET_KEY,
                              shown="a development value")
    instance_path: str = setting("INSTANCE_PATH", "local state: the SQLite database and the "
                                 "generated signing key file", str(DEFAULT_INSTANCE),
                                 shown="`./instance`")
    database_url: str = setting(
        "DATABASE_URL", "the database as the runtime role (`postgresql+psycopg://...` in "
        "production)", f"sqlite:///{DEFAULT_INSTANCE / 'app.db'}",
        shown="`sqlite:///$INSTANCE_PATH/app.db`")
    database_pool_size: int = setting(
        "DATABASE_POOL_SIZE", "connections each process keeps (as many again may overflow)", 5)
    # The owner of the tables (migrations, admin commands); empty: DATABASE_URL. The app
    # itself connects as a role that owns nothing, so row-level security applies to it.
    migration_database_url: str = setting(
        "MIGRATION_DATABASE_URL", "the tables' owner: migrations and admin commands; empty: "
        "`DATABASE_URL`", "")
    database_statement_timeout_ms: int = setting(
        "DATABASE_STATEMENT_TIMEOUT_MS", "PostgreSQL cancels a statement of the runtime role "
        "after this many milliseconds (0: never); below gunicorn's `GUNICORN_TIMEOUT`, so a "
        "slow query is a 503 rather than a killed worker", 25000)

    # Access tokens: JWS signed with a key from `jwt_keys` (a JWK set with private keys).
    public_base_url: str = setting(
        "PUBLIC_BASE_URL", "the URL clients reach the API at: the OAuth issuer and the "
        "endpoints of its metadata (https in production)", "http://127.0.0.1:8000")
    jwt_issuer: str = setting("JWT_ISSUER", "the access tokens' required `iss`", "tenant-api")
    jwt_audience: str = setting("JWT_AUDIENCE", "the access tokens' required `aud`",
                                "tenant-api")
    jwt_algorithms: tuple[str, ...] = setting(
        "JWT_ALGORITHMS", "accepted signing algorithms, comma-separated (never taken from "
        "the token; asymmetric only in production)", ("Ed25519",))
    jwt_access_ttl_seconds: int = setting("JWT_ACCESS_TTL_SECONDS",
                                          "access token lifetime", 900)
    jwt_keys: dict[str, Any] | None = setting(  # noqa: RUF009 - a field(), default None
        "JWT_KEYS", "a JWK set with private keys, as JSON: the first signs, all verify "
        "(fixed; `JWT_KEYS_FILE` can be rotated)", None, shown="none")
    jwt_keys_file: str = setting(
        "JWT_KEYS_FILE", "the signing key file `flask keys` manages; empty: a file in "
        "`INSTANCE_PATH`, generated on first use outside production", "")
    jwt_leeway_seconds: int = setting(
        "JWT_LEEWAY_SECONDS", "clock skew tolerated on a token's times", 30)

    auth_cache_ttl_seconds: int = setting(
        "AUTH_CACHE_TTL_SECONDS", "how long a process caches an actor's roles (changes "
        "invalidate it at once on PostgreSQL)", 60)
    session_idle_timeout_seconds: int = setting(
        "SESSION_IDLE_TIMEOUT_SECONDS", "a session unused this long ends", 14 * 24 * 3600)
    session_absolute_lifetime_seconds: int = setting(
        "SESSION_ABSOLUTE_LIFETIME_SECONDS", "a session ends this long after sign-in, used "
        "or not", 90 * 24 * 3600)

    # Development default: the local S3-compatible server `flask demo` starts.
    s3_endpoint_url: str = setting(
        "S3_ENDPOINT_URL", "the S3-compatible endpoint; empty: AWS's own", "http://127.0.0.1:9000",
        production="")
    s3_bucket: str = setting("S3_BUCKET", "the bucket (it must exist in production)",
                             "tenant-api")
    s3_region: str = setting("S3_REGION", "the bucket's region", "us-east-1")
    s3_access_key_id: str = setting(
        "S3_ACCESS_KEY_ID", "storage credentials; empty: boto3's chain (instance role, ...)",
        "test", production="")
    s3_secret_access_key: str = setting(  # the local server's placeholder
        "S3_SECRET_ACCESS_KEY", "the secret of `S3_ACCESS_KEY_ID`", "test", production="")
    s3_connect_timeout_seconds: int = setting(
        "S3_CONNECT_TIMEOUT_SECONDS", "connecting to the storage", 3)
    s3_read_timeout_seconds: int = setting(
        "S3_READ_TIMEOUT_SECONDS", "waiting for the storage's answer", 10)
    s3_max_attempts: int = setting("S3_MAX_ATTEMPTS", "tries per storage call", 3)
    s3_health_ttl_seconds: int = setting(
        "S3_HEALTH_TTL_SECONDS", "how long what a storage call or probe showed is trusted "
        "before uploads and download URLs are handed out (a probe, `HEAD` of the bucket, "
        "asks again past it); while storage is down they answer 503", 5)

    upload_max_bytes: int = setting(
        "UPLOAD_MAX_BYTES", "largest uploaded file (at most 5 GiB: one CopyObject)",
        25 * 1024 * 1024)
    # The file-name extensions each type accepts: app/media_types.py.
    upload_content_types: tuple[str, ...] = setting(
        "UPLOAD_CONTENT_TYPES", "accepted upload types, comma-separated; the file-name "
        "extensions of each are in `app/media_types.py` (Python's `mimetypes` for others; a "
        "type with none is refused at start)",
        ("image/jpeg", "image/png", "image/webp", "image/gif", "image/avif", "video/mp4",
         "application/pdf"))
    upload_url_ttl_seconds: int = setting(
        "UPLOAD_URL_TTL_SECONDS", "lifetime of a presigned upload", 300)
    download_url_ttl_seconds: int = setting(
        "DOWNLOAD_URL_TTL_SECONDS", "lifetime of presigned downloads; the same URL is reused "
        "for min(TTL/2, 5 min), so it is handed out with between TTL minus that and TTL left",
        300)
    purge_pending_after_seconds: int = setting(
        "PURGE_PENDING_AFTER_SECONDS", "`flask assets purge` removes uploads never completed "
        "after this long", 24 * 3600)

    idempotency_ttl_seconds: int = setting(
        "IDEMPOTENCY_TTL_SECONDS", "how long an `Idempotency-Key`'s answer is replayed",
        24 * 3600)

    ingest_max_events: int = setting("INGEST_MAX_EVENTS", "events per batch", 1000)
    ingest_max_body_bytes: int = setting(
        "INGEST_MAX_BODY_BYTES", "a batch's size after decompression", 1024 * 1024)
    ingest_rate_limit: str = setting(
        "INGEST_RATE_LIMIT", "events received per ingest key, rejected ones included",
        "100000 per minute")
    events_retention_months: int = setting(
        "EVENTS_RETENTION_MONTHS", "`flask events retention` drops the monthly partitions of "
        "events that ended more than this many months ago (0: keep everything)", 0)

    ratelimit_storage_uri: str = setting(
        "RATELIMIT_STORAGE_URI", "where rate-limit counters live: `redis://...` in "
        "production, where the workers share them", "memory://")
    ratelimit_storage_timeout_seconds: int = setting(
        "RATELIMIT_STORAGE_TIMEOUT_SECONDS", "connecting to and waiting for the counters' "
        "storage; past it the request is answered as if the storage were down (see "
        "README, Operating it)", 1)
    ratelimit_storage_retry_seconds: int = setting(
        "RATELIMIT_STORAGE_RETRY_SECONDS", "once the counters' storage failed, requests "
        "skip it for this long (refused or let through, per limit) before one tries again",
        5)
    ratelimit_enabled: bool = setting("RATELIMIT_ENABLED", "`0` switches rate limits off",
                                      True)
    ratelimit_per_ip: str = setting(
        "RATELIMIT_PER_IP", "attempts per client address at login, registration, refresh, "
        "password change and key creation", "30 per minute")
    ratelimit_per_client: str = setting(
        "RATELIMIT_PER_CLIENT", "token requests per OAuth client (`/oauth/token`)",
        "60 per minute")
    ratelimit_per_account: str = setting(
        "RATELIMIT_PER_ACCOUNT", "the same attempts per account (the email, or the caller)",
        "10 per minute")
    # Denials about organizations an actor holds nothing in, recorded per actor: beyond
    # this, probing ids fills no more of the audit log.
    audit_probe_limit: str = setting(
        "AUDIT_PROBE_LIMIT", "denials about organizations the actor holds nothing in that "
        "are audited, per actor", "30 per minute")

    trusted_proxy_hops: int = setting(
        "TRUSTED_PROXY_HOPS", "reverse proxies in front of the app: the client address is "
        "taken that many entries from the right of `X-Forwarded-For` (0: the peer's own "
        "address, headers ignored)", 0)
    trusted_proxy_peers: tuple[str, ...] = setting(
        "TRUSTED_PROXY_PEERS", "networks (CIDR, comma-separated) the nearest proxy connects "
        "from; a peer elsewhere has its `X-Forwarded-*` headers ignored",
        ("127.0.0.0/8", "::1/128"))
    metrics_token: str = setting(
        "METRICS_TOKEN", "the bearer token a Prometheus scrape of `/metrics` sends; empty: "
        "`/metrics` answers 404 (at least 32 characters in production)", "",
        shown="empty (off)")
    tracing_exporter: str = setting(
        "TRACING_EXPORTER", "OpenTelemetry traces of requests, SQL and storage calls: "
        "`otlp` (to `OTEL_EXPORTER_OTLP_ENDPOINT`), `console`, or empty (off; needs the "
        "`tracing` extra when on)", "", shown="empty (off)")
    readiness_timeout_seconds: int = setting(
        "READINESS_TIMEOUT_SECONDS", "`/readyz` gives each dependency this long", 2)

    # Failed passwords (sign-in and password change, app/auth/throttle.py): refused per
    # (account, client address); past the looser per-account ceiling every attempt waits,
    # longer each time, but the right password from a fresh address still signs in.
    login_failures_per_client: str = setting(
        "LOGIN_FAILURES_PER_CLIENT", "failed passwords refused per (account, client address)",
        "5 per 15 minutes")
    login_failures_per_account: int = setting(
        "LOGIN_FAILURES_PER_ACCOUNT", "failed passwords of one account, from anywhere, after "
        "which every attempt waits (never refused)", 20)
    login_failure_window_seconds: int = setting(
        "LOGIN_FAILURE_WINDOW_SECONDS", "the window `LOGIN_FAILURES_PER_ACCOUNT` counts in",
        15 * 60)
    login_delay_base_ms: int = setting(
        "LOGIN_DELAY_BASE_MS", "the first wait past that ceiling, doubled per further failure",
        250)
    login_delay_max_ms: int = setting("LOGIN_DELAY_MAX_MS", "the longest such wait", 5000)
    ratelimit_mail: str = setting(
        "RATELIMIT_MAIL", "mails a person can cause (verification resend, password reset), "
        "per account and per client address", "3 per 10 minutes")

    # Mail (app/mail.py): sent by SMTP from the outbox after the request commits. The
    # development default is the loopback server `flask demo` starts.
    smtp_host: str = setting("SMTP_HOST", "SMTP server", "127.0.0.1")
    smtp_port: int = setting("SMTP_PORT", "its port", 8025, production=587)
    smtp_user: str = setting("SMTP_USER", "SMTP login (empty: none)", "")
    smtp_password: str = setting("SMTP_PASSWORD", "its password", "")
    smtp_starttls: bool = setting("SMTP_STARTTLS", "upgrade the connection with STARTTLS",
                                  False, production=True)
    smtp_timeout_seconds: int = setting("SMTP_TIMEOUT_SECONDS", "SMTP connect and send timeout",
                                        10)
    mail_from: str = setting("MAIL_FROM", "the sender of every mail",
                             "Tenant API <no-reply@localhost>")
    mail_max_attempts: int = setting("MAIL_MAX_ATTEMPTS", "sends tried before a mail is given "
                                     "up (visible in the outbox)", 8)
    mail_retry_base_seconds: int = setting(
        "MAIL_RETRY_BASE_SECONDS", "wait before the first retry, doubled each time (6 h at "
        "most)", 30)
    public_url: str = setting("PUBLIC_URL", "where the links in mails point (a front end that "
                              "calls the API with the token)", "http://127.0.0.1:8000")
    verify_token_ttl_seconds: int = setting("VERIFY_TOKEN_TTL_SECONDS",
                                            "lifetime of an email verification link", 48 * 3600)
    reset_token_ttl_seconds: int = setting("RESET_TOKEN_TTL_SECONDS",
                                           "lifetime of a password reset link", 3600)
    invitation_ttl_seconds: int = setting("INVITATION_TTL_SECONDS",
                                          "lifetime of an invitation", 7 * 24 * 3600)

    max_content_length: int = setting("MAX_CONTENT_LENGTH", "largest request body, in bytes",
                                      1024 * 1024)
    log_level: str = setting("LOG_LEVEL", "`DEBUG`, `INFO`, `WARNING`, `ERROR`, in any case "
                             "(gunicorn's too)", "INFO")
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
        production = os.environ.get("APP_ENV") == "production"
        values = {f.name: _read(f, production) for f in variables()}
        values["log_level"] = values["log_level"].upper()  # gunicorn takes it in any case
        if "DATABASE_URL" not in os.environ:
            values["database_url"] = f"sqlite:///{Path(values['instance_path']) / 'app.db'}"
        return cls(**values)

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **overrides)

    def check(self) -> None:
        """Refuse configurations that cannot work, and in production those that are only
        acceptable on a developer's machine."""
        if self.log_level not in logging.getLevelNamesMapping():
            raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL "
                              f"(any case), not {self.log_level!r}")
        if self.upload_max_bytes > MAX_COPY_BYTES:
            # `complete` copies an upload with one CopyObject call, which S3 caps at 5 GiB.
            raise ConfigError("UPLOAD_MAX_BYTES may be at most 5 GiB")
        unknown = [t for t in self.upload_content_types if not extensions(t)]
        if unknown:  # no file name could agree with it: nothing could be uploaded
            raise ConfigError(f"UPLOAD_CONTENT_TYPES: no known file extension for "
                              f"{', '.join(unknown)} (see app/media_types.py)")
        try:
            for network in self.trusted_proxy_peers:
                ip_network(network, strict=False)
        except ValueError as exc:
            raise ConfigError(f"TRUSTED_PROXY_PEERS: {exc}") from exc
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
        if self.metrics_token and len(self.metrics_token) < 32:
            raise ConfigError("METRICS_TOKEN must be at least 32 random characters")
        if not self.public_base_url.startswith("https://"):
            raise ConfigError("PUBLIC_BASE_URL must be an https URL in production")
        if "none" in {a.lower() for a in self.jwt_algorithms} or any(
            a.startswith("HS") for a in self.jwt_algorithms
        ):
            raise ConfigError("JWT_ALGORITHMS must list asymmetric algorithms only")


def variables() -> list[Field[Any]]:
    """The fields of `Settings` that an environment variable sets."""
    return [f for f in fields(Settings) if "env" in f.metadata]


def _read(f: Field[Any], production: bool) -> Any:
    default = f.metadata["production"] if production else _SAME
    if default is _SAME:
        default = f.default
    raw = os.environ.get(f.metadata["env"])
    if raw is None or (raw == "" and f.type != "str"):
        return default
    name, kind = f.metadata["env"], str(f.type)
    if kind == "int":
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be an integer") from exc
    if kind == "bool":
        return raw.strip().lower() not in FALSE
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind.startswith("dict"):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be JSON") from exc
    return raw


def shown_default(f: Field[Any]) -> str:
    """The default as docs/configuration.md states it."""
    if f.metadata["shown"] is not None:
        return str(f.metadata["shown"])
    value = f.default
    if isinstance(value, bool):
        value = "1" if value else "0"
    elif isinstance(value, tuple):
        value = ",".join(value)
    text = f"`{value}`" if value != "" else "empty"
    if f.metadata["production"] is not _SAME:
        text += " (production: empty)" if f.metadata["production"] == "" else ""
    return text


OTHER = (
    Variable("APP_DB_ROLE", "tenant_api_app", "the runtime role the migrations grant the "
             "tables to (and that row-level security applies to)", "migrations"),
    Variable("BIND", "127.0.0.1:8000", "address gunicorn listens on", "gunicorn, flask demo"),
    Variable("WEB_CONCURRENCY", "2 per core", "gunicorn worker processes", "gunicorn"),
    Variable("GUNICORN_WORKER_CLASS", "sync", "gunicorn's worker class", "gunicorn"),
    Variable("GUNICORN_THREADS", "1", "threads per worker", "gunicorn"),
    Variable("GUNICORN_TIMEOUT", "30", "seconds before a silent worker is killed and "
             "restarted", "gunicorn"),
    Variable("GUNICORN_MAX_REQUESTS", "10000", "requests a worker serves before it is "
             "replaced (plus up to 500 at random)", "gunicorn"),
    Variable("FORWARDED_ALLOW_IPS", "127.0.0.1", "peers gunicorn believes about the scheme "
             "(`X-Forwarded-Proto`); the client address is `TRUSTED_PROXY_HOPS`'s business",
             "gunicorn"),
    Variable("PROMETHEUS_MULTIPROC_DIR", "a new temporary directory", "where gunicorn's "
             "workers write their metrics for `/metrics` to add up (emptied when gunicorn "
             "starts; one per gunicorn master)", "gunicorn, prometheus-client"),
    Variable("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318", "where "
             "`TRACING_EXPORTER=otlp` sends spans (OTLP/HTTP; the other `OTEL_EXPORTER_OTLP_*` "
             "variables apply too)", "opentelemetry"),
    Variable("DEMO_S3_PORT", "9000", "port of the local S3 server `flask demo` starts when "
             "`S3_ENDPOINT_URL` is not set; another free one is picked when it is taken",
             "flask demo"),
)

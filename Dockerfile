# The API under gunicorn, as a non-root user. Built from a checkout: `docker build -t tenant-api .`
# compose.yaml runs it with PostgreSQL, Redis and an S3-compatible server; README's
# "Production" section says what each setting is. No secret is baked in: every credential
# comes from the environment at run time (tests/deploy/test_deployment_files.py checks it).

# A fixed release of the base image: the CPython the test suite runs on (oso 0.27.3 ships
# wheels up to 3.12).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    APP_ENV=production \
    BIND=0.0.0.0:8000 \
    INSTANCE_PATH=/var/lib/tenant-api \
    JWT_KEYS_FILE=/var/lib/tenant-api/keys/jwt-keys.json

# The user the app runs as: no shell, no password, owns only its state directory.
RUN groupadd --system --gid 10001 tenant-api \
    && useradd --system --uid 10001 --gid tenant-api --home-dir /var/lib/tenant-api \
       --shell /usr/sbin/nologin tenant-api \
    && install -d -o tenant-api -g tenant-api -m 0750 /var/lib/tenant-api /var/lib/tenant-api/keys

# The checkout (policies, migrations and gunicorn.conf.py are read from it), owned by root:
# the app user can read it, not change it. Installed in place (`pip install -e`), so the
# package and its policies are the same files.
WORKDIR /srv/tenant-api
COPY . .
RUN python -m venv /opt/venv && pip install -e .

# By number: what the host and an orchestrator's runAsNonRoot can verify (uid 10001).
USER 10001:10001
EXPOSE 8000

# Liveness: the process answers. Readiness (/readyz: database, Redis, bucket) is for the
# orchestrator's routing; a dependency's outage must not get healthy workers restarted.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]

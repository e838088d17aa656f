# rosterdrop in a container: `docker compose up` (docker-compose.yml) runs it with PostgreSQL
# and Mailpit. The image holds the package in a virtual environment at /opt/rosterdrop, the
# same path the systemd unit uses, and runs as the unprivileged user rosterdrop.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system rosterdrop \
    && useradd --system --gid rosterdrop --home-dir /var/lib/rosterdrop \
        --shell /usr/sbin/nologin rosterdrop \
    && install -d -o rosterdrop -g rosterdrop -m 0750 /var/lib/rosterdrop

WORKDIR /src
# README.md* : the package's long description, when there is one.
COPY pyproject.toml README.md* ./
COPY daemon ./daemon
RUN python -m venv /opt/rosterdrop \
    && /opt/rosterdrop/bin/pip install . \
    && rm -rf /src

# Settings for a container: state in the volume, SFTP on 2222 (no capability needed), health
# and metrics and the Import Manager (8000) reachable from other containers, JSON logs for
# `docker logs`. The compose file
# adds the database and the relay; anything else is a ROSTERDROP_* variable
# (config/rosterdrop.example.toml lists them all).
ENV PATH=/opt/rosterdrop/bin:$PATH \
    ROSTERDROP_DATA_DIR=/var/lib/rosterdrop \
    ROSTERDROP_SFTP_HOST=0.0.0.0 \
    ROSTERDROP_SFTP_PORT=2222 \
    ROSTERDROP_HTTP_HOST=0.0.0.0 \
    ROSTERDROP_HTTP_PORT=8080 \
    ROSTERDROP_WEB_HOST=0.0.0.0 \
    ROSTERDROP_WEB_PORT=8000 \
    ROSTERDROP_LOG_FORMAT=json

USER rosterdrop
WORKDIR /var/lib/rosterdrop
VOLUME /var/lib/rosterdrop
EXPOSE 2222 8080 8000

# Liveness: the event loop answers /healthz. (A test runs this very command against a daemon.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ROSTERDROP_HTTP_PORT', '8080'), timeout=4)"]

# SIGTERM: the daemon lets the running import finish (service.shutdown_timeout, 30 s), so give
# it more than docker's default 10 s (docker-compose.yml: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["rosterdrop"]
CMD ["serve"]

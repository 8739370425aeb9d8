# hookgate: non-root, with the broker extras (redis, nats, rabbitmq; brotli for br bodies). With no DATABASE_URL
# it runs an embedded PostgreSQL in /data, reaped by tini (PID 1).
#
#   docker build -t hookgate .
#   docker build --build-arg BASE=hookgate-base --network host \
#     --secret id=pip-cert,src=/etc/ssl/certs/ca-certificates.crt -t hookgate .
#
# BASE: any Debian-based image with python3 (3.11 or later) and its venv module:
# python:3.11-slim, or one built without a registry by scripts/docker-base.
# pip-cert (optional build secret): a CA bundle pip must trust to reach the index.
ARG BASE=python:3.11-slim
FROM ${BASE}

RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --create-home hookgate \
 && python3 -m venv /opt/hookgate
ENV PATH=/opt/hookgate/bin:$PATH PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml /src/
RUN --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi \
 && python3 -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; \
extras = p['optional-dependencies']; \
print('\n'.join(p['dependencies'] + extras['redis'] + extras['nats'] + extras['rabbitmq'] + extras['br'] + extras['otel']))" \
    > /src/requirements.txt \
 && pip install -r /src/requirements.txt

COPY README.md /src/
COPY gateway /src/gateway
COPY plugins /src/plugins
RUN --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi \
 && pip install --no-deps /src && rm -rf /src
COPY config/example.yaml /etc/hookgate/hookgate.yaml

USER hookgate
WORKDIR /data
# PORT: the port the default config listens on, and the one the HEALTHCHECK asks.
# A config of your own should say `port: ${PORT:-8080}` to keep them together.
ENV PORT=8080 XDG_RUNTIME_DIR=/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8080'); sys.exit(urllib.request.urlopen(url, timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "hookgate"]
CMD ["serve", "--config", "/etc/hookgate/hookgate.yaml", "--host", "0.0.0.0"]

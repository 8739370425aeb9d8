# hookgate: slim, non-root. With no DATABASE_URL it runs an embedded PostgreSQL in /data.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY plugins ./plugins
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --create-home hookgate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY config/example.yaml /etc/hookgate/hookgate.yaml
USER hookgate
WORKDIR /data
ENV PYTHONUNBUFFERED=1 XDG_RUNTIME_DIR=/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["hookgate"]
CMD ["serve", "--config", "/etc/hookgate/hookgate.yaml", "--host", "0.0.0.0"]

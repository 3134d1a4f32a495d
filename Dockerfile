# tocsin in a container: the project in a venv, run as a non-root user, the
# SQLite file on a volume, the configuration mounted read-only:
#
#   docker build -t tocsin .
#   docker run --rm -v "$PWD/tocsin.yml:/etc/tocsin/tocsin.yml:ro" \
#              -v tocsin-data:/var/lib/tocsin -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN tocsin
#
# Relative storage paths resolve against /var/lib/tocsin, the volume.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tocsin
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
COPY incidents ./incidents
COPY probes ./probes
RUN /opt/tocsin/bin/pip install .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 tocsin \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tocsin --shell /usr/sbin/nologin tocsin \
 && install -d -o tocsin -g tocsin -m 0750 /var/lib/tocsin \
 && install -d -m 0755 /etc/tocsin
COPY --from=build /opt/tocsin /opt/tocsin
ENV PATH=/opt/tocsin/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TOCSIN_CONFIG=/etc/tocsin/tocsin.yml \
    TOCSIN_HEALTH_URL=http://127.0.0.1:8080/healthz
USER 10001:10001
WORKDIR /var/lib/tocsin
VOLUME ["/var/lib/tocsin"]
EXPOSE 8080
# Unhealthy when /healthz answers 503 (a stall of the event loop, see README) or not at
# all within 5 s (a loop stuck right now). Set TOCSIN_HEALTH_URL for another listener port.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['TOCSIN_HEALTH_URL'], timeout=5)"]
ENTRYPOINT ["tocsin"]
CMD ["run"]

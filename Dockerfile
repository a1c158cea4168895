# The Steward service (gateway + detectors + API + on-call) for docker compose.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends mosquitto-clients \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY gateway gateway
COPY ingest ingest
COPY detectors detectors
COPY api api
COPY simulators simulators
COPY steward steward
COPY alerts alerts
COPY workorders workorders
COPY oncall oncall
# The steward user is in a group of gid 1883, the mosquitto group of the eclipse-mosquitto
# image, so it can write the devices' password file in the shared auth volume
# (deploy/mosquitto/entrypoint.sh).
RUN pip install --no-cache-dir . \
 && groupadd --gid 1883 broker-auth \
 && useradd --system --uid 10001 --groups broker-auth steward \
 && mkdir -p /data && chown steward /data

USER steward
ENV STEWARD_DATA_DIR=/data \
    STEWARD_API_HOST=0.0.0.0
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"
CMD ["steward", "run", "--no-simulator"]

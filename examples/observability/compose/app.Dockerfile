# An example app image built with tally: two features logged and measured,
# the healthcheck as HEALTHCHECK, the exporter wrapping the app.
# Built by compose.yaml with the repository root as context:
#   docker build -f examples/observability/compose/app.Dockerfile .
FROM debian:bookworm-slim AS tally
RUN apt-get update && apt-get install -y --no-install-recommends make gcc libc6-dev musl-tools \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN make -C /src install PREFIX=/opt/tally

FROM debian:bookworm-slim
COPY --from=tally /opt/tally /opt/tally
ENV ENABLE_JSON_LOGGING=true
RUN . /opt/tally/lib/base/logging.sh \
 && log_feature_start python 3.11 \
 && log_command "Installing Python and jq" sh -c 'apt-get update && apt-get install -y --no-install-recommends python3 jq && rm -rf /var/lib/apt/lists/*' \
 && log_feature_end
RUN . /opt/tally/lib/base/logging.sh \
 && log_feature_start site 1.0.0 \
 && log_command "Writing the site" sh -c 'mkdir -p /srv/www && echo "hello from tally" >/srv/www/index.html' \
 && log_feature_end \
 && log_build_summary
HEALTHCHECK --interval=30s --timeout=30s --start-period=10s --retries=3 \
  CMD ["/opt/tally/bin/healthcheck", "--tcp", "127.0.0.1:8080", "--http", "http://127.0.0.1:8080/"]
EXPOSE 8080 9090
CMD ["/opt/tally/bin/metrics-exporter", "--", "python3", "-m", "http.server", "8080", "--directory", "/srv/www"]

# Dockerfile: the tally toolkit image.
#
# A multi-stage build: the builder stage compiles the static helpers and
# lays out /opt/tally with `make install`; the final stage is FROM scratch
# and holds only /opt/tally (bin/, lib/, VERSION). Add the toolkit to any
# image with
#
#   COPY --from=<this image> /opt/tally /opt/tally
#
# Build:  make image                    (docker build, else buildah bud)
#         docker build -t tally .
#         buildah bud --format docker -t tally .
#
# Build arguments:
#   BUILDER_IMAGE  the image that compiles the helpers (default
#                  debian:bookworm-slim). Any Debian/Ubuntu image (apt-get)
#                  or Alpine image (apk) works; the build tools (make, a C
#                  compiler, musl-gcc where there is one, strip) are
#                  installed unless the image already has them.
#   VERSION, REVISION, CREATED
#                  the org.opencontainers.image.version, .revision and
#                  .created labels (`make image` passes the VERSION file,
#                  the git commit and the UTC time).
#
# Guide: docs/guides/dockerfile.md

ARG BUILDER_IMAGE=debian:bookworm-slim

# ---- builder: compile the static helpers, lay out /opt/tally -------------
FROM ${BUILDER_IMAGE} AS builder

RUN set -e; \
    if command -v make >/dev/null && command -v strip >/dev/null && \
       command -v readelf >/dev/null && \
       { command -v musl-gcc >/dev/null || [ -e /etc/alpine-release ]; }; then \
        echo "tally: the builder image has the build tools"; \
    elif command -v apt-get >/dev/null; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            make gcc libc6-dev musl-tools binutils; \
        rm -rf /var/lib/apt/lists/*; \
    elif command -v apk >/dev/null; then \
        apk add --no-cache make gcc musl-dev binutils; \
    else \
        echo "tally: BUILDER_IMAGE needs make, a C compiler and binutils" >&2; \
        exit 1; \
    fi

COPY . /src
WORKDIR /src

# The helpers must be static: one COPY has to work in Debian, Alpine,
# busybox and distroless images alike.
RUN set -e; \
    make install PREFIX=/opt/tally DESTDIR=/out; \
    for f in /out/opt/tally/bin/tally-*; do \
        if readelf -l "$f" | grep -q 'program interpreter'; then \
            echo "tally: $f is not statically linked" >&2; exit 1; \
        fi; \
    done

# ---- the toolkit image: /opt/tally and nothing else -----------------------
FROM scratch

ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="tally" \
      org.opencontainers.image.description="Observability for container builds: static helpers and POSIX sh libraries in /opt/tally; add them with COPY --from=<this image> /opt/tally /opt/tally" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

COPY --from=builder /out/opt/tally /opt/tally

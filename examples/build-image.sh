#!/bin/sh
# build-image.sh: `make image`. Builds the toolkit image from the
# repository's Dockerfile: with `docker build` where a Docker engine answers
# `docker info`, else with `buildah bud`; says which.
#
# Usage: sh examples/build-image.sh        (from anywhere; `make image`)
# Environment:
#   TALLY_IMAGE     the image name (default tally); tagged NAME:VERSION and
#                   NAME:latest, VERSION from the VERSION file
#   BUILDER_IMAGE   passed as the Dockerfile's build argument when set (the
#                   image that compiles the helpers; default in the
#                   Dockerfile: debian:bookworm-slim)
#   TALLY_BUILDER   docker or buildah: use that one, do not probe
#   BUILDAH_ISOLATION, STORAGE_DRIVER, CONTAINERS_STORAGE_CONF
#                   buildah's own variables; without runc or crun the build
#                   uses BUILDAH_ISOLATION=chroot
# The image's labels get VERSION, the git commit (REVISION) and the UTC
# time (CREATED). buildah builds in the docker format, which keeps
# HEALTHCHECK for the images built on top.
# Exit status: 0 built; 1 the build failed or neither builder is usable;
# 100 TALLY_BUILDER is neither docker nor buildah.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

name=${TALLY_IMAGE:-tally}
version=$(head -n 1 VERSION 2>/dev/null) || version=
[ -n "$version" ] || version=unknown
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null) || revision=unknown
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

set -- --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
	--build-arg "CREATED=$created"
[ -z "${BUILDER_IMAGE-}" ] || set -- "$@" --build-arg "BUILDER_IMAGE=$BUILDER_IMAGE"
set -- "$@" -t "$name:$version" -t "$name:latest" -f Dockerfile .

builder=${TALLY_BUILDER-}
if [ -z "$builder" ]; then
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		builder=docker
	elif command -v buildah >/dev/null 2>&1; then
		builder=buildah
	else
		printf '%s\n' "build-image: no Docker engine answers \`docker info\` and buildah is not installed" \
			"build-image: install one (apt-get install buildah) and run make image again" >&2
		exit 1
	fi
fi

case $builder in
docker)
	printf 'build-image: building %s:%s with docker build\n' "$name" "$version"
	docker build "$@" || exit 1
	;;
buildah)
	if [ -z "${BUILDAH_ISOLATION-}" ] && ! command -v runc >/dev/null 2>&1 &&
		! command -v crun >/dev/null 2>&1; then
		BUILDAH_ISOLATION=chroot
		export BUILDAH_ISOLATION
	fi
	printf 'build-image: building %s:%s with buildah bud (isolation %s)\n' \
		"$name" "$version" "${BUILDAH_ISOLATION:-default}"
	buildah bud --format docker "$@" || exit 1
	;;
*)
	printf 'build-image: TALLY_BUILDER must be docker or buildah, not %s\n' "$builder" >&2
	exit 100
	;;
esac
printf 'build-image: built %s:%s (and %s:latest)\n' "$name" "$version" "$name"
printf 'build-image: use it with COPY --from=%s:%s /opt/tally /opt/tally\n' "$name" "$version"

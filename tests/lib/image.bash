# image.bash: helpers for tests/e2e/image.bats: a private buildah storage,
# and the base images made here (no image can be pulled): a Debian rootfs
# from debootstrap, the same with the build tools, and a busybox-static
# rootfs. `load ../lib/image` after `load ../lib/common`.
#
# The base rootfs tarballs are cached in build/cache/images/ (IMAGE_CACHE),
# each named after a hash of what made it (this file, the Debian mirror and
# suite, the package list, the busybox-static package), so a change to any
# of them makes a new one. Everything else (storage, containers, outputs)
# lives in BATS_FILE_TMPDIR.

IMAGE_CACHE=$TALLY_BUILD/cache/images
IMAGE_SUITE=bookworm
# The build tools the Dockerfile's builder stage needs.
IMAGE_BUILD_PACKAGES=make,gcc,libc6-dev,musl-tools,binutils

# image_store_init: sets IMAGE_STORE (the buildah storage of this test file).
image_store_init() {
	IMAGE_STORE=$BATS_FILE_TMPDIR/containers
	mkdir -p "$IMAGE_STORE/root" "$IMAGE_STORE/run"
	export IMAGE_STORE
}

# bah ARG...: buildah with the test's own storage (vfs: no privileges beyond
# root, no fuse, no overlay).
bah() {
	buildah --root "$IMAGE_STORE/root" --runroot "$IMAGE_STORE/run" \
		--storage-driver vfs "$@"
}

# bah_bud ARG...: buildah bud as the test builds every image: chroot
# isolation, docker format (the OCI format drops HEALTHCHECK), no pulling.
bah_bud() {
	bah bud --isolation chroot --format docker --pull-never --layers=false "$@"
}

# debian_mirror: prints the Debian mirror the host's apt already uses
# (deb822 sources or sources.list), else http://deb.debian.org/debian.
debian_mirror() {
	local m=''
	m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')
	[ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }')
	printf '%s\n' "${m:-http://deb.debian.org/debian}"
}

# cache_key WORD...: prints a short hash of this file and the words.
cache_key() {
	{ cat "$BATS_TEST_DIRNAME/../lib/image.bash"; printf '%s\n' "$@"; } |
		sha256sum | cut -c1-16
}

# rootfs_debootstrap TARBALL [PACKAGES]: makes TARBALL, a minbase Debian
# rootfs (with PACKAGES, comma-separated, when given), unless it exists.
rootfs_debootstrap() {
	local tarball=$1 include=${2-} dir='' opt=''
	[ -s "$tarball" ] && return 0
	dir=$(mktemp -d "$IMAGE_CACHE/.debootstrap.XXXXXX")
	[ -z "$include" ] || opt=--include=$include
	# shellcheck disable=SC2086
	if ! debootstrap --variant=minbase $opt "$IMAGE_SUITE" "$dir/root" "$(debian_mirror)" \
		>"$dir.log" 2>&1; then
		printf 'debootstrap failed (log: %s.log):\n' "$dir" >&2
		tail -20 "$dir.log" >&2
		rm -rf "$dir"
		return 1
	fi
	# Leave no apt lists or caches in the image.
	rm -rf "$dir/root/var/lib/apt/lists/"* "$dir/root/var/cache/apt/"*.bin
	tar -C "$dir/root" -cf "$dir/rootfs.tar" . &&
		mv "$dir/rootfs.tar" "$tarball"
	rm -rf "$dir" "$dir.log"
	[ -s "$tarball" ]
}

# busybox_static_deb DIR: downloads the busybox-static package into DIR and
# prints its path (Debian's /bin/busybox is dynamically linked).
busybox_static_deb() {
	(cd "$1" && apt-get download busybox-static >/dev/null 2>&1) || return 1
	ls "$1"/busybox-static_*.deb
}

# rootfs_busybox TARBALL DEB: makes TARBALL, a busybox rootfs: the static
# busybox of DEB as /bin/busybox, a link for each of its applets, a root and
# a nobody account, /tmp and an os-release; unless it exists.
rootfs_busybox() {
	local tarball=$1 deb=$2 dir='' a=''
	[ -s "$tarball" ] && return 0
	dir=$(mktemp -d "$IMAGE_CACHE/.busybox.XXXXXX")
	dpkg-deb -x "$deb" "$dir/pkg" || return 1
	mkdir -p "$dir/root/bin" "$dir/root/sbin" "$dir/root/usr/bin" "$dir/root/usr/sbin" \
		"$dir/root/etc" "$dir/root/root" "$dir/root/tmp" "$dir/root/var" "$dir/root/run" \
		"$dir/root/proc" "$dir/root/sys" "$dir/root/dev"
	chmod 1777 "$dir/root/tmp"
	cp "$dir/pkg/bin/busybox" "$dir/root/bin/busybox"
	for a in $("$dir/root/bin/busybox" --list-full); do
		[ -e "$dir/root/$a" ] || ln -s /bin/busybox "$dir/root/$a"
	done
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
		>"$dir/root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$dir/root/etc/group"
	printf '%s\n' 'ID=busybox' "VERSION_ID=$("$dir/root/bin/busybox" | sed -n '1s/^BusyBox v\([0-9.]*\).*/\1/p')" \
		'PRETTY_NAME="BusyBox (static)"' >"$dir/root/etc/os-release"
	tar -C "$dir/root" -cf "$dir/rootfs.tar" . &&
		mv "$dir/rootfs.tar" "$tarball"
	rm -rf "$dir"
	[ -s "$tarball" ]
}

# image_import TARBALL NAME: commits the rootfs TARBALL as image NAME in the
# test's storage, with a standard PATH.
image_import() {
	local c=''
	c=$(bah from scratch) || return 1
	bah add "$c" "$1" / >/dev/null &&
		bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			--cmd /bin/sh "$c" &&
		bah commit --quiet --rm "$c" "$2" >/dev/null
}

# base_images_make: makes (or takes from the cache) the three base images
# and imports them as localhost/tally-test-debian, -debian-build and
# -busybox; removes cached tarballs no longer current.
base_images_make() {
	local mirror='' deb='' kd='' kb='' kbb='' p1='' p2='' rc=0 f=''
	mkdir -p "$IMAGE_CACHE"
	mirror=$(debian_mirror)
	kd=debian-$(cache_key debian "$IMAGE_SUITE" "$mirror").tar
	kb=debian-build-$(cache_key debian-build "$IMAGE_SUITE" "$mirror" "$IMAGE_BUILD_PACKAGES").tar
	# The package's own checksum, from apt's lists: no download when cached.
	kbb=busybox-$(cache_key busybox "$(apt-cache show --no-all-versions busybox-static 2>/dev/null |
		sed -n 's/^SHA256: //p')").tar
	# The two debootstraps run side by side (each is mostly downloading).
	rootfs_debootstrap "$IMAGE_CACHE/$kd" &
	p1=$!
	rootfs_debootstrap "$IMAGE_CACHE/$kb" "$IMAGE_BUILD_PACKAGES" &
	p2=$!
	wait "$p1" || rc=1
	wait "$p2" || rc=1
	[ "$rc" = 0 ] || return 1
	if [ ! -s "$IMAGE_CACHE/$kbb" ]; then
		mkdir -p "$BATS_FILE_TMPDIR/deb"
		deb=$(busybox_static_deb "$BATS_FILE_TMPDIR/deb") || {
			printf 'apt-get download busybox-static failed\n' >&2
			return 1
		}
		rootfs_busybox "$IMAGE_CACHE/$kbb" "$deb" || return 1
	fi
	for f in "$IMAGE_CACHE"/*.tar; do
		case ${f##*/} in "$kd" | "$kb" | "$kbb") ;; *) rm -f "$f" ;; esac
	done
	image_import "$IMAGE_CACHE/$kd" localhost/tally-test-debian &&
		image_import "$IMAGE_CACHE/$kb" localhost/tally-test-debian-build &&
		image_import "$IMAGE_CACHE/$kbb" localhost/tally-test-busybox
}

#!/bin/bash
# Builds the container image with buildah (Debian 12, as root), then prints its size, compressed
# size and layers. Usage: scripts/image.sh [TAG]   (default okg-sidecar:<version>)
#                         scripts/image.sh --base-only  (only make the base ready; the test
#                         command runs this beside the kube-apiserver build, since debootstrap
#                         waits on the network and the disk more than on the CPU)
#
# The base, debian:12-slim, comes from a registry when one answers. Where none does, this makes
# a stand-in with debootstrap that is what debian:12-slim is: a minbase bookworm with Debian's
# container apt and dpkg settings (no package cache kept, no docs, man pages or translations),
# the bookworm, bookworm-updates and bookworm-security sources, and none of the build host's
# /etc/hostname, /etc/resolv.conf or device nodes. Its root file system is cached in
# /var/cache/okg-sidecar, so only the first run on a machine downloads it.
#
# OKG_IMAGE_BASE=standin skips the registry; OKG_DEBIAN_MIRROR overrides the archive.
set -euo pipefail
cd "$(dirname "$0")/.."

base_only=false
if [ "${1:-}" = --base-only ]; then
        base_only=true
        shift
fi
version=$(sed -n "s/^ *version : '\(.*\)',/\1/p" meson.build | head -1)
tag=${1:-okg-sidecar:$version}
base=docker.io/library/debian:12-slim
cache=/var/cache/okg-sidecar
standin_tar=$cache/debian-12-slim-standin.tar.gz
mirror=${OKG_DEBIAN_MIRROR:-http://deb.debian.org/debian}

for tool in buildah debootstrap; do
        if ! command -v "$tool" >/dev/null; then
                echo "image: $tool is missing; run scripts/setup.sh" >&2
                exit 1
        fi
done
if [ "$(id -u)" -ne 0 ]; then
        echo "image: run as root (debootstrap and the image store need it)" >&2
        exit 1
fi

log() { echo "image: $*"; }

# The root file system of the stand-in, as a tarball.
make_standin_tar() {
        local root
        root=$(mktemp -d /var/tmp/okg-standin.XXXXXX)
        # shellcheck disable=SC2064
        trap "rm -rf '$root'" RETURN
        log "debootstrap --variant=minbase bookworm (once per machine, about a minute)"
        debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
                tail -20 "$root.log" >&2
                rm -f "$root.log"
                return 1
        }
        rm -f "$root.log"

        # What Debian's container images set up for apt and dpkg.
        cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
// No package cache in a container image: remove downloaded .debs and the binary caches after
// every dpkg run and every update, and do not write the caches at all.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
        cat >"$root/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
Acquire::Languages "none";
EOF
        cat >"$root/etc/apt/apt.conf.d/docker-gzip-indexes" <<'EOF'
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
EOF
        cat >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'EOF'
Apt::AutoRemove::SuggestsImportant "false";
EOF
        cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# The slim variant: no documentation, man pages or translations (copyright files stay).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
        # The same for what debootstrap already installed.
        find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
        rm -rf "$root"/usr/share/{man,groff,info,locale,lintian,linda}/*

        # Sources as in the real image: the release, its updates and its security updates.
        rm -f "$root/etc/apt/sources.list"
        cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        # Nothing of the build host, nothing a container runtime provides: the runtime writes
        # /etc/hostname and /etc/resolv.conf and mounts /dev.
        rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
        find "$root/dev" -mindepth 1 -delete
        rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
                "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/archives/partial/* \
                "$root"/var/cache/ldconfig/aux-cache "$root"/tmp/* "$root"/var/tmp/*
        find "$root/var/log" -type f -delete
        : >"$root/etc/machine-id"

        mkdir -p "$cache"
        tar -C "$root" --numeric-owner -czf "$standin_tar.tmp" .
        mv "$standin_tar.tmp" "$standin_tar"
}

# The stand-in image from the cached tarball: buildah from scratch, mount, copy, commit.
import_standin() {
        local ctr mnt
        ctr=$(buildah from scratch)
        mnt=$(buildah mount "$ctr")
        tar -C "$mnt" --numeric-owner -xzf "$standin_tar"
        buildah umount "$ctr" >/dev/null
        buildah config --cmd '["bash"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                --created-by "okg-sidecar scripts/image.sh: debootstrap stand-in for debian:12-slim" \
                "$ctr"
        buildah commit --rm --quiet "$ctr" "$base" >/dev/null
}

if buildah inspect --type image "$base" >/dev/null 2>&1; then
        log "base $base is in the local store"
elif [ "${OKG_IMAGE_BASE:-}" != standin ] && timeout 60 buildah pull --quiet "$base" >/dev/null 2>&1; then
        log "base $base pulled from its registry"
else
        [ -f "$standin_tar" ] || make_standin_tar
        import_standin
        log "base $base is the debootstrap stand-in ($standin_tar)"
fi
$base_only && exit 0

start=$(date +%s)
log "buildah build -t $tag"
buildah build --pull=never --layers --network host \
        -f deploy/Containerfile --ignorefile deploy/Containerfile.dockerignore -t "$tag" . \
        >"${OKG_IMAGE_LOG:-/var/tmp/okg-image-build.log}" 2>&1 || {
        tail -30 "${OKG_IMAGE_LOG:-/var/tmp/okg-image-build.log}" >&2
        echo "image: build FAILED (log: ${OKG_IMAGE_LOG:-/var/tmp/okg-image-build.log})" >&2
        exit 1
}
log "built $tag in $(($(date +%s) - start)) s"

# Sizes: as stored (uncompressed), and as a registry would hold it (gzip'ed layers).
oci=$(mktemp -d /var/tmp/okg-image-oci.XXXXXX)
trap 'rm -rf "$oci"' EXIT
buildah push --quiet --format oci --compression-format gzip "$tag" "oci:$oci/img" >/dev/null
python3 - "$oci/img" "$tag" <<'EOF'
import gzip, json, os, sys
d, tag = sys.argv[1], sys.argv[2]
def blob(digest):
    algo, h = digest.split(":")
    return os.path.join(d, "blobs", algo, h)
index = json.load(open(os.path.join(d, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
history = [h for h in config.get("history", []) if not h.get("empty_layer")]
rows = []
for layer in manifest["layers"]:
    n = 0
    with gzip.open(blob(layer["digest"])) as f:
        while chunk := f.read(1 << 20):
            n += len(chunk)
    rows.append((layer["size"], n))
print(f"image: {tag}: {len(rows)} layers, {sum(r[1] for r in rows) / 1e6:.1f} MB, "
      f"{sum(r[0] for r in rows) / 1e6:.1f} MB compressed (gzip, as pushed)")
print("image:   layer (tar)  compressed  created by")
for (packed, size), h in zip(rows, history):
    what = " ".join(h.get("created_by", "").split())
    print(f"image:   {size / 1e6:8.1f} MB {packed / 1e6:8.1f} MB  {what[:80]}")
EOF

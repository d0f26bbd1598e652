#!/bin/bash
# The image stage of scripts/test.sh: builds the image (scripts/image.sh: buildah, on a
# debootstrap stand-in for debian:12-slim where no registry answers), prints its size and
# layers, then runs tests/image against it. The runner is podman (runtime runc) where it can run a
# container, else the image's root file system under unshare + chroot (OKG_IMAGE_RUNNER).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

start=$(date +%s)
version=$(sed -n "s/^ *version : '\(.*\)',/\1/p" meson.build | head -1)
export OKG_IMAGE=${OKG_IMAGE:-localhost/okg-sidecar:$version}
./scripts/image.sh "$OKG_IMAGE" || exit 1
echo "image: built in $(($(date +%s) - start)) s (the base and layer caches make later runs quicker)"

# On this kind of machine (a VM without systemd, cgroup v1, low hard rlimits) podman needs runc,
# the cgroupfs manager and rlimits under the hard ones.
export OKG_PODMAN=${OKG_PODMAN:-podman --runtime runc --cgroup-manager cgroupfs}
export OKG_PODMAN_RUN=${OKG_PODMAN_RUN:---ulimit nofile=4096:4096 --ulimit nproc=4096:4096}
if [ -z "${OKG_IMAGE_RUNNER:-}" ]; then
        # shellcheck disable=SC2086
        if $OKG_PODMAN run --rm $OKG_PODMAN_RUN --network host \
                --entrypoint /usr/bin/okg-sidecard "$OKG_IMAGE" --version >/dev/null 2>&1; then
                OKG_IMAGE_RUNNER=podman
        else
                echo "image: podman cannot run a container here; running the image's files under unshare + chroot"
                OKG_IMAGE_RUNNER=chroot
        fi
fi
export OKG_IMAGE_RUNNER
echo "image: tests with runner $OKG_IMAGE_RUNNER"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/image
rc=$?
echo "image: stage took $(($(date +%s) - start)) s"
exit $rc

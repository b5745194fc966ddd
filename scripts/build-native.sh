#!/usr/bin/env bash
# Builds the native addon (native/*.c: the fan-out, the camera's UDP receive, and SRTCP) into
# prebuilds/linux-<arch>/srtp-fanout.node, for each
# architecture whose compiler is installed: gcc for this machine, aarch64-linux-gnu-gcc for 64-bit
# Raspberry Pis (apt: gcc-aarch64-linux-gnu), arm-linux-gnueabihf-gcc for 32-bit ones (apt:
# gcc-arm-linux-gnueabihf). The binaries are committed: users never compile, and
# the plugin falls back to its JavaScript SRTP writer wherever a binary does not load.
#
# The SHA-256 of its sources (NATIVE_SOURCES, in this order, one after another) is compiled in;
# test/rtp/native-fanout.test.ts fails when a committed binary was built from other sources.
#
# usage: scripts/build-native.sh [x64|arm64|arm ...]   (default: every one with a compiler)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh >/dev/null
node_include="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node"
[ -f "$node_include/node_api.h" ] || { echo "no Node headers at $node_include" >&2; exit 1; }
# Keep in step with NATIVE_SOURCES in test/rtp/native-fanout.test.ts.
sources=(native/addon.h native/srtp-fanout.c native/udp-receive.c native/srtcp.c)
hash=$(cat "${sources[@]}" | sha256sum | cut -d' ' -f1)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x64 arm64 arm)
for arch in "${targets[@]}"; do
  case "$arch" in
    x64) cc=x86_64-linux-gnu-gcc; command -v "$cc" >/dev/null || cc=gcc; strip=strip ;;
    arm64) cc=aarch64-linux-gnu-gcc; strip=aarch64-linux-gnu-strip ;;
    # 32-bit: ARMv7 with a VFPv3 (Debian's armhf baseline, and the official Node armv7l's). A Pi 1
    # or Zero is ARMv6, and its Node (an unofficial armv6l build) reports the same process.arch:
    # src/rtp/native-fanout.ts does not load this binary under a Node built for ARMv6.
    arm) cc=arm-linux-gnueabihf-gcc; strip=arm-linux-gnueabihf-strip ;;
    *) echo "unknown architecture $arch" >&2; exit 2 ;;
  esac
  if ! command -v "$cc" >/dev/null; then echo "skipping $arch: no $cc"; continue; fi
  out=prebuilds/linux-$arch/srtp-fanout.node
  mkdir -p "$(dirname "$out")"
  # -O2, position-independent, only the module's init exported, every warning an error.
  # Node's own OpenSSL and N-API symbols are left undefined: the node process provides them.
  # -z now binds them all when Node loads the file, so a Node without one of them refuses the
  # binary at load (and the plugin uses JavaScript) instead of crashing at the first call.
  "$cc" -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -std=c11 -Wl,-z,now \
    -DSOURCE_HASH="\"$hash\"" -I"$node_include" -o "$out" native/srtp-fanout.c native/udp-receive.c native/srtcp.c
  "$strip" --strip-unneeded "$out"
  echo "built $out ($(stat -c %s "$out") bytes, source $hash)"
done

#!/usr/bin/env bash
# Sets up the machine for the demo (scripts/setup.sh --demo), then starts Homebridge with this plugin
# and no camera configured, so the plugin serves its embedded demo camera. The page, the re-stream
# and the WebRTC sockets bind to 127.0.0.1; HomeKit's port listens on every interface (HAP-NodeJS
# always does) with a setup code made at random for the storage folder (scripts/demo-config.sh).
# The plugin prints the URL to open. Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --demo
source scripts/node-env.sh

storage="${DEMO_STORAGE:-$PWD/.demo}"
web_port="${DEMO_WEB_PORT:-8090}"
bridge_port="${DEMO_BRIDGE_PORT:-51826}"
bash scripts/demo-config.sh "$storage" "$web_port" "$bridge_port"
echo "demo: Homebridge storage is $storage"
exec node node_modules/homebridge/bin/homebridge.js -U "$storage" -P "$PWD" -Q

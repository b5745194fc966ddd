#!/usr/bin/env bash
# Sets up the machine for the demo (scripts/setup.sh --demo), then starts Homebridge with this plugin
# and no camera configured, so the plugin serves its embedded demo camera. Everything binds to
# 127.0.0.1. The plugin prints the URL to open. Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --demo
source scripts/node-env.sh

storage="${DEMO_STORAGE:-$PWD/.demo}"
web_port="${DEMO_WEB_PORT:-8090}"
bridge_port="${DEMO_BRIDGE_PORT:-51826}"
mkdir -p "$storage"
if [ ! -f "$storage/config.json" ]; then
  cat > "$storage/config.json" <<JSON
{
  "bridge": {
    "name": "WebRTC Cameras Demo",
    "username": "0E:C4:7A:3D:51:22",
    "port": $bridge_port,
    "pin": "031-45-154",
    "bind": ["127.0.0.1"]
  },
  "platforms": [
    {
      "platform": "WebRTCCameras",
      "name": "WebRTC Cameras",
      "web": { "port": $web_port, "bind": "127.0.0.1" },
      "restream": { "port": 0 },
      "cameras": []
    }
  ]
}
JSON
fi
echo "demo: Homebridge storage is $storage"
exec node node_modules/homebridge/bin/homebridge.js -U "$storage" -P "$PWD" -Q

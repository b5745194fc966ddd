#!/usr/bin/env bash
# Writes the demo's Homebridge config.json into a storage folder, once (an existing file is kept):
# usage: demo-config.sh <storage> <web port> <bridge port>. The HomeKit setup code is random per
# storage folder, because HAP-NodeJS always listens on every interface and a published code would
# let anyone on the network pair with the demo bridge.
set -euo pipefail
storage="$1"
web_port="$2"
bridge_port="$3"
mkdir -p "$storage"
[ -f "$storage/config.json" ] && exit 0

# 8 random digits as XXX-XX-XXX; HomeKit refuses all-same digits and 12345678 / 87654321.
while :; do
  digits=$(od -An -N8 -tu1 /dev/urandom | tr -s ' ' '\n' | grep -v '^$' | while read -r byte; do printf '%d' $((byte % 10)); done)
  case "$digits" in
    00000000|11111111|22222222|33333333|44444444|55555555|66666666|77777777|88888888|99999999|12345678|87654321) continue ;;
  esac
  break
done
pin="${digits:0:3}-${digits:3:2}-${digits:5:3}"
# A random bridge id too, so two demo folders are two bridges to the Home app.
mac=$(od -An -N5 -tx1 /dev/urandom | tr -s ' ' ':' | sed 's/^://; s/:$//' | tr 'a-f' 'A-F')

umask 077
cat > "$storage/config.json" <<JSON
{
  "bridge": {
    "name": "WebRTC Cameras Demo",
    "username": "0E:$mac",
    "port": $bridge_port,
    "pin": "$pin",
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
echo "demo: HomeKit setup code for this demo folder: $pin"

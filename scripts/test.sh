#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh) and runs the whole suite: lint,
# typecheck, build and every test, unit and end-to-end, against real peers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
source scripts/node-env.sh
npm test

#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh) and runs the whole suite: lint,
# typecheck, build and every test, unit and end-to-end, against real peers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
source scripts/node-env.sh
# A failed run ends with a digest of what the peers logged during each failed test
# (scripts/failure-digest.mjs): CI shows only the end of the output.
export WRC_FAILURE_LOG_FILE="$PWD/.test-artifacts/failure-logs.txt"
rm -f "$WRC_FAILURE_LOG_FILE"
status=0
npm test || status=$?
if [ "$status" -ne 0 ]; then node scripts/failure-digest.mjs "$WRC_FAILURE_LOG_FILE" || true; fi
exit "$status"

#!/usr/bin/env bash
# The whole suite: type-check everything (src, tests, benches), then unit and integration tests
# on node:test. Integration tests start their own haproxy/pebble on loopback with free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
CERTD_BOOTSTRAP_TEST=1 bash scripts/bootstrap.sh
npx tsc -p tsconfig.check.json
mapfile -t files < <(find src test -name '*.test.ts' | sort)
exec node --import tsx --test --test-concurrency=2 --test-timeout=300000 "${files[@]}"

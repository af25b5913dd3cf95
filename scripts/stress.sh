#!/usr/bin/env bash
# The suite under load: `npm test` N times in a row (default 3) while `stress-ng --cpu 2` keeps
# both cores busy beside it. Stops at the first failed run. The load is stopped on every exit.
#   bash scripts/stress.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}

if ! command -v stress-ng >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null
fi
stress-ng --cpu 2 --quiet &
load=$!
trap 'kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true' EXIT

for ((i = 1; i <= runs; i++)); do
  start=$SECONDS
  rc=0
  npm test >"stress-run-$i.log" 2>&1 || rc=$?
  echo "# stress run $i/$runs: exit $rc in $((SECONDS - start)) s; $(grep -E '^# (pass|fail) ' "stress-run-$i.log" | tail -n2 | tr '\n' ' ')"
  ((rc == 0)) || { echo "# see stress-run-$i.log"; exit "$rc"; }
done
echo "# $runs of $runs runs passed under stress-ng --cpu 2"

#!/usr/bin/env bash
# The whole suite: type-check everything (src, tests, benches), then unit and integration tests
# on node:test. Integration tests start their own haproxy/pebble on loopback with free ports.
#
# Version matrix: every file on Debian 12's HAProxy 2.6, then the files that start an HAProxy on
# 3.0 and 3.2 (from Debian's archive, see scripts/haproxy-versions.sh). One version alone:
#   bash scripts/test.sh --haproxy 3.0     (or: npm test -- --haproxy 3.0; 2.6 runs every file)
# Prints each version's file list with pass/fail counts, then the matrix totals in node's summary
# form; exits non-zero if any version failed.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=(2.6 3.0 3.2)
if [[ ${1:-} == --haproxy ]]; then
  case ${2:-} in
    2.6 | 3.0 | 3.2) versions=("$2") ;;
    *) echo "test.sh: --haproxy takes 2.6, 3.0 or 3.2" >&2; exit 2 ;;
  esac
elif [[ $# -gt 0 ]]; then
  echo "usage: test.sh [--haproxy 2.6|3.0|3.2]" >&2
  exit 2
fi

CERTD_BOOTSTRAP_TEST=1 bash scripts/bootstrap.sh
declare -A bin=([2.6]=)
for v in "${versions[@]}"; do
  [[ $v == 2.6 ]] || bin[$v]=$(bash scripts/haproxy-versions.sh "$v")
done
npx tsc -p tsconfig.check.json

mapfile -t all < <(find src test -name '*.test.ts' | sort)
# The files that start a real HAProxy: what a new version can break.
mapfile -t facing < <(grep -lE "helpers/(haproxy|stack|fleet)\.js|managed-haproxy\.js" "${all[@]}")

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Every process the tests start inherits this mark: whatever still carries it after the run was
# left behind (a test that did not stop its server). Listed, killed, and the run fails.
export CERTD_TEST_RUN="certd-test-$$-$RANDOM"
# (grep runs without the mark, so it does not find itself; this shell got it after its own exec.)
leftovers() {
  local f
  env -u CERTD_TEST_RUN grep -lsa "CERTD_TEST_RUN=$CERTD_TEST_RUN" /proc/[0-9]*/environ | while read -r f; do f=${f#/proc/}; echo "${f%%/*}"; done
}
failed=()
for v in "${versions[@]}"; do
  if [[ $v == 2.6 ]]; then files=("${all[@]}"); else files=("${facing[@]}"); fi
  echo "# HAProxy $v: ${#files[@]} files"
  rc=0
  CERTD_HAPROXY_VERSION=$v CERTD_HAPROXY_BIN=${bin[$v]} node --import tsx --test --test-concurrency=2 --test-timeout=300000 \
    --test-reporter=tap --test-reporter-destination=stdout \
    --test-reporter=./scripts/test-files-reporter.mjs --test-reporter-destination="$out/files-$v" \
    "${files[@]}" | tee "$out/tap-$v" || rc=$?
  ((rc == 0)) || failed+=("$v")
done

sleep 1 # children that are exiting right now
mapfile -t left < <(leftovers)
if ((${#left[@]} > 0)); then
  echo "# LEFT RUNNING after the tests: ${#left[@]} process(es), now killed:"
  for pid in "${left[@]}"; do echo "#   $pid $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)"; done
  kill -9 "${left[@]}" 2>/dev/null || true
  failed+=("leftovers")
fi

# A key of node's closing summary in one version's output (its last occurrence).
summary() { grep "^# $2 " "$out/tap-$1" | tail -n1 | cut -d' ' -f3; }
echo "# version matrix"
for v in "${versions[@]}"; do
  echo "# HAProxy $v: $(summary "$v" pass) pass, $(summary "$v" fail) fail"
  sed 's/^/#   /' "$out/files-$v"
done
((${#failed[@]} == 0)) || echo "# FAILED on HAProxy ${failed[*]}"
# The closing lines CI reads: node's summary keys, summed over the versions run.
for key in tests suites pass fail cancelled skipped todo duration_ms; do
  for v in "${versions[@]}"; do summary "$v" "$key"; done | awk -v key="$key" '{ sum += $1 } END { printf "# %s %.0f\n", key, sum }'
done
((${#failed[@]} == 0))

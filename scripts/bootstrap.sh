#!/usr/bin/env bash
# Makes a fresh Debian machine ready: Debian packages, node_modules, build. Idempotent and quiet
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the demo and the tests need (binary -> package).
declare -A wanted=( [haproxy]=haproxy [openssl]=openssl [curl]=curl )
if [[ "${CERTD_BOOTSTRAP_TEST:-}" == 1 ]]; then
  # Test servers, started privately by the tests (never as system services).
  wanted[pebble]=pebble
  wanted[named]=bind9
  wanted[dig]=bind9-dnsutils
  wanted[systemd-analyze]=systemd; wanted[docker-compose]=docker-compose  # service-file checks
  wanted[promtool]=prometheus  # checks contrib/prometheus/alerts.yml
  wanted[chromium]=chromium  # headless browser for the status page test (driven by playwright-core)
  wanted[logrotate]=logrotate  # rotates with contrib/logrotate/haproxy-certd
fi
missing=()
# PostgreSQL 15's binaries live off PATH; tests run initdb into temp dirs (test/helpers/postgres.ts).
[[ "${CERTD_BOOTSTRAP_TEST:-}" != 1 || -x /usr/lib/postgresql/15/bin/initdb ]] || missing+=(postgresql)
if [[ "${CERTD_BOOTSTRAP_BENCH:-}" == 1 ]]; then
  # The peers the benchmarks run side by side with certd (never as system services either).
  wanted[caddy]=caddy
  wanted[certbot]=certbot
  wanted[lego]=lego
  wanted[pebble]=pebble
fi
for bin in "${!wanted[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [[ -x "/usr/sbin/$bin" ]] || missing+=("${wanted[$bin]}")
done
if (( ${#missing[@]} )); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${missing[*]} (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    # haproxy, bind9 and friends must not start as system services: tests run private copies.
    policy=/usr/sbin/policy-rc.d
    [[ -e $policy ]] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; trap 'rm -f "$policy"' EXIT; }
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
    echo "bootstrap: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "bootstrap: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

if [[ ! -f dist/cli/main.js ]] || [[ -n "$(find src -name '*.ts' -newer dist/cli/main.js -print -quit)" ]]; then
  echo "bootstrap: building" >&2
  npx tsc -p tsconfig.json
fi

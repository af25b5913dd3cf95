#!/usr/bin/env bash
# haproxy-certd exec hook → an acme.sh `dnsapi` script (dns_<provider>.sh), for the ~150 DNS
# providers acme.sh supports. certd calls hooks with lego's exec protocol:
#
#   acme-sh-dnsapi.sh present|cleanup <fqdn.> <value>
#
# and this wrapper calls `dns_<provider>_add <fqdn> <value>` or `dns_<provider>_rm …`.
#
# certd.yaml:
#   dns:
#     solvers:
#       - zones: [example.org]
#         exec: { command: [/usr/local/lib/haproxy-certd/acme-sh-dnsapi.sh, dns_cf], timeout: 2m }
#
# The provider's credentials come from the environment certd runs with (e.g. CF_Token,
# CF_Zone_ID in the systemd unit's EnvironmentFile); certd masks values of variables whose names
# contain TOKEN, SECRET, PASS, KEY, AUTH or CRED in the stderr it reports.
# ACMESH_HOME is where acme.sh is installed (default ~/.acme.sh); its acme.sh is sourced for the
# helper functions (_get, _post, _info, …) that dnsapi scripts use.
set -euo pipefail

provider=${1:?usage: acme-sh-dnsapi.sh dns_<provider> present|cleanup <fqdn> <value>}
action=${2:?missing action (present or cleanup)}
fqdn=${3:?missing fqdn}
value=${4:?missing value}
fqdn=${fqdn%.}  # acme.sh takes the name without the trailing dot
[[ $provider =~ ^dns_[A-Za-z0-9_]+$ ]] || { echo "not a dnsapi name: $provider (like dns_cf)" >&2; exit 2; }

home=${ACMESH_HOME:-$HOME/.acme.sh}
script="$home/dnsapi/$provider.sh"
[[ -r $home/acme.sh ]] || { echo "acme.sh not found in $home: install it or set ACMESH_HOME" >&2; exit 2; }
[[ -r $script ]] || { echo "dnsapi script not found: $script" >&2; exit 2; }

# Sourced without arguments, acme.sh defines its functions and only prints its help (to /dev/null).
load_acmesh() { . "$home/acme.sh" >/dev/null; }
set +eu  # acme.sh and dnsapi scripts are written for plain sh semantics
load_acmesh
_initpath >/dev/null 2>&1 || true
. "$script"

case $action in
  present) "${provider}_add" "$fqdn" "$value" ;;
  cleanup) "${provider}_rm" "$fqdn" "$value" ;;
  *) echo "unknown action $action (present or cleanup)" >&2; exit 2 ;;
esac

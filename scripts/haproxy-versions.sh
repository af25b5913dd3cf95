#!/usr/bin/env bash
# Obtains a newer HAProxy from Debian's archive and prints the path of a launcher for it:
#   bash scripts/haproxy-versions.sh 3.0   # Debian 13 trixie (3.0.x)
#   bash scripts/haproxy-versions.sh 3.2   # Debian forky (3.2.x)
# The binary lives in a debootstrap chroot cached outside the repo (CERTD_HAPROXY_CACHE, default
# /var/cache/haproxy-certd/<suite>), made once per machine. The launcher
# (<cache>/<suite>.haproxy) runs the chroot's /usr/sbin/haproxy in a private mount namespace, so
# nothing else on the machine sees the swap; point CERTD_HAPROXY_BIN at it. Needs root.
set -euo pipefail

version=${1:?usage: haproxy-versions.sh 3.0|3.2}
case $version in
  3.0) suite=trixie; script= ;;
  # Debian 12's debootstrap has no script for forky yet; sid's fits (forky is testing).
  3.2) suite=forky; script=sid ;;
  *) echo "haproxy-versions: unknown version '$version' (known: 3.0, 3.2)" >&2; exit 2 ;;
esac
cache=${CERTD_HAPROXY_CACHE:-/var/cache/haproxy-certd}
root=$cache/$suite
launcher=$cache/$suite.haproxy

if [[ $(id -u) != 0 ]]; then
  echo "haproxy-versions: needs root (debootstrap, unshare --mount); without it, test on 2.6 alone: npm test -- --haproxy 2.6" >&2
  exit 1
fi

# The Debian mirror this machine's apt already uses (deb822 .sources or one-line .list), first
# entry that is not the security archive.
debian_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    if [[ $f == *.sources ]]; then
      awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
    else
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }' "$f"
    fi
  done | grep -v -- '-security' | grep -m1 '/debian/\?$' || true
}

make_root() {
  if ! command -v debootstrap >/dev/null 2>&1 && [[ ! -x /usr/sbin/debootstrap ]]; then
    echo "haproxy-versions: installing debootstrap (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  local mirror
  mirror=$(debian_mirror)
  if [[ -z $mirror ]]; then
    echo "haproxy-versions: no Debian mirror found in /etc/apt/sources.list*; set one there" >&2
    exit 1
  fi
  # Built beside the cache and renamed into place only when complete: an interrupted run leaves
  # a .tmp directory (removed by the next run), never a cache that looks good.
  local tmp=$cache/.$suite.tmp
  rm -rf "$tmp"
  echo "haproxy-versions: debootstrap $suite from $mirror into $root (once per machine)" >&2
  debootstrap --variant=minbase --foreign --include=haproxy,openssl,ca-certificates \
    "$suite" "$tmp" "$mirror" ${script:+"$script"} >"$cache/.$suite.log" 2>&1 ||
    { echo "haproxy-versions: debootstrap failed, see $cache/.$suite.log" >&2; exit 1; }
  # No service may start inside the chroot while its packages are configured.
  mkdir -p "$tmp/usr/sbin"
  printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
  chmod +x "$tmp/usr/sbin/policy-rc.d"
  # The second stage mounts /proc inside the chroot: keep that mount private too.
  unshare --mount chroot "$tmp" /debootstrap/debootstrap --second-stage >>"$cache/.$suite.log" 2>&1 ||
    { echo "haproxy-versions: debootstrap second stage failed, see $cache/.$suite.log" >&2; exit 1; }
  chroot "$tmp" /usr/sbin/haproxy -v >/dev/null
  mv -T "$tmp" "$root"
}

write_launcher() {
  local text
  text=$(cat <<EOF
#!/bin/sh
# Written by haproxy-certd's scripts/haproxy-versions.sh: runs the $suite chroot's HAProxy in a
# private mount namespace with /tmp, /dev, /proc and the working directory bound in. Every step
# execs, so the pid is HAProxy's.
root='$root'
if [ -z "\$CERTD_HAPROXY_IN_NS" ]; then
  CERTD_HAPROXY_IN_NS=1 exec unshare --mount --propagation private -- '$launcher' "\$@"
fi
unset CERTD_HAPROXY_IN_NS
for d in /tmp /dev /proc; do mount --rbind "\$d" "\$root\$d" || exit 1; done
cwd=\$(pwd)
[ "\$cwd" = / ] || { mkdir -p "\$root\$cwd" && mount --bind "\$cwd" "\$root\$cwd"; } || exit 1
exec chroot "\$root" /bin/sh -c 'cd "\$1" && shift && exec /usr/sbin/haproxy "\$@"' sh "\$cwd" "\$@"
EOF
)
  if [[ ! -x $launcher ]] || [[ $(cat "$launcher") != "$text" ]]; then
    printf '%s\n' "$text" >"$launcher.tmp.$$"
    chmod 755 "$launcher.tmp.$$"
    mv -f "$launcher.tmp.$$" "$launcher"
  fi
}

mkdir -p "$cache"
# One builder per machine: concurrent runs (other checkouts) wait for the first one.
exec 9>"$cache/.lock"
flock 9
[[ -x $root/usr/sbin/haproxy ]] || make_root
write_launcher
echo "$launcher"

# bash completion for haproxy-certd
# Generated from the program by `haproxy-certd completion bash`: do not edit, regenerate.
# Install: haproxy-certd completion bash > /etc/bash_completion.d/haproxy-certd
_haproxy_certd() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local cmd="" w i skip=0 words=""
  # The command so far: the words before the cursor that are not options or option values.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    case "$cmd|$w" in
      "|-c" | "|--config" | "run|-c" | "run|--config" | "demo|--port" | "demo|--api-port" | "demo|--dir" | "demo|-c" | "demo|--config" | "ca|-c" | "ca|--config" | "ca init|--issuer" | "ca init|--cert" | "ca init|--key" | "ca init|-c" | "ca init|--config" | "ca export|--issuer" | "ca export|-c" | "ca export|--config" | "issue|--issuer" | "issue|-c" | "issue|--config" | "import|--cert" | "import|--key" | "import|-c" | "import|--config" | "list|--expiring" | "list|--issuer" | "list|--origin" | "list|--limit" | "list|-c" | "list|--config" | "remove|-c" | "remove|--config" | "renew|-c" | "renew|--config" | "status|-c" | "status|--config" | "haproxy-config|--bind" | "haproxy-config|--http-bind" | "haproxy-config|--backend" | "haproxy-config|--merge" | "haproxy-config|-c" | "haproxy-config|--config" | "wait|--crt-list" | "wait|--timeout" | "wait|--policy" | "wait|--interval" | "wait|--crt-base" | "wait|-c" | "wait|--config" | "store|-c" | "store|--config" | "store rotate-key|-c" | "store rotate-key|--config" | "store migrate|--from" | "store migrate|--to" | "store migrate|--data-dir" | "store migrate|-c" | "store migrate|--config") skip=1; continue ;;
    esac
    [[ $w == -* ]] && continue
    case "$cmd|$w" in
      "|run") cmd="run" ;;
      "|demo") cmd="demo" ;;
      "|ca") cmd="ca" ;;
      "|issue") cmd="issue" ;;
      "|import") cmd="import" ;;
      "|list") cmd="list" ;;
      "|remove") cmd="remove" ;;
      "|renew") cmd="renew" ;;
      "|status") cmd="status" ;;
      "|haproxy-config") cmd="haproxy-config" ;;
      "|wait") cmd="wait" ;;
      "|store") cmd="store" ;;
      "ca|init") cmd="ca init" ;;
      "ca|export") cmd="ca export" ;;
      "store|rotate-key") cmd="store rotate-key" ;;
      "store|migrate") cmd="store migrate" ;;
    esac
  done
  case "$cmd|$prev" in
    "|-c" | "|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "run|-c" | "run|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "demo|--port") COMPREPLY=(); return ;;
    "demo|--api-port") COMPREPLY=(); return ;;
    "demo|--dir") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
    "demo|-c" | "demo|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "ca|-c" | "ca|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "ca init|--issuer") COMPREPLY=(); return ;;
    "ca init|--cert") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "ca init|--key") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "ca init|-c" | "ca init|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "ca export|--issuer") COMPREPLY=(); return ;;
    "ca export|-c" | "ca export|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "issue|--issuer") COMPREPLY=(); return ;;
    "issue|-c" | "issue|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "import|--cert") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "import|--key") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "import|-c" | "import|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "list|--expiring") COMPREPLY=(); return ;;
    "list|--issuer") COMPREPLY=(); return ;;
    "list|--origin") COMPREPLY=($(compgen -W "config api import ondemand source" -- "$cur")); return ;;
    "list|--limit") COMPREPLY=(); return ;;
    "list|-c" | "list|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "remove|-c" | "remove|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "renew|-c" | "renew|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "status|-c" | "status|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "haproxy-config|--bind") COMPREPLY=(); return ;;
    "haproxy-config|--http-bind") COMPREPLY=(); return ;;
    "haproxy-config|--backend") COMPREPLY=(); return ;;
    "haproxy-config|--merge") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "haproxy-config|-c" | "haproxy-config|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "wait|--crt-list") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "wait|--timeout") COMPREPLY=(); return ;;
    "wait|--policy") COMPREPLY=($(compgen -W "fail continue" -- "$cur")); return ;;
    "wait|--interval") COMPREPLY=(); return ;;
    "wait|--crt-base") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
    "wait|-c" | "wait|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "store|-c" | "store|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "store rotate-key|-c" | "store rotate-key|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    "store migrate|--from") COMPREPLY=($(compgen -W "fs" -- "$cur")); return ;;
    "store migrate|--to") COMPREPLY=($(compgen -W "postgres" -- "$cur")); return ;;
    "store migrate|--data-dir") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
    "store migrate|-c" | "store migrate|--config") compopt -o filenames; mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
  esac
  if [[ $cur == -* ]]; then
    case "$cmd" in
      "") words="-V --version -c --config -h --help" ;;
      "run") words="-h --help -c --config" ;;
      "demo") words="--port --api-port --dir -h --help -c --config" ;;
      "ca") words="-h --help -c --config" ;;
      "ca init") words="--issuer --cert --key --force --json -h --help -c --config" ;;
      "ca export") words="--issuer --json -h --help -c --config" ;;
      "issue") words="--issuer --json -h --help -c --config" ;;
      "import") words="--cert --key --json -h --help -c --config" ;;
      "list") words="--expiring --issuer --origin --limit --json -h --help -c --config" ;;
      "remove") words="--json -h --help -c --config" ;;
      "renew") words="--all --json -h --help -c --config" ;;
      "status") words="--json -h --help -c --config" ;;
      "haproxy-config") words="--bind --http-bind --backend --merge -h --help -c --config" ;;
      "wait") words="--crt-list --timeout --policy --interval --crt-base -h --help -c --config" ;;
      "store") words="-h --help -c --config" ;;
      "store rotate-key") words="--json -h --help -c --config" ;;
      "store migrate") words="--from --to --data-dir --json -h --help -c --config" ;;
    esac
  else
    case "$cmd" in
      "") words="run demo ca issue import list remove renew status haproxy-config wait store" ;;
      "run") words="" ;;
      "demo") words="" ;;
      "ca") words="init export" ;;
      "ca init") words="" ;;
      "ca export") words="" ;;
      "issue") words="" ;;
      "import") words="" ;;
      "list") words="" ;;
      "remove") words="" ;;
      "renew") words="" ;;
      "status") words="" ;;
      "haproxy-config") words="" ;;
      "wait") words="" ;;
      "store") words="rotate-key migrate" ;;
      "store rotate-key") words="" ;;
      "store migrate") words="" ;;
    esac
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _haproxy_certd haproxy-certd

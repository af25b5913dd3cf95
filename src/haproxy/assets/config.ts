/**
 * HAProxy configuration that haproxy-certd needs: printed by `haproxy-config` for operators to
 * paste, and written whole for the demo's managed HAProxy. Pure functions.
 */

export interface SnippetOptions {
  crtList: string;
  /** The runtime socket path the daemon talks to (unix) or undefined for tcp setups. */
  adminSocket?: string;
}

/** The pieces an operator adds to an existing haproxy.cfg. */
export function configSnippets(o: SnippetOptions): string {
  const socket = o.adminSocket ?? '/run/haproxy/admin.sock';
  return `# --- haproxy-certd: paste into haproxy.cfg ---
global
    # The daemon hot-loads certificates through this socket (admin level is required).
    stats socket ${socket} mode 600 level admin

frontend https
    # The daemon writes this crt-list (default certificate first) and keeps it in step with what
    # it pushes at runtime, so a restart serves the same set. It must exist before HAProxy starts:
    # run \`haproxy-certd run\` once (or \`haproxy-certd wait --crt-list ${o.crtList}\` in ExecStartPre).
    bind :443 ssl crt-list ${o.crtList} alpn h2,http/1.1
    default_backend app
`;
}

export interface DemoConfigOptions {
  adminSocket: string;
  crtList: string;
  /** Loopback address and port of the TLS listener. */
  bind: string;
}

/** A complete, loopback-only config for the demo: one TLS frontend answering who it is. */
export function demoHaproxyConfig(o: DemoConfigOptions): string {
  return `global
    stats socket ${o.adminSocket} mode 600 level admin
    log stderr format short local0 notice

defaults
    mode http
    log global
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend demo_https
    bind ${o.bind} ssl crt-list ${o.crtList} alpn h2,http/1.1
    http-request return status 200 content-type text/plain lf-string "hello from haproxy-certd: %[ssl_fc_sni]\\n"
`;
}

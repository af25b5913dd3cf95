/**
 * HAProxy configuration that haproxy-certd needs: printed by `haproxy-config` for operators to
 * paste, and written whole for the demo's managed HAProxy. Pure functions.
 */

export interface SnippetOptions {
  crtList: string;
  /** With an ACME issuer using HTTP-01: the map HAProxy answers challenges from. */
  acmeMap?: string;
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

${o.acmeMap ? acmeHttpFrontend({ bind: ':80', acmeMap: o.acmeMap }) : ''}`;
}

export interface OnDemandSnippetOptions {
  crtList: string;
  knownMap: string;
  luaFile: string;
  /** The daemon's /ondemand URL and the on-demand token (not the admin token). */
  url: string;
  token: string;
  /** The longest the daemon holds a handshake (onDemand.maxWait). */
  maxWaitMs: number;
  /** Where clients connect, e.g. ":443" or "127.0.0.1:8443". */
  bind: string;
  /** Makes the internal abns@ listener name unique per HAProxy (several on one host). */
  instanceTag: string;
}

/**
 * Timings: the daemon answers by maxWait, so each step of the Lua call (connect, send, receive) is
 * bounded by maxWait + 1 s; the SNI wait (inspect-delay) covers all of them with a margin, or
 * HAProxy would stop waiting for the ClientHello decision before Lua is done.
 */
export function onDemandTimings(maxWaitMs: number): { attemptMs: number; inspectDelayMs: number } {
  const attemptMs = maxWaitMs + 1_000;
  return { attemptMs, inspectDelayMs: 4 * attemptMs + 1_000 };
}

/**
 * On-demand TLS in one HAProxy process: a `mode tcp` front reads the SNI; names in known.map go
 * straight on; others run the Lua action first; then everything is passed (PROXY v2, so the TLS
 * side still sees the client's address) into the TLS frontend that binds the crt-list.
 */
export function onDemandFrontends(o: OnDemandSnippetOptions, httpBody: string): string {
  const { attemptMs, inspectDelayMs } = onDemandTimings(o.maxWaitMs);
  const loop = `abns@certd-tls-${o.instanceTag}`;
  return `frontend certd_sni
    mode tcp
    bind ${o.bind}
    tcp-request inspect-delay ${inspectDelayMs}ms
    tcp-request content lua.certd_ondemand ${o.url} ${o.token} ${attemptMs} if { req.ssl_hello_type 1 } { req.ssl_sni -m found } !{ req.ssl_sni,lower,map(${o.knownMap}) -m found }
    tcp-request content accept if { req.ssl_hello_type 1 }
    default_backend certd_tls_loop

backend certd_tls_loop
    mode tcp
    server tls ${loop} send-proxy-v2

frontend certd_https
    mode http
    bind ${loop} accept-proxy ssl crt-list ${o.crtList} alpn h2,http/1.1
${httpBody}`;
}

/**
 * HTTP-01 straight from HAProxy: the token is the 4th path field; its key authorization comes from
 * acme.map, which the daemon fills on every instance. Other plain-HTTP requests go to HTTPS.
 */
export function acmeHttpFrontend(o: { bind: string; acmeMap: string }): string {
  const lookup = `path,field(4,/),map(${o.acmeMap})`;
  return `frontend certd_http
    mode http
    bind ${o.bind}
    http-request return status 200 content-type text/plain lf-string "%[${lookup}]" if { path_beg /.well-known/acme-challenge/ } { ${lookup} -m found }
    http-request return status 404 if { path_beg /.well-known/acme-challenge/ }
    http-request redirect scheme https code 301
`;
}

export interface DemoConfigOptions {
  adminSocket: string;
  crtList: string;
  /** Loopback address and port of the TLS listener. */
  bind: string;
  /** With on-demand: unknown SNIs get a certificate at their first handshake. */
  onDemand?: Omit<OnDemandSnippetOptions, 'crtList' | 'bind'>;
  /** A second runtime socket on TCP (`ip:port`), as remote or discovered instances expose it. */
  runtimeTcp?: string;
  /** Plain-HTTP listener answering ACME HTTP-01 from acme.map. */
  acmeHttp?: { bind: string; acmeMap: string };
}

const DEMO_RESPONSE = `    http-request return status 200 content-type text/plain lf-string "hello from haproxy-certd: %[ssl_fc_sni]\\n"
`;

/** A complete, loopback-only config for the demo: one TLS frontend answering who it is. */
export function demoHaproxyConfig(o: DemoConfigOptions): string {
  const head = `global
    stats socket ${o.adminSocket} mode 600 level admin
${o.runtimeTcp ? `    stats socket ipv4@${o.runtimeTcp} level admin\n` : ''}    log stderr format short local0 notice
${o.onDemand ? `    lua-load ${o.onDemand.luaFile}\n` : ''}
defaults
    mode http
    log global
    timeout connect 2s
    timeout client 30s
    timeout server 30s

`;
  const withHttp = o.acmeHttp ? `${head}${acmeHttpFrontend(o.acmeHttp)}\n` : head;
  if (o.onDemand) return withHttp + onDemandFrontends({ ...o.onDemand, crtList: o.crtList, bind: o.bind }, DEMO_RESPONSE);
  return `${withHttp}frontend demo_https
    bind ${o.bind} ssl crt-list ${o.crtList} alpn h2,http/1.1
${DEMO_RESPONSE}`;
}

/**
 * HAProxy configuration that haproxy-certd needs: printed by `haproxy-config` for operators to
 * paste, and written whole for the demo's managed HAProxy. Pure functions.
 */
import { isIP } from 'node:net';
import { parseRuntimeAddress } from '../runtime/address.js';
import { socketServes, type ExistingConfig } from './existing-config.js';

/** One section of haproxy.cfg: its header (`frontend certd_https`) is how a merge finds it. */
interface Section {
  header: string;
  body: string;
}

const renderSections = (sections: Section[]) => sections.map((s) => `${s.header}\n${s.body}`).join('\n');

export interface PasteOptions {
  crtList: string;
  /** Where HAProxy accepts TLS, e.g. ":443". */
  bind: string;
  /** The backend HTTPS requests go to; without one they get a 503 that says how to set it. */
  backend?: string;
  /** The runtime address the daemon reaches this HAProxy at (`unix:/path` or `tcp:host:port`). */
  runtime: string;
  /** With an ACME issuer using HTTP-01: the plain-HTTP listener answering from acme.map. */
  acmeHttp?: { bind: string; acmeMap: string };
  onDemand?: Omit<OnDemandSnippetOptions, 'crtList' | 'bind'>;
  /** `--merge`: what the operator's haproxy.cfg already has is left out. */
  existing?: ExistingConfig;
}

/**
 * What an operator pastes at the end of haproxy.cfg: the global lines the daemon needs (runtime
 * socket at admin level, the Lua action with on-demand) and the certd_* sections. With `existing`,
 * only what that config lacks: a global line it has is not repeated (HAProxy merges a second
 * `global` section into the first, so one holding only the missing lines is valid) and a section
 * already there is kept as it is. Pure.
 */
export function pasteConfig(o: PasteOptions): string {
  const has = o.existing;
  const globalLines: string[] = [];
  if (!has?.statsSockets.some((s) => socketServes(s.address, o.runtime))) {
    globalLines.push('    # The daemon hot-loads certificates through this socket (admin level is required).', `    ${statsSocketLine(o.runtime)}`);
  }
  if (o.onDemand && !has?.luaLoads.includes(o.onDemand.luaFile)) globalLines.push(...luaLoadLines(o.onDemand.luaFile));
  if (o.onDemand?.forge) globalLines.push(...forgeGlobalLines(o.onDemand.forge));

  const httpBody = o.backend
    ? `    default_backend ${o.backend}\n`
    : '    # No --backend given: requests get this 503 until you name yours (haproxy-config --backend NAME).\n' +
      '    http-request return status 503 content-type text/plain string "haproxy-certd: no backend configured yet"\n';
  const crtListNote = `    # The daemon keeps the crt-list above (default certificate first) in step with what it pushes
    # at runtime, so a restart serves the same set; haproxy-config wrote its first version.
`;
  const sections = o.onDemand
    ? onDemandSections({ ...o.onDemand, crtList: o.crtList, bind: o.bind }, crtListNote + httpBody)
    : [{ header: 'frontend certd_https', body: `    mode http\n    bind ${o.bind} ssl crt-list ${o.crtList} alpn h2,http/1.1\n${crtListNote}${httpBody}` }];
  if (o.acmeHttp) sections.push(acmeHttpSection(o.acmeHttp));
  const missing = sections.filter((s) => !has?.sections.has(s.header));

  const parts = [has ? '# --- haproxy-certd: paste at the end of your haproxy.cfg (only what it lacks) ---' : '# --- haproxy-certd: paste into haproxy.cfg ---'];
  if (globalLines.length) parts.push(`global\n${globalLines.join('\n')}\n`);
  if (missing.length) parts.push(renderSections(missing));
  if (!globalLines.length && !missing.length) parts.push('# nothing to add: this haproxy.cfg has everything haproxy-certd needs\n');
  return parts.join('\n');
}

/**
 * The `stats socket` line for a runtime address. A unix socket is 660 like Debian's own, so a
 * daemon user in HAProxy's group can use it.
 */
function statsSocketLine(runtime: string): string {
  const a = parseRuntimeAddress(runtime);
  if (a.kind === 'unix') return `stats socket ${a.path} mode 660 level admin`;
  return `stats socket ${isIP(a.host) === 6 ? 'ipv6' : 'ipv4'}@${a.host}:${a.port} level admin`;
}

export interface OnDemandSnippetOptions {
  crtList: string;
  knownMap: string;
  luaFile: string;
  /** The /ondemand URL of each daemon (replicas: in the order the Lua tries them), and the on-demand token (not the admin token). */
  urls: string[];
  token: string;
  /** The longest the daemon holds a handshake (onDemand.maxWait). */
  maxWaitMs: number;
  /** Where clients connect, e.g. ":443" or "127.0.0.1:8443". */
  bind: string;
  /** Makes the internal abns@ listener name unique per HAProxy (several on one host). */
  instanceTag: string;
  /** onDemand.forge: HAProxy signs the first certificate of an approved name itself. */
  forge?: ForgeSnippetOptions;
}

export interface ForgeSnippetOptions {
  /** The intermediate with its key (`ca-sign-file`). */
  caFile: string;
  /** The forge bind's default certificate: its key is in every forged certificate. */
  defaultCert: string;
  /** HAProxy's cache of forged certificates (tune.ssl.ssl-ctx-cache-size): onDemand.maxCertificates. */
  cacheSize: number;
  /**
   * Decide in Lua on daemon grants (no ask URL, no per-client limit): the onDemand patterns,
   * passed to the action as arguments.
   */
  local?: { allow: readonly string[]; deny: readonly string[] };
}

/** A validated pattern: what the config schema admits (`*.a.b` or `a.b`), checked again before it reaches HAProxy. */
const PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
/** HAProxy 2.6 refuses config lines over 2,048 bytes: the local action's arguments keep well below. */
const MAX_LOCAL_ARGS = 1_500;

/**
 * The local action's two pattern arguments (comma-joined, `-` for none), or undefined when they
 * would not fit on one config line (then the synchronous decision path is used). Throws on a
 * pattern that is not a plain DNS pattern: nothing else may reach HAProxy's config.
 */
export function localPatternArgs(local: { allow: readonly string[]; deny: readonly string[] }): [string, string] | undefined {
  for (const p of [...local.allow, ...local.deny]) {
    if (p.length > 253 || !PATTERN.test(p)) throw new Error(`on-demand pattern ${JSON.stringify(p)} cannot be passed to HAProxy`);
  }
  const allow = local.allow.join(',');
  const deny = local.deny.length ? local.deny.join(',') : '-';
  return allow.length + deny.length > MAX_LOCAL_ARGS ? undefined : [allow, deny];
}

/** The forged-certificate cache: every name the cap admits fits, so none is signed twice while its real certificate is issued. */
function forgeGlobalLines(f: ForgeSnippetOptions): string[] {
  return ['    # onDemand.forge: room for every forged certificate the cap allows.', `    tune.ssl.ssl-ctx-cache-size ${f.cacheSize}`];
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
 * side still sees the client's address) into the TLS frontend that binds the crt-list. With forge,
 * that frontend has a second bind that signs a certificate for any SNI (`generate-certificates`),
 * and only connections the daemon approved are sent there.
 */
export function onDemandFrontends(o: OnDemandSnippetOptions, httpBody: string): string {
  return renderSections(onDemandSections(o, httpBody));
}

function onDemandSections(o: OnDemandSnippetOptions, httpBody: string): Section[] {
  const { attemptMs, inspectDelayMs } = onDemandTimings(o.maxWaitMs);
  const loop = `abns@certd-tls-${o.instanceTag}`;
  const forgeLoop = `abns@certd-forge-${o.instanceTag}`;
  const local = o.forge?.local && localPatternArgs(o.forge.local);
  if (!/^[A-Za-z0-9._~-]+$/.test(o.token)) throw new Error('the on-demand token must be base64url');
  const action = local ? `certd_ondemand_local` : o.forge ? 'certd_ondemand_forge' : 'certd_ondemand';
  const localArgs = local ? ` ${local[0]} ${local[1]}` : '';
  const forgeRoute = o.forge ? '    use_backend certd_forge_loop if { var(txn.certd_forge) -m int 1 }\n' : '';
  const forgeBind = o.forge
    ? `    bind ${forgeLoop} accept-proxy ssl crt ${o.forge.defaultCert} generate-certificates ca-sign-file ${o.forge.caFile} alpn h2,http/1.1\n`
    : '';
  return [
    {
      header: 'frontend certd_sni',
      // tcplog: a `defaults` with `option httplog` (Debian's stock config) would warn on a tcp front.
      body: `    mode tcp
    option tcplog
    bind ${o.bind}
    tcp-request inspect-delay ${inspectDelayMs}ms
    tcp-request content lua.${action} ${o.urls.join(',')} ${o.token} ${attemptMs}${localArgs} if { req.ssl_hello_type 1 } { req.ssl_sni -m found } !{ req.ssl_sni,lower,map(${o.knownMap}) -m found }
    tcp-request content accept if { req.ssl_hello_type 1 }
${forgeRoute}    default_backend certd_tls_loop
`,
    },
    { header: 'backend certd_tls_loop', body: `    mode tcp\n    server tls ${loop} send-proxy-v2\n` },
    ...(o.forge ? [{ header: 'backend certd_forge_loop', body: `    mode tcp\n    server forge ${forgeLoop} send-proxy-v2\n` }] : []),
    { header: 'frontend certd_https', body: `    mode http\n    bind ${loop} accept-proxy ssl crt-list ${o.crtList} alpn h2,http/1.1\n${forgeBind}${httpBody}` },
  ];
}

/**
 * HTTP-01 straight from HAProxy: the token is the 4th path field; its key authorization comes from
 * acme.map, which the daemon fills on every instance. Other plain-HTTP requests go to HTTPS.
 */
export function acmeHttpFrontend(o: { bind: string; acmeMap: string }): string {
  return renderSections([acmeHttpSection(o)]);
}

function acmeHttpSection(o: { bind: string; acmeMap: string }): Section {
  const lookup = `path,field(4,/),map(${o.acmeMap})`;
  return {
    header: 'frontend certd_http',
    body: `    mode http
    bind ${o.bind}
    http-request return status 200 content-type text/plain lf-string "%[${lookup}]" if { path_beg /.well-known/acme-challenge/ } { ${lookup} -m found }
    http-request return status 404 if { path_beg /.well-known/acme-challenge/ }
    http-request redirect scheme https code 301
`,
  };
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

/**
 * `lua-load` for the on-demand action. 3.1+ warns at every lua-load unless the boolean sample
 * conversion is chosen first, and 2.6/3.0 do not know that keyword: HAProxy's own `.if` picks it
 * (our Lua reads no boolean sample, so "normal" changes nothing for it).
 */
function luaLoadLines(luaFile: string): string[] {
  return ['.if version_atleast(3.1)', '    tune.lua.bool-sample-conversion normal', '.endif', `    lua-load ${luaFile}`];
}

/** A complete, loopback-only config for the demo: one TLS frontend answering who it is. */
export function demoHaproxyConfig(o: DemoConfigOptions): string {
  const head = `global
    stats socket ${o.adminSocket} mode 600 level admin
${o.runtimeTcp ? `    stats socket ipv4@${o.runtimeTcp} level admin\n` : ''}    log stderr format short local0 notice
${o.onDemand ? `${[...luaLoadLines(o.onDemand.luaFile), ...(o.onDemand.forge ? forgeGlobalLines(o.onDemand.forge) : [])].join('\n')}\n` : ''}
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

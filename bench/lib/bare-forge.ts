import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startConfigIn, type PlainHaproxy } from './instance.js';

/**
 * A bare `generate-certificates` HAProxy: one TLS bind that signs a certificate for every SNI from
 * `caFile` (no SNI hop, no Lua, no daemon), on the same files certd's forge bind uses. What HAProxy
 * itself does for a first handshake: the floor of the forge path.
 */
export async function startBareForge(o: { caFile: string; defaultCert: string; cacheSize: number; hop?: boolean; noopLua?: boolean; perThread?: boolean; nbthread?: number }): Promise<PlainHaproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-bare-forge-'));
  const loop = `abns@certd-bench-hop-${Math.random().toString(36).slice(2, 10)}`;
  // `hop`: certd's SNI front (mode tcp, inspect the ClientHello, PROXY v2 loop), with no Lua: the hop's cost alone.
  const hop = (tlsPort: number) => [
    'frontend hop_sni',
    '    mode tcp',
    `    bind 127.0.0.1:${tlsPort}`,
    '    tcp-request inspect-delay 5s',
    ...(o.noopLua ? ['    tcp-request content lua.noop if { req.ssl_hello_type 1 }'] : []),
    '    tcp-request content accept if { req.ssl_hello_type 1 }',
    '    default_backend hop_loop',
    'backend hop_loop',
    '    mode tcp',
    `    server forge ${loop} send-proxy-v2`,
  ];
  // `noopLua` (with hop): a Lua action that does nothing runs on every ClientHello: what entering Lua costs.
  const lua = join(dir, 'noop.lua');
  if (o.noopLua) await writeFile(lua, 'core.register_action("noop", { "tcp-req" }, function(txn) end, 0)\n');
  return startConfigIn(dir, ({ adminSocket, tlsPort }) =>
    [
      'global',
      `    stats socket ${adminSocket} mode 600 level admin`,
      `    tune.ssl.ssl-ctx-cache-size ${o.cacheSize}`,
      ...(o.noopLua ? [`    ${o.perThread ? 'lua-load-per-thread' : 'lua-load'} ${lua}`] : []),
      ...(o.nbthread ? [`    nbthread ${o.nbthread}`] : []),
      'defaults',
      '    mode http',
      '    timeout connect 2s',
      '    timeout client 30s',
      '    timeout server 30s',
      ...(o.hop ? hop(tlsPort) : []),
      'frontend bare_forge',
      `    bind ${o.hop ? `${loop} accept-proxy` : `127.0.0.1:${tlsPort}`} ssl crt ${o.defaultCert} generate-certificates ca-sign-file ${o.caFile} alpn h2,http/1.1`,
      '    http-request return status 200 content-type text/plain lf-string "bare forge"',
      '',
    ].join('\n'),
  );
}

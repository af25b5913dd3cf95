import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startConfigIn, type PlainHaproxy } from './instance.js';

/**
 * A bare `generate-certificates` HAProxy: one TLS bind that signs a certificate for every SNI from
 * `caFile` (no SNI hop, no Lua, no daemon), on the same files certd's forge bind uses. What HAProxy
 * itself does for a first handshake: the floor of the forge path.
 */
export async function startBareForge(o: { caFile: string; defaultCert: string; cacheSize: number }): Promise<PlainHaproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'certd-bench-bare-forge-'));
  return startConfigIn(dir, ({ adminSocket, tlsPort }) =>
    [
      'global',
      `    stats socket ${adminSocket} mode 600 level admin`,
      `    tune.ssl.ssl-ctx-cache-size ${o.cacheSize}`,
      'defaults',
      '    mode http',
      '    timeout connect 2s',
      '    timeout client 30s',
      '    timeout server 30s',
      'frontend bare_forge',
      `    bind 127.0.0.1:${tlsPort} ssl crt ${o.defaultCert} generate-certificates ca-sign-file ${o.caFile} alpn h2,http/1.1`,
      '    http-request return status 200 content-type text/plain lf-string "bare forge"',
      '',
    ].join('\n'),
  );
}

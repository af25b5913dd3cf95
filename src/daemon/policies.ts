import { readFile } from 'node:fs/promises';
import { crtListOptionsOf, type Config } from '../config/schema.js';
import { certId } from '../core/names.js';
import type { CertPolicy } from '../service/cert-service.js';

/** Per-certificate settings from `certificates:` (issuer, crt-list options, client CA), by cert id. */
export async function policiesFromConfig(config: Config): Promise<Map<string, CertPolicy>> {
  const policies = new Map<string, CertPolicy>();
  for (const spec of config.certificates) {
    const id = certId(spec.names[0]!);
    const clientCaPem = spec.tls?.clientCa ? await readFile(spec.tls.clientCa, 'utf8') : undefined;
    policies.set(id, {
      issuer: spec.issuer,
      keyType: spec.keyType,
      options: spec.tls ? crtListOptionsOf(spec.tls) : {},
      clientCaPem,
    });
  }
  return policies;
}

import { access } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { certDirLayout } from '../haproxy/cert-dir.js';
import { DEFAULT_CERT_ID, makeDeployEntry } from '../haproxy/deploy/entry.js';
import { DeployFiles } from '../haproxy/deploy/files.js';
import { LocalCaIssuer } from '../issuers/local-ca/index.js';
import { Forge } from '../ondemand/forge.js';
import { openStore } from './assembly.js';
import { loadOrCreateDefaultCert } from './default-cert.js';

const exists = (path: string) => access(path).then(() => true, () => false);

/**
 * The files a pasted haproxy.cfg reads at start, written before the daemon's first run so
 * `haproxy -c` and a start pass: the crt-list with the default certificate, the maps, the Lua
 * action, and with onDemand.forge the forge's intermediate and default certificate. What the daemon
 * already wrote is left alone (it owns them from its first start); the default certificate and the
 * local CA root are the store's, the ones the daemon uses. Returns the paths written.
 */
export async function writeInitialHaproxyFiles(config: Config, log: Logger): Promise<string[]> {
  const { certDir, crtList } = config.haproxy;
  const files = new DeployFiles(certDir, crtList);
  await files.prepare();
  const written: string[] = [];
  if (!(await exists(crtList))) {
    const store = await openStore(config, log);
    try {
      const entry = makeDeployEntry(certDir, { id: DEFAULT_CERT_ID, bundle: await loadOrCreateDefaultCert(store), sni: [] });
      await files.writeEntries([entry]);
      await files.writeCrtList([entry]);
      written.push(entry.pemPath, crtList);
    } finally {
      await store.close();
    }
  }
  for (const map of [certDirLayout(certDir).knownMap, certDirLayout(certDir).acmeMap]) {
    if (await exists(map)) continue;
    await files.writeMap(map, new Map());
    written.push(map);
  }
  const layout = certDirLayout(certDir);
  if (config.onDemand?.forge && !(await exists(layout.forgeCaFile))) {
    const store = await openStore(config, log);
    try {
      const ca = await new LocalCaIssuer(store, { id: config.onDemand.issuer }).ca();
      const { allow, deny } = config.onDemand;
      (await Forge.start({ ca, issuerId: config.onDemand.issuer, allow, deny, certDir, log })).stop();
      written.push(layout.forgeCaFile, layout.forgeDefaultCert);
    } finally {
      await store.close();
    }
  }
  if (!(await exists(files.luaPath))) {
    await files.writeLuaAction();
    written.push(files.luaPath);
  }
  return written;
}

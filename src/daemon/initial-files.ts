import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { DEFAULT_CERT_ID, makeDeployEntry } from '../haproxy/deploy/entry.js';
import { DeployFiles } from '../haproxy/deploy/files.js';
import { openStore } from './assembly.js';
import { loadOrCreateDefaultCert } from './default-cert.js';

const exists = (path: string) => access(path).then(() => true, () => false);

/**
 * The files a pasted haproxy.cfg reads at start, written before the daemon's first run so
 * `haproxy -c` and a start pass: the crt-list with the default certificate, the maps, the Lua
 * action. What the daemon already wrote is left alone (it owns them from its first start); the
 * default certificate is the store's, the one the daemon serves. Returns the paths written.
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
  for (const map of ['known.map', 'acme.map'].map((m) => join(certDir, m))) {
    if (await exists(map)) continue;
    await files.writeMap(map, new Map());
    written.push(map);
  }
  if (!(await exists(files.luaPath))) {
    await files.writeLuaAction();
    written.push(files.luaPath);
  }
  return written;
}

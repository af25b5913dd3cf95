import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Config } from '../config/schema.js';
import { formatHostPort, isAnyHost, parseHostPort } from '../core/host-port.js';
import { certDirLayout } from '../haproxy/cert-dir.js';
import type { OnDemandSnippetOptions } from '../haproxy/assets/config.js';
import { onDemandToken } from './token.js';
import { decidesLocally } from '../ondemand/policy.js';

/** The daemon's API base URL as a local client reaches it: a wildcard listen address means loopback. */
export function apiBaseUrl(apiListen: string): string {
  const { host, port } = parseHostPort(apiListen, { allowPortZero: true, allowAnyHost: true });
  const local = !isAnyHost(host) ? host : isIP(host) === 6 ? '::1' : '127.0.0.1';
  return `http://${formatHostPort({ host: local, port })}`;
}

/** The URL HAProxy's Lua calls for unknown SNIs. */
export function onDemandUrl(apiListen: string): string {
  return `${apiBaseUrl(apiListen)}/ondemand`;
}

/** Everything the on-demand HAProxy snippet needs, derived from the config and the API token. */
export function onDemandSnippetOptions(config: Config, apiToken: string, bind: string): OnDemandSnippetOptions | undefined {
  if (!config.onDemand) return undefined;
  const certDir = config.haproxy.certDir;
  return {
    crtList: config.haproxy.crtList,
    knownMap: certDirLayout(certDir).knownMap,
    luaFile: certDirLayout(certDir).luaFile,
    urls: (config.onDemand.replicas ?? [config.api.listen]).map(onDemandUrl),
    token: onDemandToken(apiToken),
    maxWaitMs: config.onDemand.maxWait,
    bind,
    // abns@ names are per network namespace: several HAProxies on one host need distinct ones.
    instanceTag: createHash('sha256').update(config.haproxy.crtList).digest('hex').slice(0, 8),
    ...(config.onDemand.forge
      ? {
          forge: {
            caFile: certDirLayout(certDir).forgeCaFile,
            defaultCert: certDirLayout(certDir).forgeDefaultCert,
            cacheSize: config.onDemand.maxCertificates,
            ...(decidesLocally(config.onDemand) ? { local: { allow: config.onDemand.allow, deny: config.onDemand.deny } } : {}),
          },
        }
      : {}),
  };
}

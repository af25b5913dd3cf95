import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../core/errors.js';
import { ReloadFallback } from '../haproxy/deploy/reload.js';
import { unixSocketPath } from '../haproxy/runtime/address.js';
import type { Issuer } from '../issuers/issuer.js';
import { LocalCaIssuer } from '../issuers/local-ca/index.js';
import { Forge } from '../ondemand/forge.js';

/**
 * The forge of onDemand.forge, its files checked or written before any HAProxy is expected up
 * (the forge bind reads them at start). Reloads go through each instance's master socket; an
 * instance without one keeps its intermediate until the operator reloads it (the log says so at
 * every rotation). Undefined without onDemand.forge.
 */
export async function startForge(config: Config, issuers: ReadonlyMap<string, Issuer>, log: Logger, reloadMinIntervalMs?: number): Promise<Forge | undefined> {
  const spec = config.onDemand;
  if (!spec?.forge) return undefined;
  const issuer = issuers.get(spec.issuer);
  // The config schema refuses this already; an embedded issuer set up differently would land here.
  if (!(issuer instanceof LocalCaIssuer)) throw new ConfigError(`onDemand.forge needs a local-ca issuer; "${spec.issuer}" is not one`);
  const reloads = config.haproxy.instances.flatMap((inst, i) =>
    inst.master ? [new ReloadFallback(unixSocketPath(inst.master), inst.name ?? `haproxy-${i + 1}`, log, reloadMinIntervalMs)] : [],
  );
  return Forge.start({ ca: await issuer.ca(), issuerId: issuer.id, allow: spec.allow, deny: spec.deny, certDir: config.haproxy.certDir, reloads, log: log.child({ component: 'forge' }) });
}

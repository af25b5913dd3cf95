import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../core/errors.js';
import type { Issuer } from '../issuers/issuer.js';
import { LocalCaIssuer } from '../issuers/local-ca/index.js';
import { Forge, type ForgeOptions } from '../ondemand/forge.js';

/**
 * The forge of onDemand.forge, its files checked or written before any HAProxy is expected up
 * (the forge bind reads them at start). A rotation reloads the instances this process owns through
 * their master sockets (`reload`, the deployer's); an instance without one keeps its intermediate
 * until the operator reloads it (the log says so at every rotation). Undefined without onDemand.forge.
 */
export async function startForge(config: Config, issuers: ReadonlyMap<string, Issuer>, log: Logger, reload: ForgeOptions['reload']): Promise<Forge | undefined> {
  const spec = config.onDemand;
  if (!spec?.forge) return undefined;
  const issuer = issuers.get(spec.issuer);
  // The config schema refuses this already; an embedded issuer set up differently would land here.
  if (!(issuer instanceof LocalCaIssuer)) throw new ConfigError(`onDemand.forge needs a local-ca issuer; "${spec.issuer}" is not one`);
  return Forge.start({ ca: await issuer.ca(), issuerId: issuer.id, allow: spec.allow, deny: spec.deny, certDir: config.haproxy.certDir, reload, log: log.child({ component: 'forge' }) });
}

import { join } from 'node:path';

/**
 * Every path the daemon writes inside certDir, built here and nowhere else: the deployer, the
 * config defaults, `haproxy-config`, the initial files and the snippets all read them from one
 * layout. (Temp files sit beside their target, named by core/atomic-write.ts.) Pure.
 */
export interface CertDirLayout {
  certDir: string;
  /** The crt-list the bind lines load when the config names none. */
  crtList: string;
  /** Exact names of every deployed certificate (lets known SNIs skip the Lua action). */
  knownMap: string;
  /** HTTP-01 tokens, answered by HAProxy itself. */
  acmeMap: string;
  /** The on-demand Lua action, `lua-load`ed at start. */
  luaFile: string;
  /** Client-CA (mTLS) files, one per certificate. */
  clientCaDir: string;
  /**
   * The forge's files (onDemand.forge): HAProxy signs first handshakes from them, so the deployer
   * leaves what lies here alone.
   */
  forgeDir: string;
  /** The intermediate CA with its key: the forge bind's `ca-sign-file`. */
  forgeCaFile: string;
  /** The forge bind's own default certificate: every certificate HAProxy forges carries its key. */
  forgeDefaultCert: string;
  /** A certificate's PEM (chain + key); also its name in HAProxy's runtime API. */
  pem(id: string): string;
  /** A certificate's client CA (mTLS); also its `ca-file` name in HAProxy. */
  clientCa(id: string): string;
}

export const ONDEMAND_LUA_FILE = 'certd-ondemand.lua';
export const FORGE_DIR = 'forge';

export function certDirLayout(certDir: string): CertDirLayout {
  const clientCaDir = join(certDir, 'ca');
  const forgeDir = join(certDir, FORGE_DIR);
  return {
    certDir,
    crtList: join(certDir, 'crt-list.txt'),
    knownMap: join(certDir, 'known.map'),
    acmeMap: join(certDir, 'acme.map'),
    luaFile: join(certDir, ONDEMAND_LUA_FILE),
    clientCaDir,
    forgeDir,
    forgeCaFile: join(forgeDir, 'intermediate.pem'),
    forgeDefaultCert: join(forgeDir, 'default.pem'),
    pem: (id) => join(certDir, `${id}.pem`),
    clientCa: (id) => join(clientCaDir, `${id}.pem`),
  };
}

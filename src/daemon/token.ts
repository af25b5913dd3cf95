import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.js';

/** Where the daemon keeps its generated API token when the config sets none (0600). */
export function tokenFile(dataDir: string): string {
  return join(dataDir, 'api-token');
}

/** The configured token, else the one in dataDir, else a new one written there. */
export async function loadOrCreateToken(dataDir: string, configured?: string): Promise<string> {
  if (configured) return configured;
  const existing = await readToken(dataDir);
  if (existing) return existing;
  const token = randomBytes(24).toString('base64url');
  await writeFileAtomic(tokenFile(dataDir), `${token}\n`, { mode: 0o600 });
  return token;
}

export async function readToken(dataDir: string): Promise<string | undefined> {
  try {
    return (await readFile(tokenFile(dataDir), 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The token HAProxy's Lua sends to /ondemand: derived from the admin token, so the HAProxy config
 * never holds a token that can issue arbitrary names or remove certificates.
 */
export function onDemandToken(apiToken: string): string {
  return createHmac('sha256', apiToken).update('haproxy-certd on-demand').digest('base64url').slice(0, 32);
}

import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fsErrorCode } from '../core/atomic-write.js';
import { SourceIncompleteError } from './errors.js';

/*
 * Which files in a folder make a certificate. Three layouts, checked in this order per folder:
 *  - certbot `live/<name>/`: fullchain.pem + privkey.pem (symlinks into ../../archive/<name>/;
 *    certbot renews by writing new archive files and re-pointing the links, so files are always
 *    read by path, following links, never by inode);
 *  - a Kubernetes TLS secret mount (cert-manager): tls.crt + tls.key (links into `..data/`, which
 *    the kubelet swaps atomically);
 *  - otherwise every `*.pem` in the folder is one combined bundle (chain + key in one file).
 * A folder that has a pair is one bundle, keyed by the folder; its other PEMs (cert.pem,
 * chain.pem, ca.crt) are parts of it, not bundles of their own.
 */

/*
 * `markers` also mark a pair folder: certbot re-links one file at a time (unlink + symlink), so
 * for an instant fullchain.pem may be missing while cert.pem and chain.pem are there — that is a
 * half-updated pair, not a folder of combined PEMs.
 */
const PAIRS = [
  { cert: 'fullchain.pem', key: 'privkey.pem', markers: ['cert.pem', 'chain.pem'] },
  { cert: 'tls.crt', key: 'tls.key', markers: [] },
] as const;

/*
 * certbot's own working folders: `archive` holds the numbered versions live/ links to, `keys` and
 * `csr` hold keys and CSRs without certificates. Reading them as bundles would only report noise
 * when `path` points at /etc/letsencrypt instead of /etc/letsencrypt/live.
 */
const SKIPPED_DIRS = new Set(['archive', 'keys', 'csr', 'accounts', 'renewal', 'renewal-hooks']);

/** How deep below the root bundles are looked for: root/, root/<name>/, root/live/<name>/. */
export const MAX_DEPTH = 2;

/** What one folder holds: bundles (or why a bundle is unusable) and the sub-folders to look into. */
export interface FolderScan {
  bundles: FoundBundle[];
  subdirs: string[];
}

/** A bundle's text under its key, or the reason it cannot be read right now. */
export type FoundBundle =
  | { key: string; certText: string; keyText: string }
  | { key: string; error: Error };

/**
 * Reads one folder. Hidden entries are skipped: they are the kubelet's `..data` / `..<timestamp>`
 * folders (reached through the tls.* links) and writeFileAtomic's temp files.
 * Throws only when the folder itself cannot be listed. Safe to call concurrently.
 */
export async function scanFolder(dir: string, depth: number): Promise<FolderScan> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files = new Set<string>();
  const subdirs: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      // A dangling link (mid-swap) counts as a file: the pair check then says which part is missing.
      const target = await stat(join(dir, e.name)).catch(() => undefined);
      isDir = target?.isDirectory() ?? false;
      isFile = !isDir;
    }
    if (isFile) files.add(e.name);
    else if (isDir && depth < MAX_DEPTH && !SKIPPED_DIRS.has(e.name)) subdirs.push(join(dir, e.name));
  }
  return { bundles: await bundlesIn(dir, files), subdirs };
}

async function bundlesIn(dir: string, files: ReadonlySet<string>): Promise<FoundBundle[]> {
  for (const pair of PAIRS) {
    if (![pair.cert, pair.key, ...pair.markers].some((f) => files.has(f))) continue;
    return [await readPair(dir, pair.cert, pair.key)];
  }
  const pems = [...files].filter((f) => f.endsWith('.pem')).sort();
  return Promise.all(pems.map((f) => readCombined(join(dir, f))));
}

async function readPair(dir: string, certName: string, keyName: string): Promise<FoundBundle> {
  const [certText, keyText] = await Promise.all([readOptional(join(dir, certName)), readOptional(join(dir, keyName))]);
  if (certText instanceof Error) return { key: dir, error: certText };
  if (keyText instanceof Error) return { key: dir, error: keyText };
  const missing = [certText === undefined && certName, keyText === undefined && keyName].filter(Boolean);
  if (missing.length > 0) {
    return {
      key: dir,
      error: new SourceIncompleteError(`${dir} has no readable ${missing.join(' or ')} (being written or re-linked?); retried at the next change`),
    };
  }
  return { key: dir, certText: certText!, keyText: keyText! };
}

async function readCombined(path: string): Promise<FoundBundle> {
  const text = await readOptional(path);
  if (text instanceof Error) return { key: path, error: text };
  if (text === undefined) {
    return { key: path, error: new SourceIncompleteError(`${basename(path)} vanished while being read; retried at the next change`) };
  }
  return { key: path, certText: text, keyText: '' };
}

/** File text; undefined when absent (a dangling link counts as absent); other errors returned. */
async function readOptional(path: string): Promise<string | Error | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return undefined;
    return err as Error;
  }
}

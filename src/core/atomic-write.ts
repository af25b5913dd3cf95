import { randomBytes } from 'node:crypto';
import { renameSync, unlinkSync, writeFileSync, type Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /**
   * Permission bits of the file (default 0o600: safe unless the caller says the data is public).
   * Set exactly, whatever the umask, so a file meant for another reader (HAProxy) is readable.
   */
  mode?: number;
  /**
   * Fsync the directory after the rename (default true). A caller writing many files into one
   * directory may pass false and call syncDir once after the last: until then a crash may lose
   * the renames (never mix contents), so nothing may reference the files before that.
   */
  syncDir?: boolean;
  /** Runs right before the rename (after the data is synced); a throw leaves the target as it was (the store's fencing check). */
  beforeRename?: () => void;
}

/** Temp files are hidden and carry a random tag, so they never collide and are easy to recognize. */
const TEMP_NAME = /^\..+\.[0-9a-f]{16}\.tmp$/;

/** Whether a file name is one of writeFileAtomic's temp files (left behind only by a crash). */
export function isTempFileName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/**
 * What a sweep saw of each directory (see removeLeftoverFiles `memo`): its mtime, when it was
 * read, and its subdirectories.
 */
export type SweepMemo = Map<string, { mtimeMs: number; readAt: number; subdirs: string[] }>;

/**
 * A directory changed within this long before it was read is read again at the next sweep:
 * mtimes as coarse as 1–2 s (some file systems) cannot say whether a change came after the read.
 */
const MTIME_SLACK_MS = 3_000;

/**
 * Removes what crashes leave behind under `dir` (recursively): writeFileAtomic's temp files, and
 * names `alsoLeftover` accepts, modified more than `olderThanMs` ago (0: all of them, for a
 * directory no live writer shares). Returns how many were removed; a file that cannot be removed
 * is reported through `onWarning` and left. With `memo` (kept between sweeps), a directory whose
 * mtime has not moved since a read that left nothing behind is not read again: creating,
 * renaming or removing a file in it moves its mtime, so no leftover can have appeared (a
 * periodic sweep of a store of 100,000 certificates read all 100,000 names every 15 s).
 */
export async function removeLeftoverFiles(
  dir: string,
  o: { olderThanMs: number; alsoLeftover?: (name: string) => boolean; onWarning?: (err: Error) => void; memo?: SweepMemo },
): Promise<number> {
  let removed = 0;
  const mtimeMs = o.memo ? await mtimeIfExists(dir) : undefined;
  const seen = o.memo?.get(dir);
  if (seen && mtimeMs === seen.mtimeMs && mtimeMs < seen.readAt - MTIME_SLACK_MS) {
    for (const sub of seen.subdirs) removed += await removeLeftoverFiles(join(dir, sub), o);
    return removed;
  }
  const readAt = Date.now();
  const subdirs: string[] = [];
  /** A leftover still too young to remove, or one that could not be: the next sweep reads again. */
  let left = false;
  for (const entry of await readDirIfExists(dir)) {
    if (entry.isDirectory()) {
      subdirs.push(entry.name);
      removed += await removeLeftoverFiles(join(dir, entry.name), o);
    } else if (isTempFileName(entry.name) || o.alsoLeftover?.(entry.name)) {
      const path = join(dir, entry.name);
      try {
        if (o.olderThanMs > 0 && (await stat(path)).mtimeMs + o.olderThanMs >= Date.now()) {
          left = true;
          continue;
        }
        await unlink(path);
        removed++;
      } catch (cause) {
        if (fsErrorCode(cause) !== 'ENOENT') {
          left = true;
          o.onWarning?.(new Error(`could not remove leftover ${path}`, { cause }));
        }
      }
    }
  }
  // Removals moved the mtime: remembered as read after them only if nothing was removed.
  if (o.memo && mtimeMs !== undefined && !left && removed === 0) o.memo.set(dir, { mtimeMs, readAt, subdirs });
  else o.memo?.delete(dir);
  return removed;
}

async function mtimeIfExists(dir: string): Promise<number | undefined> {
  try {
    return (await stat(dir)).mtimeMs;
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** The entries of a directory, none when it does not exist. */
export async function readDirIfExists(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return [];
    throw err;
  }
}

/** A fresh temp-file name beside `path` (see isTempFileName). */
export function tempPathFor(path: string): string {
  // Truncated so the temp name stays within NAME_MAX (255) for any target name that fits.
  return join(dirname(path), `.${basename(path).slice(0, 200)}.${randomBytes(8).toString('hex')}.tmp`);
}

/**
 * Replaces `path` with `data` so that, after a crash at any moment, the file holds either the old
 * or the new content in full, never a mix: writes a temp file in the same directory, fsyncs it,
 * renames it over the target, then fsyncs the directory so the rename itself is durable.
 * The directory must exist. On failure the temp file is removed and the target is untouched.
 * Safe to call concurrently, also for the same path (the last rename wins; each writer has its own
 * temp file).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const mode = opts.mode ?? 0o600;
  const tmp = tempPathFor(path);
  let fh: FileHandle | undefined;
  try {
    // 'wx' never follows or reuses something planted at the temp name. The mode is given at
    // creation so a secret is never readable by more than `mode` allows, even for an instant;
    // chmod then restores bits the umask may have removed.
    fh = await open(tmp, 'wx', mode);
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    opts.beforeRename?.();
    await rename(tmp, path);
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (opts.syncDir ?? true) await syncDir(dirname(path));
}

/**
 * Replaces `path` with `data` atomically for every process on the host (a temp file renamed over
 * it), synchronously and without fsync: it survives a crash of the writer, not necessarily a power
 * loss. For small records nothing acknowledged depends on (the store's crash intents): ~0.1 ms on
 * the event loop, where writeFileAtomic's calls through the libuv pool waited 17–24 ms behind
 * other writes at 32 concurrent issues (bench/scale.ts ingest, measured by a probe).
 */
export function replaceFileSync(path: string, data: string, opts: { mode?: number; beforeRename?: () => void } = {}): void {
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data, { mode: opts.mode ?? 0o600, flag: 'wx' });
    opts.beforeRename?.();
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // Never created, or already renamed.
    }
    throw err;
  }
}

/** Removes a file synchronously (no directory fsync, see replaceFileSync); false when it did not exist. */
export function removeFileSync(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Removes a file and fsyncs its directory so the removal survives a crash.
 * Returns false when the file did not exist. Safe to call concurrently.
 */
export async function removeFileDurable(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (err) {
    if (fsErrorCode(err) === 'ENOENT') return false;
    throw err;
  }
  await syncDir(dirname(path));
  return true;
}

/**
 * Creates a directory and its missing parents with `mode` (default 0o700), and fsyncs the parents
 * of every directory it created so files later renamed into them cannot be lost with the directory.
 * Existing directories keep their mode. Safe to call concurrently.
 */
export async function ensureDir(dir: string, mode = 0o700): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode });
  if (first === undefined) return;
  for (let d = dir; ; d = dirname(d)) {
    await syncDir(dirname(d));
    if (d === first || dirname(d) === d) break;
  }
}

/** Per directory: the fsync running now, and the one queued behind it that later callers share. */
const dirSyncs = new Map<string, { running: Promise<void>; next?: Promise<void> }>();

/**
 * Fsyncs a directory, making renames and unlinks in it durable. Group commit: a caller needs an
 * fsync that starts after its rename, so callers arriving while one runs share the single one
 * queued behind it (32 issues at once each paid three pool calls for their own).
 */
export function syncDir(dir: string): Promise<void> {
  const s = dirSyncs.get(dir);
  if (!s) return startDirSync(dir);
  s.next ??= s.running.catch(() => undefined).then(() => startDirSync(dir));
  return s.next;
}

function startDirSync(dir: string): Promise<void> {
  const state: { running: Promise<void>; next?: Promise<void> } = { running: fsyncDir(dir) };
  dirSyncs.set(dir, state);
  void state.running
    .catch(() => undefined)
    .then(() => {
      if (dirSyncs.get(dir) === state && !state.next) dirSyncs.delete(dir);
    });
  return state.running;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    // Some file systems cannot fsync a directory; their renames are as durable as they get.
    if (fsErrorCode(err) !== 'EINVAL') throw err;
  } finally {
    await fh.close();
  }
}

/** The `code` of a Node system error (ENOENT, EEXIST…), if any. */
export function fsErrorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fsErrorCode } from '../core/atomic-write.js';
import { UsageError } from '../core/errors.js';
import { scanFolder } from './directory-layout.js';
import { SourceUnavailableError } from './errors.js';
import { BundleGate } from './gate.js';
import type { CertSource, SourceSink } from './source.js';

export interface DirectorySourceOptions {
  /** The folder to watch: /etc/letsencrypt/live, a secret mount's parent, a folder of PEMs. */
  path: string;
  /** Full rescan interval: the safety net for changes a watcher misses (network mounts, overflow). */
  everyMs: number;
  /** How long events are collected after the first one before the folders they name are read. */
  debounceMs?: number;
}

const DEFAULT_DEBOUNCE_MS = 250;

/**
 * Certificates from a folder tree (layouts: see directory-layout.ts), keyed by the folder of a
 * pair or the path of a combined PEM.
 *
 * Changes are seen through fs.watch on every folder it reads (armed before reading, so nothing
 * written in between is missed; re-armed when a folder is replaced by a new one under the same
 * path), collected for `debounceMs`, then only the folders that changed are read again. A full
 * pass runs every `everyMs` regardless.
 *
 * A key that disappears is dropped only when a second pass, `debounceMs` later, still does not
 * find it: a folder replaced by rename-aside-then-move is not dropped and re-added. A root that
 * cannot be read drops nothing (an unmounted volume is an outage, not a removal).
 *
 * start/rescan/stop are safe to call concurrently; passes run one at a time, so the sink gets one
 * call at a time.
 */
export class DirectorySource implements CertSource {
  readonly name: string;
  private readonly root: string;
  private readonly everyMs: number;
  private readonly debounceMs: number;
  private gate?: BundleGate;
  private readonly watchers = new Map<string, { watcher: FSWatcher; inode: string }>();
  /** Folders named by events since the last debounced pass. */
  private readonly dirty = new Set<string>();
  /** Folders waiting for the pass loop. */
  private readonly queue = new Set<string>();
  /** Keys a pass did not find; dropped if the next pass does not find them either. */
  private readonly suspects = new Set<string>();
  private draining?: Promise<void>;
  private debounceTimer?: NodeJS.Timeout;
  private everyTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(o: DirectorySourceOptions) {
    if (!isAbsolute(o.path)) throw new UsageError(`directory source path ${JSON.stringify(o.path)} must be absolute`);
    if (!(o.everyMs > 0)) throw new UsageError('directory source: everyMs must be above zero');
    this.root = resolve(o.path);
    this.everyMs = o.everyMs;
    this.debounceMs = o.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.name = `directory:${this.root}`;
  }

  async start(sink: SourceSink): Promise<void> {
    if (this.gate) throw new UsageError(`${this.name} is already started`);
    this.gate = new BundleGate(sink);
    this.everyTimer = setInterval(() => void this.rescan(), this.everyMs);
    this.everyTimer.unref();
    await this.rescan();
  }

  rescan(): Promise<void> {
    return this.schedule([this.root]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.everyTimer);
    clearTimeout(this.debounceTimer);
    for (const { watcher } of this.watchers.values()) watcher.close();
    this.watchers.clear();
    await this.draining;
  }

  /** Queues folders for the pass loop; resolves when a pass that covers them has finished. */
  private schedule(scopes: Iterable<string>): Promise<void> {
    if (this.stopped || !this.gate) return Promise.resolve();
    for (const s of scopes) this.queue.add(s);
    this.draining ??= (async () => {
      try {
        while (this.queue.size > 0 && !this.stopped) {
          const batch = outermost([...this.queue]);
          this.queue.clear();
          try {
            await this.pass(batch);
          } catch (err) {
            // Only a bug gets here (passes report their own failures); say so and keep going.
            this.gate!.fail(this.root, err as Error);
          }
        }
      } finally {
        // Runs in the same tick as the loop's last check: a scope queued after it starts a new loop.
        this.draining = undefined;
      }
    })();
    return this.draining;
  }

  private async pass(scopes: string[]): Promise<void> {
    const gate = this.gate!;
    const seenKeys = new Set<string>();
    const seenDirs = new Set<string>();
    /** Folders whose content is unknown this pass: nothing under them is judged missing. */
    const blind: string[] = [];
    for (const scope of scopes) await this.walk(scope, depthBelow(this.root, scope), seenKeys, seenDirs, blind);
    // A walk cut short by stop() saw only part of the tree: judging would drop what it missed.
    if (this.stopped) return;
    for (const key of gate.keys()) {
      if (seenKeys.has(key)) {
        this.suspects.delete(key);
        continue;
      }
      if (!scopes.some((s) => within(key, s)) || blind.some((b) => within(key, b))) continue;
      if (this.suspects.has(key)) {
        // Kept as a suspect when the sink could not drop it: the next pass over it tries again.
        if (await gate.drop(key)) this.suspects.delete(key);
      } else {
        this.suspects.add(key);
        this.markDirty(key === this.root ? this.root : dirname(key));
      }
    }
    for (const [dir, { watcher }] of this.watchers) {
      if (seenDirs.has(dir) || !scopes.some((s) => within(dir, s)) || blind.some((b) => within(dir, b))) continue;
      watcher.close();
      this.watchers.delete(dir);
    }
  }

  private async walk(dir: string, depth: number, seenKeys: Set<string>, seenDirs: Set<string>, blind: string[]): Promise<void> {
    if (this.stopped) return;
    await this.arm(dir);
    let scan;
    try {
      scan = await scanFolder(dir, depth);
    } catch (err) {
      // A vanished sub-folder is a removal, judged by the caller; anything else is an outage.
      if (dir !== this.root && fsErrorCode(err) === 'ENOENT') return;
      blind.push(dir);
      const why = dir === this.root ? 'nothing is dropped until it can be read again' : 'what it held keeps serving';
      this.gate!.fail(dir, new SourceUnavailableError(`cannot read ${dir}: ${(err as Error).message}; ${why}`, { cause: err }));
      return;
    }
    seenDirs.add(dir);
    for (const found of scan.bundles) {
      seenKeys.add(found.key);
      if ('error' in found) this.gate!.fail(found.key, found.error);
      else await this.gate!.offer(found.key, found.certText, found.keyText);
    }
    for (const sub of scan.subdirs) await this.walk(sub, depth + 1, seenKeys, seenDirs, blind);
  }

  /**
   * Makes sure `dir` is watched by a watcher on the folder now at that path: a folder swapped for
   * another (rename over, or a symlinked folder re-pointed) gets a new watcher.
   */
  private async arm(dir: string): Promise<void> {
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory() || this.stopped) return;
    const current = this.watchers.get(dir);
    const inode = `${st.dev}:${st.ino}`;
    if (current?.inode === inode) return;
    current?.watcher.close();
    this.watchers.delete(dir);
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, () => this.markDirty(dir));
    } catch {
      // Out of inotify watches, or the folder just went: the periodic pass still covers it.
      return;
    }
    watcher.on('error', () => {
      watcher.close();
      if (this.watchers.get(dir)?.watcher === watcher) this.watchers.delete(dir);
      this.markDirty(dir === this.root ? dir : dirname(dir));
    });
    this.watchers.set(dir, { watcher, inode });
  }

  private markDirty(dir: string): void {
    if (this.stopped) return;
    this.dirty.add(dir);
    this.debounceTimer ??= setTimeout(() => {
      this.debounceTimer = undefined;
      const scopes = [...this.dirty];
      this.dirty.clear();
      void this.schedule(scopes);
    }, this.debounceMs);
  }
}

/** `path` is `scope` or inside it. */
function within(path: string, scope: string): boolean {
  return path === scope || path.startsWith(scope.endsWith(sep) ? scope : scope + sep);
}

/** Drops scopes inside another scope of the list: reading the outer one covers them. */
function outermost(scopes: string[]): string[] {
  return scopes.filter((s) => !scopes.some((o) => o !== s && within(s, o)));
}

function depthBelow(root: string, dir: string): number {
  const rel = relative(root, dir);
  return rel === '' ? 0 : rel.split(sep).length;
}

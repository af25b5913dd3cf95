import { HaproxyCommandError, HaproxyNotFoundError } from '../../src/core/errors.js';
import { crtListOptionWords } from '../../src/haproxy/crtlist/line.js';
import type { DeployEntry } from '../../src/haproxy/deploy/entry.js';
import type { InstanceClient } from '../../src/haproxy/deploy/instance.js';
import type { CrtListEntry, CrtListLine, Digested } from '../../src/haproxy/runtime/client.js';

/*
 * The state one HAProxy keeps behind its runtime API, in memory, for the unit tests of
 * InstanceSync's state machine (settle, backoff, refusals). Only the bookkeeping is modelled:
 * what HAProxy itself accepts is tested against real HAProxy (test/runtime.test.ts and friends).
 */

/** An entry whose PEM is `PEM <sha1>`: MemoryInstance reports that SHA-1 for it. */
export function memoryEntry(id: string, version = 1, certDir = '/certs'): DeployEntry {
  const sha1 = `${id.toUpperCase()}-V${version}`;
  return { id, pemPath: `${certDir}/${id}.pem`, pem: `PEM ${sha1}`, sha1, serial: sha1, sni: id.startsWith('_') ? [] : [id], options: {} };
}

function digested<T>(value: T, since: string | undefined): Digested<T> {
  const digest = JSON.stringify(value);
  return digest === since ? { digest } : { digest, value };
}

export class MemoryInstance implements InstanceClient {
  pid = 1000;
  /** Committed certificates: path → PEM. */
  readonly certs = new Map<string, string>();
  readonly caFiles = new Map<string, string>();
  lines: CrtListEntry[] = [];
  /** Maps this HAProxy loads (a map absent here is one its config does not load). */
  readonly maps = new Map<string, Map<string, string>>();
  /** False: no bind loads the crt-list (`show ssl crt-list` says not found). */
  loadsCrtList = true;
  /** While set, every call fails with it (e.g. HaproxyUnreachableError: the instance is down). */
  down?: Error;
  /** Certificate paths whose `set` HAProxy refuses (e.g. a PEM over one CLI buffer). */
  readonly refuse = new Map<string, Error>();
  /** Pushes of these paths wait for the promise first. */
  readonly holds = new Map<string, Promise<void>>();
  /** Method names, in call order. */
  readonly calls: string[] = [];
  closed = false;

  constructor(readonly crtList = '/certs/crt-list.txt') {}

  /** A restart: a new worker that lost what the runtime API gave the old one. */
  restart(): void {
    this.pid++;
    this.certs.clear();
    this.lines = [];
    for (const map of this.maps.values()) map.clear();
  }

  async showInfo() {
    await this.call('showInfo');
    return { pid: this.pid, uptimeSec: 1, version: 'memory', raw: {} };
  }

  async showSslCerts() {
    await this.call('showSslCerts');
    return { certs: [...this.certs.keys()] };
  }

  /** The listing with a digest of what it holds (as RuntimeClient digests HAProxy's reply). */
  async showSslCertsSince(since: string | undefined) {
    return digested(await this.showSslCerts(), since);
  }

  async showSslCertMany(paths: readonly string[]) {
    await this.call('showSslCertMany');
    return paths.map((path) => {
      const pem = this.certs.get(path);
      if (pem === undefined) return undefined;
      const sha1 = pem.slice('PEM '.length);
      return { path, status: 'Used', sha1, serial: sha1, san: [], raw: {} };
    });
  }

  /** Method calls so far: one "command" each. */
  get commandsSent(): number {
    return this.calls.length;
  }

  async showCrtList(list: string) {
    await this.call('showCrtList');
    if (!this.loadsCrtList || list !== this.crtList) notFound(`show ssl crt-list ${list}`);
    return this.lines.map((l) => ({ ...l }));
  }

  async showCrtListSince(list: string, since: string | undefined) {
    return digested(await this.showCrtList(list), since);
  }

  async showMapSince(map: string, since: string | undefined) {
    return digested(await this.showMap(map), since);
  }

  async showMap(map: string) {
    await this.call('showMap');
    const m = this.maps.get(map) ?? notFound(`show map ${map}`);
    return [...m].map(([key, value]) => ({ ref: '0x1', key, value }));
  }

  async putCert(path: string, pem: string) {
    await this.call('putCert');
    await this.holds.get(path);
    const refused = this.refuse.get(path);
    if (refused) throw refused;
    this.certs.set(path, pem);
  }

  async putCertAndListEntry(list: string, entry: CrtListLine, pem: string) {
    await this.putCert(entry.path, pem);
    await this.addCrtListEntry(list, entry);
  }

  async putNewCertsAndListEntries(list: string, items: readonly { entry: CrtListLine; pem: string }[]) {
    const outcomes: (Error | undefined)[] = [];
    for (const { entry, pem } of items) {
      try {
        await this.putCertAndListEntry(list, entry, pem);
        outcomes.push(undefined);
      } catch (err) {
        if (err instanceof HaproxyCommandError && !(err instanceof HaproxyNotFoundError)) outcomes.push(err);
        else throw err;
      }
    }
    return outcomes;
  }

  async putNewCertsPipelined(list: string, next: () => Promise<{ items: readonly { entry: CrtListLine; pem: string }[]; settle(outcomes: (Error | undefined)[]): void } | undefined>) {
    for (let batch = await next(); batch; batch = await next()) batch.settle(await this.putNewCertsAndListEntries(list, batch.items));
  }

  async putCaFile(path: string, pem: string) {
    await this.call('putCaFile');
    this.caFiles.set(path, pem);
  }

  async addCrtListEntry(list: string, entry: CrtListLine) {
    await this.call('addCrtListEntry');
    if (list !== this.crtList) notFound(`add ssl crt-list ${list}`);
    if (!this.certs.has(entry.path)) throw new HaproxyCommandError(`add ssl crt-list: ${entry.path} is not loaded`);
    this.lines.push({ path: entry.path, options: crtListOptionWords(entry.options), sni: [...(entry.sni ?? [])] });
  }

  async delCrtListEntry(list: string, path: string) {
    await this.call('delCrtListEntry');
    const before = this.lines.length;
    this.lines = this.lines.filter((l) => list !== this.crtList || l.path !== path);
    if (this.lines.length === before) notFound(`del ssl crt-list ${list} ${path}`);
    return before - this.lines.length;
  }

  async delSslCert(path: string) {
    await this.call('delSslCert');
    if (!this.certs.delete(path)) notFound(`del ssl cert ${path}`);
  }

  async delSslCaFile(path: string) {
    await this.call('delSslCaFile');
    if (!this.caFiles.delete(path)) notFound(`del ssl ca-file ${path}`);
  }

  async addMapEntries(map: string, entries: readonly (readonly [string, string])[]) {
    await this.call('addMapEntries');
    const m = this.maps.get(map) ?? notFound(`add map ${map}`);
    for (const [k, v] of entries) m.set(k, v);
  }

  async setMap(map: string, key: string, value: string) {
    await this.call('setMap');
    const m = this.maps.get(map);
    if (!m?.has(key)) notFound(`set map ${map} ${key}`);
    m!.set(key, value);
  }

  async delMap(map: string, key: string) {
    await this.call('delMap');
    if (!this.maps.get(map)?.delete(key)) notFound(`del map ${map} ${key}`);
  }

  close(): void {
    this.closed = true;
  }

  private async call(method: string): Promise<void> {
    this.calls.push(method);
    if (this.down) throw this.down;
  }
}

function notFound(what: string): never {
  throw new HaproxyNotFoundError(`haproxy: \`${what}\`: not found`);
}

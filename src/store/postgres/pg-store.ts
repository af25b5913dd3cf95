import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { KeyRing } from '../../crypto/secret-box.js';
import { CertStore } from '../cert-store.js';
import type { LockOptions } from '../locker.js';
import { PgListener, type Channel } from './listener.js';
import { migrate } from './migrations.js';
import { PgDatabase, StoreUnavailableError, type PgConnectionOptions, type StoreHealth } from './pg-database.js';
import { PgLock, PgLocker } from './pg-locker.js';
import { PgStorage } from './pg-storage.js';

export { StoreConfigError, StoreUnavailableError, describeServer, tlsFor, type StoreHealth } from './pg-database.js';
export { PgLock } from './pg-locker.js';
export type { ClaimHolder } from '../cert-store.js';

export interface PgStoreOptions extends PgConnectionOptions {
  keys: KeyRing;
  /** The daemon claim's lease (default 30 s): a standby takes over within about this after the active dies. */
  daemonLeaseMs?: number;
}

/** Where sealed values live, and the associated-data prefix each is sealed under. */
const SEALED_TABLES = [
  { table: 'certd_certs', id: 'id', data: 'key_sealed', context: 'cert' },
  { table: 'certd_blobs', id: 'key', data: 'data', context: 'blob' },
] as const;

/**
 * The typed store in PostgreSQL (several replicas on one database): CertStore over the postgres
 * storage (pg-storage.ts: a row per record, keys sealed with the KeyRing so a dump holds no key
 * in clear) and the postgres locker (pg-locker.ts: leases in `certd_locks`, fencing tokens from
 * one sequence; see docs/DESIGN.md §5), plus what only this backend has: change notification
 * between replicas, health, key rotation. Every method is safe to call concurrently, from this
 * process and from other replicas.
 */
export class PgStore extends CertStore {
  readonly #db: PgDatabase;
  readonly #keys: KeyRing;
  readonly #locker: PgLocker;
  /** This process among the replicas: host:pid:random, as lock owners are named. */
  readonly replicaId: string;

  private constructor(o: PgStoreOptions) {
    const db = new PgDatabase(o);
    const replicaId = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
    const locker = new PgLocker({ query: db.query, onWarning: db.onWarning, unavailable: (message, cause) => new StoreUnavailableError(message, { cause }) });
    super(new PgStorage(db, replicaId), locker, { keys: o.keys, onWarning: db.onWarning, daemonLeaseMs: o.daemonLeaseMs, claimHint: 'stop it first' });
    this.#db = db;
    this.#keys = o.keys;
    this.#locker = locker;
    this.replicaId = replicaId;
  }

  /** Connects, migrates the schema (see migrations.ts) and returns the store; fails with what is wrong. */
  static async open(o: PgStoreOptions): Promise<PgStore> {
    const store = new PgStore(o);
    const db = store.#db;
    try {
      const client = await db.pool.connect();
      try {
        await migrate(client);
      } finally {
        client.release();
      }
    } catch (err) {
      await db.end();
      throw db.startError(err);
    }
    return store;
  }

  override lock(key: string, opts?: LockOptions): Promise<PgLock> {
    return this.#locker.lock(key, opts);
  }

  override tryLock(key: string, opts?: Omit<LockOptions, 'waitMs'>): Promise<PgLock | undefined> {
    return this.#locker.tryLock(key, opts);
  }

  /** Tells the other replicas (their `listen`): `payload` must stay under MAX_PAYLOAD_BYTES as JSON. */
  async publish(channel: Exclude<Channel, 'certd_certs'>, payload: Record<string, unknown>): Promise<void> {
    await this.#db.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ ...payload, by: this.replicaId })]);
  }

  /**
   * What the other replicas change and announce, for as long as the returned listener runs
   * (close it before the store). `onResync` follows a reconnect: messages may have been lost.
   */
  async listen(onMessage: (channel: Channel, payload: unknown) => void, onResync: () => void): Promise<PgListener> {
    const listener = new PgListener({ connection: this.#db.connection, onMessage, onResync, onWarning: this.#db.onWarning, self: this.replicaId });
    await listener.start();
    return listener;
  }

  /**
   * Re-seals every secret not sealed with the key ring's first key (`store rotate-key`), a batch
   * at a time; each row is updated only if unchanged since it was read, so a daemon writing
   * meanwhile loses nothing (what it writes is sealed with the key it has). Returns how many were
   * re-sealed and how many are left on other keys (a concurrent writer with an older key file).
   * Safe to run again; safe beside running daemons whose key file holds both keys.
   */
  async rotateKey(): Promise<{ resealed: number; left: number }> {
    const current = this.#keys.currentId;
    let resealed = 0;
    for (const t of SEALED_TABLES) {
      for (let after = ''; ; ) {
        const rows = (
          await this.#db.query<{ id: string; key_id: string; data: Buffer }>(
            `SELECT ${t.id} AS id, key_id, ${t.data} AS data FROM ${t.table} WHERE key_id <> $1 AND ${t.id} COLLATE "C" > $2 ORDER BY ${t.id} COLLATE "C" LIMIT 200`,
            [current, after],
          )
        ).rows;
        if (rows.length === 0) break;
        for (const r of rows) {
          const context = `${t.context}:${r.id}`;
          const sealed = this.#keys.seal(this.#keys.open({ keyId: r.key_id, data: r.data }, context), context);
          const n = await this.#db.query(`UPDATE ${t.table} SET key_id = $2, ${t.data} = $3 WHERE ${t.id} = $1 AND key_id = $4 AND ${t.data} = $5`, [r.id, sealed.keyId, sealed.data, r.key_id, r.data]);
          resealed += n.rowCount ?? 0;
        }
        after = rows.at(-1)!.id;
      }
    }
    let left = 0;
    for (const t of SEALED_TABLES) left += Number((await this.#db.query<{ n: string }>(`SELECT count(*) AS n FROM ${t.table} WHERE key_id <> $1`, [current])).rows[0]!.n);
    return { resealed, left };
  }

  /** See StoreHealth. */
  health(): StoreHealth {
    return this.#db.health();
  }
}

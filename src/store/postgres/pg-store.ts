import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { KeyRing } from '../../crypto/secret-box.js';
import { CertStore } from '../cert-store.js';
import type { LockOptions } from '../locker.js';
import { PgListener, type Channel } from './listener.js';
import { migrate } from './migrations.js';
import { PgDatabase, StoreUnavailableError, type PgConnectionOptions, type StoreHealth, type StoreHealthDetail } from './pg-database.js';
import { PgLock, PgLocker } from './pg-locker.js';
import { PgStorage } from './pg-storage.js';

export { StoreConfigError, StoreUnavailableError, describeServer, tlsFor, type StoreHealth, type StoreHealthDetail } from './pg-database.js';
export { PgLock } from './pg-locker.js';
export type { ClaimHolder } from '../cert-store.js';

export interface PgStoreOptions extends PgConnectionOptions {
  keys: KeyRing;
  /** The daemon claim's lease (default 30 s): a standby takes over within about this after the active dies. */
  daemonLeaseMs?: number;
}

/** What a replica writes of itself at each heartbeat (see migrations.ts, step 2). */
export interface ReplicaBeat {
  id: string;
  host: string;
  pid: number;
  api: string;
  version: string;
  upSince: Date;
  leaseMs: number;
  /** The instances it owns now, with each lease's fencing token. */
  owns: { instance: string; token: string }[];
  /** The token of the cluster-wide work's lease, when it holds it. */
  clusterWork?: string;
}

/** A replica's row as read back, with the database's own clock deciding its age. */
export interface ReplicaRecord extends Omit<ReplicaBeat, 'upSince'> {
  upSince: string;
  heartbeatAt: string;
  /** now() − heartbeat_at on the database's clock (no drift between hosts). */
  heartbeatAgeMs: number;
  stoppedAt?: string;
}

/** How long a gone replica's row stays shown before a heartbeat of another replica deletes it. */
const GONE_KEPT = '1 day';

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
    // The notifications come back with the database, not at the listener's next backoff step.
    const kick = () => listener.kick();
    const listener: PgListener = new PgListener({
      connection: this.#db.connection,
      onMessage,
      onResync,
      onWarning: this.#db.onWarning,
      self: this.replicaId,
      onClosed: () => this.#db.recovered.delete(kick),
    });
    await listener.start();
    this.#db.recovered.add(kick);
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

  /** See StoreHealthDetail. */
  healthDetail(): StoreHealthDetail {
    return this.#db.healthDetail();
  }

  /**
   * Writes this replica's row (inserted at its first beat) and deletes rows gone for over
   * GONE_KEPT: one statement, so two replicas beating at once never conflict.
   */
  async heartbeat(b: ReplicaBeat): Promise<void> {
    await this.#db.query(
      `WITH old AS (DELETE FROM certd_replicas WHERE id <> $1 AND heartbeat_at < now() - interval '${GONE_KEPT}')
       INSERT INTO certd_replicas (id, host, pid, api, version, up_since, heartbeat_at, lease_ms, owns, cluster_work)
       VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8, $9)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), api = $4, lease_ms = $7, owns = $8, cluster_work = $9, stopped_at = NULL`,
      [b.id, b.host, b.pid, b.api, b.version, b.upSince, b.leaseMs, JSON.stringify(b.owns), b.clusterWork ?? null],
    );
  }

  /** A replica that stops says so (its row stays, shown as stopped, until GONE_KEPT). */
  async replicaStopped(id: string): Promise<void> {
    await this.#db.query(`UPDATE certd_replicas SET stopped_at = now(), owns = '[]', cluster_work = NULL WHERE id = $1`, [id]);
  }

  /** Every replica's row, oldest start first. */
  async listReplicas(): Promise<ReplicaRecord[]> {
    const rows = await this.#db.query<{
      id: string; host: string; pid: number; api: string; version: string; up_since: Date; heartbeat_at: Date; lease_ms: number;
      stopped_at: Date | null; owns: { instance: string; token: string }[]; cluster_work: string | null; age_ms: number;
    }>(`SELECT *, (extract(epoch FROM now() - heartbeat_at) * 1000)::float8 AS age_ms FROM certd_replicas ORDER BY up_since, id COLLATE "C"`);
    return rows.rows.map((r) => ({
      id: r.id,
      host: r.host,
      pid: r.pid,
      api: r.api,
      version: r.version,
      upSince: r.up_since.toISOString(),
      heartbeatAt: r.heartbeat_at.toISOString(),
      heartbeatAgeMs: Math.max(0, Math.round(r.age_ms)),
      leaseMs: r.lease_ms,
      owns: r.owns,
      ...(r.cluster_work === null ? {} : { clusterWork: r.cluster_work }),
      ...(r.stopped_at === null ? {} : { stoppedAt: r.stopped_at.toISOString() }),
    }));
  }
}

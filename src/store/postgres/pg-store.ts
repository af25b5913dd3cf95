import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sleep } from '../../core/async.js';
import { errorKind, StoreCorruptError, StoreLockedError } from '../../core/errors.js';
import type { KeyRing } from '../../crypto/secret-box.js';
import { checkCertId, checkStoreKey } from '../fs/keys.js';
import type { CertMeta, CertOrigin, DnsRecordEntry, Lock, LockOptions, PendingIssue, Store, StoredCert } from '../store.js';
import { PgListener, type Channel } from './listener.js';
import { migrate, StoreSchemaTooNewError } from './migrations.js';

/** PostgreSQL cannot be reached or stopped mid-call: nothing was changed unless said otherwise. */
export class StoreUnavailableError extends errorKind('CERTD_E_STORE_UNAVAILABLE', 'unavailable') {}
/** The server answered, and its answer means the store config is wrong (login, database, TLS). */
export class StoreConfigError extends errorKind('CERTD_E_STORE_CONFIG', 'input') {}

export interface PgStoreOptions {
  /** postgres://user[:password]@host:port/db; the password may also come from `password`. */
  url: string;
  password?: string;
  /** TLS to the server, as node-postgres takes it (ca, rejectUnauthorized…); see tlsFor(). */
  ssl?: pg.ConnectionConfig['ssl'];
  keys: KeyRing;
  /** Pool size per replica (default 10). */
  maxConnections?: number;
  /** Bound a connect and a statement (default 10 s each): a hung server fails calls, it does not hang them. */
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
  /** The daemon claim's lease (default 30 s): a standby takes over within about this after the active dies. */
  daemonLeaseMs?: number;
  onWarning?: (err: Error) => void;
  /** Told once when the database answers again after it failed a call. */
  onRecovered?: (message: string) => void;
}

/** Whether the database answered the last call (the daemon's lease refresh makes one every third of its lease). */
export interface StoreHealth {
  ok: boolean;
  /** Since when it has not answered (ISO-8601), and why. */
  downSince?: string;
  error?: string;
}

/** StoreHealth and more, for `status`: the last statement's time and the last error, kept after a recovery. */
export interface StoreHealthDetail extends StoreHealth {
  /** The last successful statement's time in ms (a pooled connection's wait included), and when. */
  roundTripMs?: number;
  checkedAt?: string;
  lastError?: string;
  lastErrorAt?: string;
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

/** Who holds the daemon claim, as a standby reports it. */
export interface ClaimHolder {
  host: string;
  pid: number;
  /** When its lease runs out unless refreshed. */
  expiresAt: Date;
}

/** The settings `store.sslmode` names, for node-postgres (`ca` is the PEM text of `store.ca`). */
export function tlsFor(mode: 'disable' | 'require' | 'verify-full', ca?: string): pg.ConnectionConfig['ssl'] {
  if (mode === 'disable') return false;
  if (mode === 'require') return { rejectUnauthorized: false };
  return ca === undefined ? { rejectUnauthorized: true } : { rejectUnauthorized: true, ca };
}

const DEFAULT_LEASE_MS = 30_000;
/** Where sealed values live, and the associated-data prefix each is sealed under. */
const SEALED_TABLES = [
  { table: 'certd_certs', id: 'id', data: 'key_sealed', context: 'cert' },
  { table: 'certd_blobs', id: 'key', data: 'data', context: 'blob' },
] as const;
const DEFAULT_WAIT_MS = 60_000;
const DAEMON_LOCK = 'daemon';
/** SQLSTATE classes that mean "the server or the connection went away", not a bad statement. */
const UNAVAILABLE_SQLSTATE = /^(08|57P0|53)/;

/**
 * Store in PostgreSQL (several replicas on one database): one row per record, private keys and
 * secret blobs sealed with the KeyRing (a dump holds no key in clear), locks as leases in
 * `certd_locks` with a fencing token from one sequence (see docs/DESIGN.md §5). Every method is
 * safe to call concurrently, from this process and from other replicas.
 */
export class PgStore implements Store {
  readonly #pool: pg.Pool;
  readonly #keys: KeyRing;
  readonly #where: string;
  readonly #onWarning: (err: Error) => void;
  readonly #onRecovered: (message: string) => void;
  readonly #daemonLeaseMs: number;
  readonly #locks = new Set<PgLock>();
  readonly #listeners = new Set<PgListener>();
  readonly #connection: pg.ClientConfig;
  /** This process among the replicas: host:pid:random, as lock owners are named. */
  readonly replicaId = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
  #down: { since: Date; error: string } | undefined;
  #lastError: { at: Date; error: string } | undefined;
  #roundTrip: { ms: number; at: Date } | undefined;

  private constructor(o: PgStoreOptions) {
    this.#connection = {
      connectionString: withPassword(o.url, o.password),
      ...(o.ssl !== undefined ? { ssl: o.ssl } : {}),
      connectionTimeoutMillis: o.connectTimeoutMs ?? 10_000,
      application_name: 'haproxy-certd',
    };
    this.#pool = new pg.Pool({ ...this.#connection, max: o.maxConnections ?? 10, query_timeout: o.queryTimeoutMs ?? 10_000, idleTimeoutMillis: 30_000 });
    this.#keys = o.keys;
    this.#where = describeServer(o.url);
    this.#onWarning = o.onWarning ?? ((err) => process.emitWarning(err));
    this.#onRecovered = o.onRecovered ?? (() => undefined);
    this.#daemonLeaseMs = o.daemonLeaseMs ?? DEFAULT_LEASE_MS;
    // An idle connection the server closed (a restart) must not crash the process: the next call reconnects.
    this.#pool.on('error', (err) => this.#onWarning(new StoreUnavailableError(`PostgreSQL at ${this.#where} closed a connection: ${err.message}`, { cause: err })));
  }

  /** Connects, migrates the schema (see migrations.ts) and returns the store; fails with what is wrong. */
  static async open(o: PgStoreOptions): Promise<PgStore> {
    const store = new PgStore(o);
    try {
      const client = await store.#pool.connect();
      try {
        await migrate(client);
      } finally {
        client.release();
      }
    } catch (err) {
      await store.#pool.end().catch(() => undefined);
      throw store.#startError(err);
    }
    return store;
  }

  /** The database is the operator's to fix when its answer says so (exit 2); else it is away (exit 1). */
  #startError(err: unknown): unknown {
    const e = err as { code?: string; message?: string };
    const config = (why: string) => new StoreConfigError(`PostgreSQL at ${this.#where}: ${why}`, { cause: err });
    switch (e.code) {
      case '28P01':
      case '28000':
        return config(`the server refused the login (${e.message}): check the user in store.url and store.password / store.passwordFile`);
      case '3D000':
        return config(`${e.message}: create it (createdb -O <user> <db>) or fix the database in store.url`);
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return config('the host name does not resolve: fix the host in store.url');
      case 'SELF_SIGNED_CERT_IN_CHAIN':
      case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      case 'ERR_TLS_CERT_ALTNAME_INVALID':
      case 'CERT_HAS_EXPIRED':
        return config(`its TLS certificate does not verify (${e.message}): give its CA as store.ca, or fix the host name in store.url`);
    }
    if (/does not support SSL/i.test(e.message ?? '')) return config('the server does not offer TLS: enable ssl on the server, or set store.sslmode: disable (loopback or a trusted network only)');
    if (e instanceof StoreSchemaTooNewError) return err;
    return this.#wrap(err);
  }

  async loadCert(id: string): Promise<StoredCert | undefined> {
    const row = (await this.#q<CertRow>('SELECT * FROM certd_certs WHERE id = $1', [checkCertId(id)])).rows[0];
    if (!row) return undefined;
    const keyPem = this.#keys.open({ keyId: row.key_id, data: row.key_sealed }, `cert:${row.id}`).toString('utf8');
    return { certPem: row.cert_pem, keyPem, meta: metaOf(row) };
  }

  async saveCert(cert: StoredCert): Promise<void> {
    const m = cert.meta;
    const id = checkCertId(m?.id);
    if (typeof cert.certPem !== 'string' || typeof cert.keyPem !== 'string' || !Array.isArray(m.names)) {
      throw new StoreCorruptError(`refusing to save certificate ${id}: it needs string certPem and keyPem and a names list`);
    }
    const sealed = this.#keys.seal(cert.keyPem, `cert:${id}`);
    // The other replicas hear of it when it commits (certd_certs): one statement, so never before.
    await this.#q(
      `WITH saved AS (
         INSERT INTO certd_certs (id, names, issuer, origin, not_before, not_after, serial, fingerprint, updated_at, cert_pem, key_id, key_sealed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (id) DO UPDATE SET names = $2, issuer = $3, origin = $4, not_before = $5, not_after = $6, serial = $7,
           fingerprint = $8, updated_at = $9, cert_pem = $10, key_id = $11, key_sealed = $12
         RETURNING id)
       SELECT pg_notify('certd_certs', $13) FROM saved`,
      [id, m.names, m.issuer, m.origin, m.notBefore, m.notAfter, m.serial, m.fingerprint, m.updatedAt, cert.certPem, sealed.keyId, sealed.data, this.#changed(id)],
    );
  }

  async deleteCert(id: string): Promise<boolean> {
    const k = checkCertId(id);
    const r = await this.#q(`WITH gone AS (DELETE FROM certd_certs WHERE id = $1 RETURNING id) SELECT pg_notify('certd_certs', $2) FROM gone`, [k, this.#changed(k)]);
    return (r.rowCount ?? 0) > 0;
  }

  #changed(id: string): string {
    return JSON.stringify({ id, by: this.replicaId });
  }

  /** Tells the other replicas (their `listen`): `payload` must stay under MAX_PAYLOAD_BYTES as JSON. */
  async publish(channel: Exclude<Channel, 'certd_certs'>, payload: Record<string, unknown>): Promise<void> {
    await this.#q('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ ...payload, by: this.replicaId })]);
  }

  /**
   * What the other replicas change and announce, for as long as the returned listener runs
   * (close it before the store). `onResync` follows a reconnect: messages may have been lost.
   */
  async listen(onMessage: (channel: Channel, payload: unknown) => void, onResync: () => void): Promise<PgListener> {
    const listener: PgListener = new PgListener({
      connection: this.#connection,
      onMessage,
      onResync,
      onWarning: this.#onWarning,
      self: this.replicaId,
      onClosed: () => this.#listeners.delete(listener),
    });
    await listener.start();
    this.#listeners.add(listener);
    return listener;
  }

  /** Metadata of every certificate, sorted by id (the PEMs and keys are not read). */
  async listCerts(): Promise<CertMeta[]> {
    const rows = await this.#q<CertRow>(
      'SELECT id, names, issuer, origin, not_before, not_after, serial, fingerprint, updated_at FROM certd_certs ORDER BY id COLLATE "C"',
    );
    return rows.rows.map(metaOf);
  }

  async putPending(p: PendingIssue): Promise<void> {
    const id = checkCertId(p?.id);
    if (typeof p.requestedAt !== 'string' || !Array.isArray(p.names)) throw new StoreCorruptError(`refusing to save pending request ${id}: it needs requestedAt and a names list`);
    await this.#q('INSERT INTO certd_pending (id, requested_at, body) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET requested_at = $2, body = $3', [
      id,
      p.requestedAt,
      JSON.stringify(p),
    ]);
  }

  async deletePending(id: string): Promise<void> {
    await this.#q('DELETE FROM certd_pending WHERE id = $1', [checkCertId(id)]);
  }

  /** Pending requests, oldest first. */
  async listPending(): Promise<PendingIssue[]> {
    const rows = await this.#q<{ body: PendingIssue }>('SELECT body FROM certd_pending ORDER BY requested_at COLLATE "C", id COLLATE "C"');
    return rows.rows.map((r) => r.body);
  }

  async putDnsRecord(r: DnsRecordEntry): Promise<void> {
    const id = checkCertId(r?.id);
    if (typeof r.writtenAt !== 'string' || typeof r.fqdn !== 'string' || typeof r.value !== 'string') throw new StoreCorruptError(`refusing to save DNS record ${id}: it needs string fqdn, value and writtenAt`);
    await this.#q('INSERT INTO certd_dns_records (id, written_at, body) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET written_at = $2, body = $3', [id, r.writtenAt, JSON.stringify(r)]);
  }

  async deleteDnsRecord(id: string): Promise<void> {
    await this.#q('DELETE FROM certd_dns_records WHERE id = $1', [checkCertId(id)]);
  }

  /** DNS records to remove, oldest first. */
  async listDnsRecords(): Promise<DnsRecordEntry[]> {
    const rows = await this.#q<{ body: DnsRecordEntry }>('SELECT body FROM certd_dns_records ORDER BY written_at COLLATE "C", id COLLATE "C"');
    return rows.rows.map((r) => r.body);
  }

  async getBlob(key: string): Promise<Buffer | undefined> {
    const k = checkStoreKey(key, 'blob key');
    const row = (await this.#q<{ data: Buffer; key_id: string | null }>('SELECT data, key_id FROM certd_blobs WHERE key = $1', [k])).rows[0];
    if (!row) return undefined;
    return row.key_id === null ? row.data : this.#keys.open({ keyId: row.key_id, data: row.data }, `blob:${k}`);
  }

  /** `secret` blobs (the local CA key, ACME account keys) are sealed like private keys. */
  async putBlob(key: string, data: Buffer | string, opts: { secret?: boolean } = {}): Promise<void> {
    const k = checkStoreKey(key, 'blob key');
    const sealed = opts.secret ? this.#keys.seal(data, `blob:${k}`) : { keyId: null, data: Buffer.from(data) };
    await this.#q('INSERT INTO certd_blobs (key, data, key_id) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET data = $2, key_id = $3', [k, sealed.data, sealed.keyId]);
  }

  /** Waits for the lease (polling with backoff, bounded by waitMs), or throws StoreLockedError naming the holder. */
  async lock(key: string, opts: LockOptions = {}): Promise<Lock> {
    const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
    if (!(waitMs >= 0)) throw new RangeError(`lock wait ${waitMs} ms is invalid: use 0 or more (default ${DEFAULT_WAIT_MS})`);
    const deadline = Date.now() + waitMs;
    for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
      const got = await this.tryLock(key, opts);
      if (got) return got;
      const left = deadline - Date.now();
      if (left <= 0) {
        const holder = (await this.#q<{ owner: string; expires_at: Date }>('SELECT owner, expires_at FROM certd_locks WHERE key = $1', [key])).rows[0];
        const who = holder ? `by ${describeOwner(holder.owner)} (lease until ${holder.expires_at.toISOString()})` : '(it was released just now)';
        throw new StoreLockedError(`lock ${key} is still held ${who} after waiting ${waitMs} ms; retry later — a lock whose holder died frees itself when its lease expires`);
      }
      await sleep(Math.min(delay / 2 + Math.random() * (delay / 2), left), opts.signal);
    }
  }

  /**
   * Takes the lease if free or expired, in one statement (exactly one contender wins), with a new
   * fencing token; else undefined at once.
   */
  async tryLock(key: string, opts: Omit<LockOptions, 'waitMs'> = {}): Promise<PgLock | undefined> {
    const k = checkStoreKey(key, 'lock key');
    const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    if (!(leaseMs >= 30)) throw new RangeError(`lock lease ${leaseMs} ms is too short: use at least 30 ms (default ${DEFAULT_LEASE_MS})`);
    opts.signal?.throwIfAborted();
    return this.#take(k, leaseMs, opts.onLost);
  }

  /** One active daemon per store until replicas share the work (the `daemon` lease, refreshed); refuses when held. */
  async claimForDaemon(onLost: (err: Error) => void): Promise<void> {
    const got = await this.#take(DAEMON_LOCK, this.#daemonLeaseMs, onLost);
    if (got) return;
    const holder = await this.claimHolder();
    throw new StoreLockedError(
      `the PostgreSQL store at ${this.#where} is in use by another haproxy-certd daemon (${holder ? `pid ${holder.pid} on host ${holder.host}` : 'just released'}): stop it first`,
    );
  }

  /**
   * Active/standby: takes the daemon claim, waiting as long as another daemon holds it. Polls at
   * a fifth of the lease (at most every second), so a holder that died is replaced within its
   * lease and one poll. `onStandby` is told each time the holder changes (also at first), and
   * a failed poll (the database away) is a warning, not the end: the standby goes on waiting.
   * Resolves true when it had to wait (a takeover), false when the claim was free.
   */
  async claimWhenFree(onLost: (err: Error) => void, o: { onStandby: (holder: ClaimHolder) => void; signal?: AbortSignal }): Promise<boolean> {
    const pollMs = Math.min(1_000, this.#daemonLeaseMs / 5);
    let told = '';
    for (;;) {
      o.signal?.throwIfAborted();
      try {
        if (await this.#take(DAEMON_LOCK, this.#daemonLeaseMs, onLost)) return told !== '';
        const holder = await this.claimHolder();
        const who = holder ? `${holder.host}:${holder.pid}` : '';
        if (holder && who !== told) o.onStandby(holder);
        told = who;
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
        this.#onWarning(err);
      }
      await sleep(pollMs, o.signal);
    }
  }

  /** The daemon holding the claim now, if any (an expired lease counts as none). */
  async claimHolder(): Promise<ClaimHolder | undefined> {
    const row = (await this.#q<{ owner: string; expires_at: Date }>('SELECT owner, expires_at FROM certd_locks WHERE key = $1 AND expires_at > now()', [DAEMON_LOCK])).rows[0];
    if (!row) return undefined;
    const [host = '?', pid = '0'] = row.owner.split(':');
    return { host, pid: Number(pid), expiresAt: row.expires_at };
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
          await this.#q<{ id: string; key_id: string; data: Buffer }>(
            `SELECT ${t.id} AS id, key_id, ${t.data} AS data FROM ${t.table} WHERE key_id <> $1 AND ${t.id} COLLATE "C" > $2 ORDER BY ${t.id} COLLATE "C" LIMIT 200`,
            [current, after],
          )
        ).rows;
        if (rows.length === 0) break;
        for (const r of rows) {
          const context = `${t.context}:${r.id}`;
          const sealed = this.#keys.seal(this.#keys.open({ keyId: r.key_id, data: r.data }, context), context);
          const n = await this.#q(`UPDATE ${t.table} SET key_id = $2, ${t.data} = $3 WHERE ${t.id} = $1 AND key_id = $4 AND ${t.data} = $5`, [r.id, sealed.keyId, sealed.data, r.key_id, r.data]);
          resealed += n.rowCount ?? 0;
        }
        after = rows.at(-1)!.id;
      }
    }
    let left = 0;
    for (const t of SEALED_TABLES) left += Number((await this.#q<{ n: string }>(`SELECT count(*) AS n FROM ${t.table} WHERE key_id <> $1`, [current])).rows[0]!.n);
    return { resealed, left };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#locks].map((l) => l.release().catch(() => undefined)));
    await this.#pool.end().catch(() => undefined);
  }

  async #take(key: string, leaseMs: number, onLost?: (err: Error) => void): Promise<PgLock | undefined> {
    const owner = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
    const row = (
      await this.#q<{ token: string }>(
        `INSERT INTO certd_locks (key, owner, token, expires_at) VALUES ($1, $2, nextval('certd_fence'), now() + $3 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
           WHERE certd_locks.expires_at <= now()
         RETURNING token`,
        [key, owner, leaseMs],
      )
    ).rows[0];
    if (!row) return undefined;
    const lock = new PgLock(key, row.token, leaseMs, {
      refresh: async () => ((await this.#q('UPDATE certd_locks SET expires_at = now() + $3 * interval \'1 millisecond\' WHERE key = $1 AND token = $2', [key, row.token, leaseMs])).rowCount ?? 0) > 0,
      remove: async () => void (await this.#q('DELETE FROM certd_locks WHERE key = $1 AND token = $2', [key, row.token])),
      lost: (err) => {
        this.#onWarning(err);
        onLost?.(err);
      },
      unconfirmed: (err, until) =>
        this.#onWarning(new StoreUnavailableError(`lock ${key} could not be refreshed (${err.message}); it holds until ${until.toISOString()}, retrying`, { cause: err })),
      released: (l) => this.#locks.delete(l),
    });
    this.#locks.add(lock);
    return lock;
  }

  /** See StoreHealth. */
  health(): StoreHealth {
    return this.#down ? { ok: false, downSince: this.#down.since.toISOString(), error: this.#down.error } : { ok: true };
  }

  /** See StoreHealthDetail. */
  healthDetail(): StoreHealthDetail {
    return {
      ...this.health(),
      ...(this.#roundTrip ? { roundTripMs: this.#roundTrip.ms, checkedAt: this.#roundTrip.at.toISOString() } : {}),
      ...(this.#lastError ? { lastError: this.#lastError.error, lastErrorAt: this.#lastError.at.toISOString() } : {}),
    };
  }

  /**
   * Writes this replica's row (inserted at its first beat) and deletes rows gone for over
   * GONE_KEPT: one statement, so two replicas beating at once never conflict.
   */
  async heartbeat(b: ReplicaBeat): Promise<void> {
    await this.#q(
      `WITH old AS (DELETE FROM certd_replicas WHERE id <> $1 AND heartbeat_at < now() - interval '${GONE_KEPT}')
       INSERT INTO certd_replicas (id, host, pid, api, version, up_since, heartbeat_at, lease_ms, owns, cluster_work)
       VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8, $9)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), api = $4, lease_ms = $7, owns = $8, cluster_work = $9, stopped_at = NULL`,
      [b.id, b.host, b.pid, b.api, b.version, b.upSince, b.leaseMs, JSON.stringify(b.owns), b.clusterWork ?? null],
    );
  }

  /** A replica that stops says so (its row stays, shown as stopped, until GONE_KEPT). */
  async replicaStopped(id: string): Promise<void> {
    await this.#q(`UPDATE certd_replicas SET stopped_at = now(), owns = '[]', cluster_work = NULL WHERE id = $1`, [id]);
  }

  /** Every replica's row, oldest start first. */
  async listReplicas(): Promise<ReplicaRecord[]> {
    const rows = await this.#q<{
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

  /** Every statement goes through here: an outage is said once when it starts and once when it ends. */
  async #q<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    let result: pg.QueryResult<R>;
    const started = performance.now();
    try {
      result = await this.#pool.query<R>(sql, params);
    } catch (err) {
      const wrapped = this.#wrap(err);
      if (wrapped instanceof StoreUnavailableError) this.#lastError = { at: new Date(), error: wrapped.message };
      if (wrapped instanceof StoreUnavailableError && !this.#down) {
        this.#down = { since: new Date(), error: wrapped.message };
        this.#onWarning(wrapped);
      }
      throw wrapped;
    }
    this.#roundTrip = { ms: Math.round((performance.now() - started) * 10) / 10, at: new Date() };
    if (this.#down) {
      const since = this.#down.since;
      this.#down = undefined;
      // The notifications come back with the database, not at the listener's next backoff step.
      for (const l of this.#listeners) l.kick();
      this.#onRecovered(`PostgreSQL at ${this.#where} answers again (it did not from ${since.toISOString()}, ${Math.round((Date.now() - since.getTime()) / 1000)} s): new work goes on`);
    }
    return result;
  }

  /** A connection-level failure becomes StoreUnavailableError naming the server; the rest pass through. */
  #wrap(err: unknown): unknown {
    const e = err as { code?: string; message?: string };
    const connection = typeof e.code === 'string' && (UNAVAILABLE_SQLSTATE.test(e.code) || /^E[A-Z]+$/.test(e.code));
    const lost = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection timeout/i.test(e.message ?? '');
    if (!connection && !lost) return err;
    return new StoreUnavailableError(`PostgreSQL at ${this.#where} is not answering (${e.code ?? e.message}): HAProxy keeps serving what it has; new work waits until the database is back`, {
      cause: err,
    });
  }
}

interface LockHooks {
  /** Extends the lease; false when the row is no longer ours (taken over after it expired). */
  refresh(): Promise<boolean>;
  remove(): Promise<void>;
  lost(err: Error): void;
  /** A refresh failed while the lease still holds (the database away): said loudly, once per outage. */
  unconfirmed(err: Error, until: Date): void;
  released(lock: PgLock): void;
}

/**
 * A held lease. `token` grows with every grant of any lock (one sequence): a write fenced with it is
 * refused once a later holder exists. Refreshed at a third of the lease; a refresh that finds the
 * row gone means lost, and so does the lease's end without a confirmation — a timer, not the
 * refresh's answer, decides that, so a refresh hung on a partitioned network (up to the query
 * timeout, which may exceed the lease) cannot keep a holder writing past its lease. The holder is
 * told, and must stop writing.
 */
export class PgLock implements Lock {
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #released: Promise<void> | undefined;
  #confirmedUntil = 0;
  #unconfirmed = false;
  #lastError: Error | undefined;

  constructor(
    readonly key: string,
    readonly token: string,
    private readonly leaseMs: number,
    private readonly hooks: LockHooks,
  ) {
    this.#confirm(Date.now());
    this.#schedule();
  }

  /** Whether this holder still knows its lease to be valid (a lost one stops writing at once). */
  get held(): boolean {
    return this.#released === undefined && Date.now() < this.#confirmedUntil;
  }

  release(): Promise<void> {
    this.#released ??= (async () => {
      clearTimeout(this.#timer);
      clearTimeout(this.#deadline);
      this.hooks.released(this);
      await this.hooks.remove();
    })();
    return this.#released;
  }

  #confirm(asked: number): void {
    // Ends a little before the database's lease (a tenth, at most 1 s): the next holder can
    // only start after it, so a holder that stops at its own end never overlaps with it, even
    // across some clock drift between hosts.
    this.#confirmedUntil = asked + this.leaseMs - Math.min(1_000, this.leaseMs / 10);
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => this.#lose(this.#lastError), Math.max(0, this.#confirmedUntil - Date.now()));
    this.#deadline.unref();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => void this.#refresh(), Math.max(10, this.leaseMs / 3));
    this.#timer.unref();
  }

  async #refresh(): Promise<void> {
    if (this.#released || this.#confirmedUntil === 0) return;
    const asked = Date.now();
    const ok = await this.hooks.refresh().catch((err: Error) => err);
    if (this.#released || this.#confirmedUntil === 0) return;
    if (ok === true) {
      this.#lastError = undefined;
      this.#confirm(asked);
      this.#unconfirmed = false;
      this.#schedule();
      return;
    }
    if (ok instanceof Error) {
      // The database is away: try again while the lease still holds; the deadline timer ends it.
      this.#lastError = ok;
      if (!this.#unconfirmed) this.hooks.unconfirmed(ok, new Date(this.#confirmedUntil));
      this.#unconfirmed = true;
      this.#timer = setTimeout(() => void this.#refresh(), Math.max(10, Math.min(1_000, this.leaseMs / 10)));
      this.#timer.unref();
      return;
    }
    this.#lose(undefined, 'it was taken over after its lease ran out');
  }

  #lose(err: Error | undefined, why = `the database could not confirm it before its lease ran out (${err?.message ?? 'no answer in time'})`): void {
    if (this.#released || this.#confirmedUntil === 0) return;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.#confirmedUntil = 0;
    this.hooks.released(this);
    this.hooks.lost(new StoreLockedError(`lock ${this.key} (token ${this.token}) is lost: ${why}; its holder stops writing`));
  }
}

interface CertRow {
  id: string;
  names: string[];
  issuer: string;
  origin: CertOrigin;
  not_before: string;
  not_after: string;
  serial: string;
  fingerprint: string;
  updated_at: string;
  cert_pem: string;
  key_id: string;
  key_sealed: Buffer;
}

function metaOf(r: CertRow): CertMeta {
  return {
    id: r.id,
    names: r.names,
    issuer: r.issuer,
    origin: r.origin,
    notBefore: r.not_before,
    notAfter: r.not_after,
    serial: r.serial,
    fingerprint: r.fingerprint,
    updatedAt: r.updated_at,
  };
}

/** "pid 1234 on host db-1" for an owner (hostname:pid:random), as the fs store says it. */
function describeOwner(owner: string): string {
  const [host, pid] = owner.split(':');
  return `pid ${pid} on host ${host}`;
}

/** The URL with the password in it: node-postgres lets the URL's (absent) password override a separate one. */
function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** host:port/db of a URL, never its password. */
export function describeServer(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'the configured URL';
  }
}

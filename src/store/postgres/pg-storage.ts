import { checkCertId, checkStoreKey } from '../fs/keys.js';
import { fencedError } from '../locker.js';
import type { ListedRecord, ReadRecord, RecordKind, Storage, StorageRecord, StorageWriteOptions } from '../storage.js';
import type { PgDatabase } from './pg-database.js';
import { fenceSql } from './pg-locker.js';

/** The physical layout per kind (migrations.ts): a table each, the listable metadata in columns or a jsonb body. */
const TABLES: Record<RecordKind, { table: string; id: string }> = {
  cert: { table: 'certd_certs', id: 'id' },
  pending: { table: 'certd_pending', id: 'id' },
  'dns-record': { table: 'certd_dns_records', id: 'id' },
  blob: { table: 'certd_blobs', id: 'key' },
};
/** The ordering column of the jsonb record kinds, from the record's own field. */
const SORT_COLUMN = { pending: ['requested_at', 'requestedAt'], 'dns-record': ['written_at', 'writtenAt'] } as const;
const META_COLUMNS = 'id, names, issuer, origin, not_before, not_after, serial, fingerprint, updated_at';

interface CertRow {
  id: string;
  names: string[];
  issuer: string;
  origin: string;
  not_before: string;
  not_after: string;
  serial: string;
  fingerprint: string;
  updated_at: string;
  cert_pem: string;
  key_id: string;
  key_sealed: Buffer;
}

/**
 * The postgres backend's storage: one row per record in the table of its kind. Certificates keep
 * their metadata in columns (a listing reads no PEM or key) and their key sealed in key_id +
 * key_sealed; a secret must come sealed (a dump alone never holds a key). A write fenced with
 * locks checks them in its own statement (fenceSql), and a certificate change notifies the other
 * replicas (`certd_certs`) from that same statement, so never before it commits.
 */
export class PgStorage implements Storage {
  readonly where: string;
  readonly #db: PgDatabase;
  readonly #replicaId: string;

  constructor(db: PgDatabase, replicaId: string) {
    this.#db = db;
    this.#replicaId = replicaId;
    this.where = `the PostgreSQL store at ${db.server}`;
  }

  async get(kind: RecordKind, name: string): Promise<ReadRecord | undefined> {
    return (await this.getMany(kind, [name])).get(checkName(kind, name));
  }

  /** One statement for all of them (`= ANY($1)`): what a replica told of many changes at once reads. */
  async getMany(kind: RecordKind, names: readonly string[]): Promise<Map<string, ReadRecord>> {
    const ns = [...new Set(names.map((name) => checkName(kind, name)))];
    const { table, id } = TABLES[kind];
    const where = (n: string) => `store row ${table} ${JSON.stringify(n)}`;
    const found = new Map<string, ReadRecord>();
    if (ns.length === 0) return found;
    // One id alone by `=` (the planner's plain index lookup, the common case); several by ANY.
    const match = ns.length === 1 ? `${id} = $1` : `${id} = ANY($1::text[])`;
    const param = ns.length === 1 ? ns[0] : ns;
    if (kind === 'cert') {
      for (const row of (await this.#db.query<CertRow>(`SELECT * FROM certd_certs WHERE ${match}`, [param])).rows) {
        found.set(row.id, { meta: metaOf(row), body: Buffer.from(row.cert_pem), secret: { keyId: row.key_id, data: row.key_sealed }, where: where(row.id) });
      }
    } else if (kind === 'blob') {
      for (const row of (await this.#db.query<{ key: string; data: Buffer; key_id: string | null }>(`SELECT key, data, key_id FROM certd_blobs WHERE ${match}`, [param])).rows) {
        found.set(row.key, row.key_id === null ? { meta: {}, body: row.data, where: where(row.key) } : { meta: {}, secret: { keyId: row.key_id, data: row.data }, where: where(row.key) });
      }
    } else {
      for (const row of (await this.#db.query<{ id: string; body: Record<string, unknown> }>(`SELECT ${id} AS id, body FROM ${table} WHERE ${match}`, [param])).rows) {
        found.set(row.id, { meta: row.body, where: where(row.id) });
      }
    }
    return found;
  }

  async put(kind: RecordKind, name: string, record: StorageRecord, opts: StorageWriteOptions = {}): Promise<void> {
    const n = checkName(kind, name);
    const what = `${kind} ${n}`;
    const { secret } = record;
    if (secret && secret.keyId === undefined) throw new TypeError(`${what}: the postgres store keeps secrets sealed only (open it with a key file)`);
    let params: unknown[];
    let insert: string;
    if (kind === 'cert') {
      const m = record.meta;
      if (!record.body || !secret) throw new TypeError(`${what}: a certificate needs its PEM and its sealed key`);
      params = [n, m.names, m.issuer, m.origin, m.notBefore, m.notAfter, m.serial, m.fingerprint, m.updatedAt, record.body.toString('utf8'), secret.keyId, secret.data, this.#changed(n)];
      insert = `INSERT INTO certd_certs (id, names, issuer, origin, not_before, not_after, serial, fingerprint, updated_at, cert_pem, key_id, key_sealed)
         SELECT $1::text, $2::text[], $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, $10::text, $11::text, $12::bytea WHERE %OK%
         ON CONFLICT (id) DO UPDATE SET names = EXCLUDED.names, issuer = EXCLUDED.issuer, origin = EXCLUDED.origin, not_before = EXCLUDED.not_before,
           not_after = EXCLUDED.not_after, serial = EXCLUDED.serial, fingerprint = EXCLUDED.fingerprint, updated_at = EXCLUDED.updated_at,
           cert_pem = EXCLUDED.cert_pem, key_id = EXCLUDED.key_id, key_sealed = EXCLUDED.key_sealed
         RETURNING id`;
    } else if (kind === 'blob') {
      params = [n, secret ? secret.data : (record.body ?? Buffer.alloc(0)), secret ? secret.keyId : null];
      insert = `INSERT INTO certd_blobs (key, data, key_id) SELECT $1::text, $2::bytea, $3::text WHERE %OK%
         ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, key_id = EXCLUDED.key_id RETURNING key`;
    } else {
      const [column, field] = SORT_COLUMN[kind];
      const { table } = TABLES[kind];
      params = [n, record.meta[field], JSON.stringify(record.meta)];
      insert = `INSERT INTO ${table} (id, ${column}, body) SELECT $1::text, $2::text, $3::jsonb WHERE %OK%
         ON CONFLICT (id) DO UPDATE SET ${column} = EXCLUDED.${column}, body = EXCLUDED.body RETURNING id`;
    }
    const fence = fenceSql(opts.fences, params, what);
    const notify = kind === 'cert' ? `SELECT pg_notify('certd_certs', $13) FROM saved` : 'SELECT 1 FROM saved';
    const sql = `WITH ${fence ? `${fence.cte}, ` : ''}saved AS (${insert.replace('%OK%', fence?.ok ?? 'true')}) ${notify}`;
    const r = await this.#db.query(sql, params);
    if (r.rows.length === 0) throw fencedError(what, opts.fences![0]!, 'is no longer its holder’s in the database (lease ran out or taken over)');
  }

  async delete(kind: RecordKind, name: string, opts: StorageWriteOptions = {}): Promise<boolean> {
    const n = checkName(kind, name);
    const { table, id } = TABLES[kind];
    const params: unknown[] = [n, this.#changed(n)];
    const fence = fenceSql(opts.fences, params, `${kind} ${n}`);
    const ok = fence?.ok ?? 'true';
    const told = kind === 'cert' ? `, (SELECT pg_notify('certd_certs', $2) FROM gone) AS told` : ', $2::text AS unused';
    const r = await this.#db.query<{ ok: boolean; n: number }>(
      `WITH ${fence ? `${fence.cte}, ` : ''}gone AS (DELETE FROM ${table} WHERE ${id} = $1 AND ${ok} RETURNING ${id})
       SELECT ${ok} AS ok, (SELECT count(*) FROM gone)::int AS n${told}`,
      params,
    );
    const row = r.rows[0]!;
    if (!row.ok) throw fencedError(`${kind} ${n}`, opts.fences![0]!, 'is no longer its holder’s in the database (lease ran out or taken over)');
    return row.n > 0;
  }

  async list(kind: RecordKind): Promise<ListedRecord[]> {
    const { table, id } = TABLES[kind];
    const at = (n: string) => `store row ${table} ${JSON.stringify(n)}`;
    if (kind === 'cert') return (await this.#db.query<CertRow>(`SELECT ${META_COLUMNS} FROM certd_certs ORDER BY id COLLATE "C"`)).rows.map((r) => ({ name: r.id, meta: metaOf(r), where: at(r.id) }));
    if (kind === 'blob') return (await this.#db.query<{ key: string }>('SELECT key FROM certd_blobs ORDER BY key COLLATE "C"')).rows.map((r) => ({ name: r.key, meta: {}, where: at(r.key) }));
    const rows = (await this.#db.query<{ id: string; body: Record<string, unknown> }>(`SELECT ${id} AS id, body FROM ${table}`)).rows;
    return rows.map((r) => ({ name: r.id, meta: r.body, where: at(r.id) }));
  }

  async close(): Promise<void> {
    await this.#db.end();
  }

  #changed(id: string): string {
    return JSON.stringify({ id, by: this.#replicaId });
  }
}

function checkName(kind: RecordKind, name: string): string {
  return kind === 'blob' ? checkStoreKey(name, 'blob key') : checkCertId(name);
}

function metaOf(r: CertRow): Record<string, unknown> {
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

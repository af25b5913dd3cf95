import type { PoolClient } from 'pg';
import { errorKind } from '../../core/errors.js';

/** The database holds a schema newer than this binary knows: an older replica must not write to it. */
export class StoreSchemaTooNewError extends errorKind('CERTD_E_STORE_SCHEMA', 'conflict') {}

/**
 * The schema, as numbered steps applied once each, in order. A step is never edited once released:
 * a change is a new step. Timestamps are ISO-8601 UTC text, as the typed layer writes them (they
 * sort as text and round-trip exactly); secrets are sealed (crypto/secret-box.ts), never clear.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the records of store.ts.
  `CREATE TABLE certd_certs (
     id text PRIMARY KEY,
     names text[] NOT NULL,
     issuer text NOT NULL,
     origin text NOT NULL,
     not_before text NOT NULL,
     not_after text NOT NULL,
     serial text NOT NULL,
     fingerprint text NOT NULL,
     updated_at text NOT NULL,
     cert_pem text NOT NULL,
     key_id text NOT NULL,
     key_sealed bytea NOT NULL
   );
   CREATE INDEX certd_certs_not_after ON certd_certs (not_after);
   CREATE TABLE certd_pending (id text PRIMARY KEY, requested_at text NOT NULL, body jsonb NOT NULL);
   CREATE TABLE certd_dns_records (id text PRIMARY KEY, written_at text NOT NULL, body jsonb NOT NULL);
   CREATE TABLE certd_blobs (key text PRIMARY KEY, data bytea NOT NULL, key_id text);
   CREATE TABLE certd_locks (key text PRIMARY KEY, owner text NOT NULL, token bigint NOT NULL, expires_at timestamptz NOT NULL);
   CREATE SEQUENCE certd_fence;`,
  // 2: the replicas' registry (active-active): each replica's row, heartbeated with the leases it
  // polls; a row whose heartbeat is older than its lease is a replica gone (kept a day, for status).
  `CREATE TABLE certd_replicas (
     id text PRIMARY KEY,
     host text NOT NULL,
     pid integer NOT NULL,
     api text NOT NULL,
     version text NOT NULL,
     up_since timestamptz NOT NULL,
     heartbeat_at timestamptz NOT NULL,
     lease_ms integer NOT NULL,
     stopped_at timestamptz,
     owns jsonb NOT NULL DEFAULT '[]',
     cluster_work bigint
   );`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Any constant: the advisory lock that makes replicas starting at once migrate one after another. */
const MIGRATION_LOCK = 0x63657274; // "cert"

/**
 * Brings the schema to SCHEMA_VERSION in one transaction per start, under a transaction-scoped
 * advisory lock (a second replica waits, then finds nothing left to do). Refuses a newer schema.
 * Returns the version found before migrating.
 */
export async function migrate(client: PoolClient): Promise<number> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS certd_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const found = Number((await client.query<{ v: number | null }>('SELECT max(version) AS v FROM certd_schema')).rows[0]?.v ?? 0);
    if (found > SCHEMA_VERSION) {
      throw new StoreSchemaTooNewError(
        `the database's store schema is version ${found}, newer than this haproxy-certd knows (${SCHEMA_VERSION}): run a haproxy-certd that knows schema ${found} (the one the other replicas run)`,
      );
    }
    for (let v = found + 1; v <= SCHEMA_VERSION; v++) {
      await client.query(MIGRATIONS[v - 1]!);
      await client.query('INSERT INTO certd_schema (version) VALUES ($1)', [v]);
    }
    await client.query('COMMIT');
    return found;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

import pg from 'pg';
import { errorKind } from '../../core/errors.js';
import { StoreSchemaTooNewError } from './migrations.js';

/** PostgreSQL cannot be reached or stopped mid-call: nothing was changed unless said otherwise. */
export class StoreUnavailableError extends errorKind('CERTD_E_STORE_UNAVAILABLE', 'unavailable') {}
/** The server answered, and its answer means the store config is wrong (login, database, TLS). */
export class StoreConfigError extends errorKind('CERTD_E_STORE_CONFIG', 'input') {}

export interface PgConnectionOptions {
  /** postgres://user[:password]@host:port/db; the password may also come from `password`. */
  url: string;
  password?: string;
  /** TLS to the server, as node-postgres takes it (ca, rejectUnauthorized…); see tlsFor(). */
  ssl?: pg.ConnectionConfig['ssl'];
  /** Pool size per replica (default 10). */
  maxConnections?: number;
  /** Bound a connect and a statement (default 10 s each): a hung server fails calls, it does not hang them. */
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
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

/** SQLSTATE classes that mean "the server or the connection went away", not a bad statement. */
const UNAVAILABLE_SQLSTATE = /^(08|57P0|53)/;

/**
 * The connection pool of the postgres backend, shared by its storage and its locker: every
 * statement goes through query(), which turns an outage into StoreUnavailableError naming the
 * server (never the password) and says it once when it starts and once when it ends.
 */
export class PgDatabase {
  readonly pool: pg.Pool;
  readonly connection: pg.ClientConfig;
  /** host:port/db, for messages. */
  readonly server: string;
  readonly onWarning: (err: Error) => void;
  readonly #onRecovered: (message: string) => void;
  /** Called at each recovery, beside onRecovered (the store's listeners reconnect at once). */
  readonly recovered = new Set<() => void>();
  #down: { since: Date; error: string } | undefined;
  #lastError: { at: Date; error: string } | undefined;
  #roundTrip: { ms: number; at: Date } | undefined;

  constructor(o: PgConnectionOptions) {
    this.connection = {
      connectionString: withPassword(o.url, o.password),
      ...(o.ssl !== undefined ? { ssl: o.ssl } : {}),
      connectionTimeoutMillis: o.connectTimeoutMs ?? 10_000,
      application_name: 'haproxy-certd',
    };
    this.pool = new pg.Pool({ ...this.connection, max: o.maxConnections ?? 10, query_timeout: o.queryTimeoutMs ?? 10_000, idleTimeoutMillis: 30_000 });
    this.server = describeServer(o.url);
    this.onWarning = o.onWarning ?? ((err) => process.emitWarning(err));
    this.#onRecovered = o.onRecovered ?? (() => undefined);
    // An idle connection the server closed (a restart) must not crash the process: the next call reconnects.
    this.pool.on('error', (err) => this.onWarning(new StoreUnavailableError(`PostgreSQL at ${this.server} closed a connection: ${err.message}`, { cause: err })));
  }

  /** Every statement goes through here: an outage is said once when it starts and once when it ends. */
  readonly query = async <R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> => {
    let result: pg.QueryResult<R>;
    const started = performance.now();
    try {
      result = await this.pool.query<R>(sql, params);
    } catch (err) {
      const wrapped = this.wrap(err);
      if (wrapped instanceof StoreUnavailableError) this.#lastError = { at: new Date(), error: wrapped.message };
      if (wrapped instanceof StoreUnavailableError && !this.#down) {
        this.#down = { since: new Date(), error: wrapped.message };
        this.onWarning(wrapped);
      }
      throw wrapped;
    }
    this.#roundTrip = { ms: Math.round((performance.now() - started) * 10) / 10, at: new Date() };
    if (this.#down) {
      const since = this.#down.since;
      this.#down = undefined;
      for (const f of this.recovered) f();
      this.#onRecovered(`PostgreSQL at ${this.server} answers again (it did not from ${since.toISOString()}, ${Math.round((Date.now() - since.getTime()) / 1000)} s): new work goes on`);
    }
    return result;
  };

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

  /** A connection-level failure becomes StoreUnavailableError naming the server; the rest pass through. */
  wrap(err: unknown): unknown {
    const e = err as { code?: string; message?: string };
    const connection = typeof e.code === 'string' && (UNAVAILABLE_SQLSTATE.test(e.code) || /^E[A-Z]+$/.test(e.code));
    const lost = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection timeout/i.test(e.message ?? '');
    if (!connection && !lost) return err;
    return new StoreUnavailableError(`PostgreSQL at ${this.server} is not answering (${e.code ?? e.message}): HAProxy keeps serving what it has; new work waits until the database is back`, {
      cause: err,
    });
  }

  /** The database is the operator's to fix when its answer says so (exit 2); else it is away (exit 1). */
  startError(err: unknown): unknown {
    const e = err as { code?: string; message?: string };
    const config = (why: string) => new StoreConfigError(`PostgreSQL at ${this.server}: ${why}`, { cause: err });
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
    return this.wrap(err);
  }

  async end(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}

/** The settings `store.sslmode` names, for node-postgres (`ca` is the PEM text of `store.ca`). */
export function tlsFor(mode: 'disable' | 'require' | 'verify-full', ca?: string): pg.ConnectionConfig['ssl'] {
  if (mode === 'disable') return false;
  if (mode === 'require') return { rejectUnauthorized: false };
  return ca === undefined ? { rejectUnauthorized: true } : { rejectUnauthorized: true, ca };
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

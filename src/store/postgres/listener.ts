import pg from 'pg';

/** The channels replicas talk on: certificate changes (sent by the store itself), instance announcements, managed maps. */
export const CHANNELS = ['certd_certs', 'certd_served', 'certd_maps'] as const;
export type Channel = (typeof CHANNELS)[number];

/** PostgreSQL's limit on a NOTIFY payload is 8000 bytes: larger messages are split by their sender. */
export const MAX_PAYLOAD_BYTES = 7_900;

export interface ListenerOptions {
  connection: pg.ClientConfig;
  /** Messages from other replicas (this one's own are dropped by `self`). */
  onMessage: (channel: Channel, payload: unknown) => void;
  /**
   * Told after every (re)connect but the first: notifications sent while the connection was away
   * are lost, so the caller compares its state with the store instead.
   */
  onResync: () => void;
  onWarning: (err: Error) => void;
  /** This replica's id: payloads carrying `by: self` are its own. */
  self: string;
  onClosed?: () => void;
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;

/**
 * One connection that LISTENs on CHANNELS for as long as it runs, reconnecting with backoff when
 * the server goes away (a restart, a failover). A dedicated client, not a pooled one: a LISTEN
 * lives with its connection.
 */
export class PgListener {
  /** The connection in use or being made; a lost one that is not this any more is old news. */
  #client: pg.Client | undefined;
  #closed = false;
  #connectedOnce = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(private readonly o: ListenerOptions) {}

  /** Resolves once listening, or rejects with the first connection's error (it keeps retrying). */
  start(): Promise<void> {
    return this.#connect(RETRY_MIN_MS);
  }

  /**
   * The database answers again (another connection just got through): a reconnect waiting out its
   * backoff (up to RETRY_MAX_MS) is made now, so notifications resume with the database, not later.
   */
  kick(): void {
    if (this.#closed || this.#client !== undefined || this.#retry === undefined) return;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    void this.#connect(RETRY_MIN_MS).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.o.onClosed?.();
    clearTimeout(this.#retry);
    await this.#client?.end().catch(() => undefined);
  }

  async #connect(delay: number): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client(this.o.connection);
    this.#client = client;
    let retryIn = delay;
    client.on('error', (err) => this.#lost(client, err, retryIn));
    client.on('end', () => this.#lost(client, new Error('connection ended'), retryIn));
    client.on('notification', (n) => this.#message(n));
    try {
      await client.connect();
      for (const channel of CHANNELS) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      this.#lost(client, err as Error, delay);
      throw err;
    }
    retryIn = RETRY_MIN_MS;
    if (this.#connectedOnce) this.o.onResync();
    this.#connectedOnce = true;
  }

  #lost(client: pg.Client, err: Error, delay: number): void {
    if (this.#closed || this.#client !== client) return;
    this.#client = undefined;
    client.removeAllListeners();
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    this.o.onWarning(new Error(`the store's change notifications stopped (${err.message}); reconnecting in ${delay} ms, then comparing with the store`));
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#connect(Math.min(delay * 2, RETRY_MAX_MS)).catch(() => undefined);
    }, delay);
    this.#retry.unref();
  }

  #message(n: pg.Notification): void {
    if (!(CHANNELS as readonly string[]).includes(n.channel) || n.payload === undefined) return;
    let payload: unknown;
    try {
      payload = JSON.parse(n.payload);
    } catch {
      this.o.onWarning(new Error(`a notification on ${n.channel} is not JSON: ignored`));
      return;
    }
    if ((payload as { by?: unknown }).by === this.o.self) return;
    this.o.onMessage(n.channel as Channel, payload);
  }
}

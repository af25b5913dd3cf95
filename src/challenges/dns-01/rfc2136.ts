import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, InvalidNameError } from '../../core/errors.js';
import { parseHostPort } from '../../config/fields.js';
import { DnsTimeoutError, DnsTsigError, DnsUpdateError, DnsUpdateRefusedError } from './errors.js';
import { checkTxtValue, encodeUpdate, type TxtChange } from './messages.js';
import { dnsName, isInZone } from './names.js';
import { exchange, type DnsEndpoint, type ExchangeOptions } from './transport.js';
import { queryTxtAt } from './txt-query.js';
import { signRequest, tsigKeyFromConfig, verifyResponse, type TsigAlgorithm, type TsigKey } from './tsig.js';
import { rcodeNameOf, readRcode } from './wire.js';

/** `issuers.*.dns.rfc2136` from certd.yaml, plus the network bounds. */
export interface Rfc2136Options {
  /** `host:port`; the port defaults to 53. */
  server: string;
  /** The zone the records live in, e.g. example.com or a delegated _acme-challenge.example.com. */
  zone: string;
  tsig: { name: string; algorithm: TsigAlgorithm; secret: string };
  /** One UDP attempt's wait; default 2000 ms. */
  timeoutMs?: number;
  /** UDP sends per exchange; default 3. */
  attempts?: number;
}

export interface WaitForTxtOptions {
  /** Give up after this long; default 60 s. */
  timeoutMs?: number;
  /** Between queries; default 500 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
}

/**
 * Adds and deletes TXT records on an authoritative server with RFC 2136 UPDATE messages signed
 * with TSIG, and watches the server until it serves them. Options are checked here (ConfigError),
 * names on every call (InvalidNameError) before anything is sent. Every method is safe to call
 * concurrently; updates are idempotent (adding a present record or deleting a missing one is a
 * no-op for the server), which is why a retried UDP send is harmless.
 */
export class Rfc2136Client {
  readonly zone: string;
  readonly #server: DnsEndpoint;
  readonly #key: TsigKey;
  readonly #net: Omit<ExchangeOptions, 'signal'>;

  constructor(opts: Rfc2136Options) {
    const server = parseHostPort(opts.server, 53);
    if (server === undefined) {
      throw new ConfigError(`rfc2136.server ${JSON.stringify(opts.server)} is not host:port; write it like 10.0.0.53:53 or ns1.example.com`);
    }
    this.#server = server;
    try {
      this.zone = dnsName(opts.zone, 'rfc2136.zone');
    } catch (err) {
      throw new ConfigError((err as Error).message, { cause: err });
    }
    this.#key = tsigKeyFromConfig(opts.tsig);
    this.#net = { timeoutMs: opts.timeoutMs ?? 2_000, attempts: opts.attempts ?? 3 };
    if (!(this.#net.timeoutMs > 0) || !Number.isInteger(this.#net.attempts) || this.#net.attempts < 1) {
      throw new ConfigError('rfc2136 timeoutMs must be positive and attempts a whole number of at least 1');
    }
  }

  /** Adds one TXT value at `fqdn` (other values at that name stay). */
  async addTxt(fqdn: string, value: string, ttl = 60, signal?: AbortSignal): Promise<void> {
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 2 ** 31 - 1) throw new DnsUpdateError(`TXT ttl ${ttl} is not a whole number of seconds`);
    await this.#update({ op: 'add', name: this.#name(fqdn), value: checkTxtValue(value), ttl }, signal);
  }

  /** Deletes exactly this TXT value at `fqdn`; other values stay. Deleting a missing one succeeds. */
  async deleteTxt(fqdn: string, value: string, signal?: AbortSignal): Promise<void> {
    await this.#update({ op: 'delete', name: this.#name(fqdn), value: checkTxtValue(value), ttl: 0 }, signal);
  }

  /** The TXT values the server itself serves at `fqdn` now (no recursion). Empty on NXDOMAIN. */
  queryTxt(fqdn: string, signal?: AbortSignal): Promise<string[]> {
    return queryTxtAt(this.#server, fqdn, { ...this.#net, signal }, `it must answer queries for zone ${this.zone} from this host`);
  }

  /**
   * Queries the server until it serves `value` at `fqdn`, every `intervalMs`, for at most
   * `timeoutMs` (plus the one query in flight, itself bounded by timeoutMs × attempts of the
   * client). A SERVFAIL or a lost query is retried within the bound; other refusals fail at once.
   * Throws DnsTimeoutError when the bound passes.
   */
  async waitForTxt(fqdn: string, value: string, opts: WaitForTxtOptions = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const intervalMs = opts.intervalMs ?? 500;
    const deadline = Date.now() + timeoutMs;
    const name = dnsName(fqdn, 'TXT record name');
    let last = 'no answer yet';
    for (;;) {
      opts.signal?.throwIfAborted();
      try {
        const values = await this.queryTxt(name, opts.signal);
        if (values.includes(value)) return;
        last = values.length === 0 ? 'no TXT record' : `TXT ${values.map((v) => JSON.stringify(v)).join(', ')}`;
      } catch (err) {
        const transient = err instanceof DnsTimeoutError || (err instanceof DnsUpdateError && err.rcode === 'SERVFAIL');
        if (!transient) throw err;
        last = (err as Error).message;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DnsTimeoutError(`the DNS server did not serve the TXT value at ${name} within ${timeoutMs} ms (last: ${last})`);
      }
      try {
        await sleep(Math.min(intervalMs, left), undefined, { signal: opts.signal });
      } catch (err) {
        // Reject with the caller's reason, as every other abort here does, not Node's AbortError.
        opts.signal?.throwIfAborted();
        throw err;
      }
    }
  }

  #name(fqdn: string): string {
    const name = dnsName(fqdn, 'TXT record name');
    if (!isInZone(name, this.zone)) {
      throw new InvalidNameError(
        `${name} is not inside zone ${this.zone}: set rfc2136.zone to a zone that contains it (a delegated _acme-challenge zone only holds its own name)`,
      );
    }
    return name;
  }

  async #update(change: TxtChange, signal: AbortSignal | undefined): Promise<void> {
    const { message, mac } = signRequest(encodeUpdate(randomInt(0x10000), this.zone, [change]), this.#key);
    const reply = await exchange(this.#server, message, { ...this.#net, signal });
    const signed = verifyResponse(reply, this.#key, mac);
    const rcode = readRcode(reply);
    const rcodeName = rcodeNameOf(rcode);
    const what = `${change.op === 'add' ? 'adding' : 'deleting'} TXT at ${change.name} in zone ${this.zone}`;
    if (rcode === 0) {
      // An unsigned NOERROR could come from anyone on the path; only a verified one means done.
      if (signed === 'unsigned') throw new DnsTsigError('UNSIGNED', `the DNS server's reply to ${what} was not signed: check the server knows TSIG key "${this.#key.name}"`);
      return;
    }
    switch (rcodeName) {
      case 'REFUSED':
        throw new DnsUpdateRefusedError(
          rcodeName,
          `the DNS server REFUSED ${what}: check its allow-update/update-policy lets key "${this.#key.name}" change TXT records at that name`,
        );
      case 'NOTAUTH':
        throw new DnsUpdateRefusedError(
          rcodeName,
          `the DNS server is not authoritative for zone ${this.zone} (NOTAUTH) when ${what}: check rfc2136.zone (the zone apex, e.g. a delegated _acme-challenge zone) and rfc2136.server (the primary)`,
        );
      case 'NOTZONE':
        throw new DnsUpdateRefusedError(rcodeName, `the DNS server says ${change.name} is not in zone ${this.zone} (NOTZONE): check rfc2136.zone`);
      default:
        throw new DnsUpdateError(`the DNS server answered ${rcodeName} to ${what}`, { rcode: rcodeName });
    }
  }
}

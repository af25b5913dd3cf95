import { randomInt } from 'node:crypto';
import { getServers } from 'node:dns';
import { isIP } from 'node:net';
import dnsPacket from 'dns-packet';
import { parseHostPort } from '../../config/fields.js';
import { ConfigError } from '../../core/errors.js';
import { DnsUpdateError } from './errors.js';
import { dnsName } from './names.js';
import { exchange, type DnsEndpoint, type ExchangeOptions } from './transport.js';
import { rcodeNameOf, readRcode } from './wire.js';

type Net = Omit<ExchangeOptions, 'signal'>;

/**
 * Recursive lookups through one resolver (`dns.resolver`, else the system's first nameserver):
 * the CNAMEs of challenge names and the NS of zones. Each query asks one type and reads only
 * answers for the name asked, so a chain is followed hop by hop by the caller. Safe to call
 * concurrently.
 */
export class DnsLookup {
  readonly server: DnsEndpoint;
  readonly #net: Net;

  /** Throws ConfigError when `resolver` is not host:port, or there is none and the system has none. */
  constructor(resolver?: string, net: Net = { timeoutMs: 2_000, attempts: 2 }) {
    const text = resolver ?? getServers()[0];
    const server = text === undefined ? undefined : isIP(text) ? { host: text, port: 53 } : parseHostPort(text, 53);
    if (server === undefined) {
      throw new ConfigError(
        resolver === undefined
          ? 'dns.resolver is not set and the system has no nameserver: set dns.resolver to host:port'
          : `dns.resolver ${JSON.stringify(resolver)} is not host:port`,
      );
    }
    this.server = server;
    this.#net = net;
  }

  /** Where lookups go, as `host:port`. */
  get where(): string {
    return `${this.server.host}:${this.server.port}`;
  }

  /** The CNAME target of `name`, or undefined when it has none (or does not exist). */
  async cname(name: string, signal?: AbortSignal): Promise<string | undefined> {
    const answers = await this.#query(name, 'CNAME', signal);
    const hit = answers.find((a) => a.type === 'CNAME');
    return hit ? dnsName(dataOf(hit), `CNAME target of ${name}`) : undefined;
  }

  /** The NS host names of `zone` (empty when it has none). */
  async ns(zone: string, signal?: AbortSignal): Promise<string[]> {
    const answers = await this.#query(zone, 'NS', signal);
    return answers.filter((a) => a.type === 'NS').map((a) => dnsName(dataOf(a), `NS of ${zone}`));
  }

  /** The IPv4 addresses of `host` (an IP address is its own). */
  async addresses(host: string, signal?: AbortSignal): Promise<string[]> {
    if (isIP(host)) return [host];
    const answers = await this.#query(host, 'A', signal);
    return answers.filter((a) => a.type === 'A').map(dataOf);
  }

  async #query(input: string, type: 'CNAME' | 'NS' | 'A', signal: AbortSignal | undefined): Promise<dnsPacket.Answer[]> {
    const name = dnsName(input, `${type} lookup name`);
    const query = dnsPacket.encode({
      type: 'query',
      id: randomInt(0x10000),
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type, name, class: 'IN' }],
    });
    const reply = await exchange(this.server, query, { ...this.#net, signal });
    const rcode = readRcode(reply);
    if (rcode === 3) return [];
    if (rcode !== 0) {
      throw new DnsUpdateError(`the resolver ${this.where} answered ${rcodeNameOf(rcode)} to ${type} ${name}: check dns.resolver`, {
        rcode: rcodeNameOf(rcode),
      });
    }
    let decoded: dnsPacket.DecodedPacket;
    try {
      decoded = dnsPacket.decode(reply);
    } catch (err) {
      throw new DnsUpdateError(`malformed reply from the resolver ${this.where} to ${type} ${name}`, { cause: err });
    }
    return (decoded.answers ?? []).filter((a) => a.name.toLowerCase().replace(/\.$/, '') === name);
  }
}

/** The text of a CNAME, NS or A answer's data. */
function dataOf(answer: dnsPacket.Answer): string {
  return 'data' in answer ? String(answer.data) : '';
}

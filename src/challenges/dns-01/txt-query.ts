import { randomInt } from 'node:crypto';
import { DnsUpdateError } from './errors.js';
import { encodeTxtQuery, txtValuesIn } from './messages.js';
import { dnsName } from './names.js';
import { exchange, type DnsEndpoint, type ExchangeOptions } from './transport.js';
import { rcodeNameOf, readRcode } from './wire.js';

/**
 * The TXT values `server` itself serves at `fqdn` now (no recursion asked). Empty on NXDOMAIN.
 * Any other rcode throws DnsUpdateError with the rcode; `hint` says what to check. Safe to call
 * concurrently.
 */
export async function queryTxtAt(server: DnsEndpoint, fqdn: string, net: ExchangeOptions, hint: string): Promise<string[]> {
  const name = dnsName(fqdn, 'TXT record name');
  const reply = await exchange(server, encodeTxtQuery(randomInt(0x10000), name), net);
  const rcode = readRcode(reply);
  if (rcode === 0 || rcode === 3) return txtValuesIn(reply, name);
  const rcodeName = rcodeNameOf(rcode);
  throw new DnsUpdateError(`the DNS server answered ${rcodeName} to a TXT query for ${name}: ${hint}`, { rcode: rcodeName });
}

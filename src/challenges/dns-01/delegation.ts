import { DnsCnameError } from './errors.js';
import type { DnsLookup } from './lookup.js';
import { dnsName } from './names.js';

/** CNAME hops followed from `_acme-challenge.<name>`; acme-dns setups use one, a longer chain is a mistake. */
export const MAX_CNAME_HOPS = 8;

/**
 * Follows the CNAMEs of a challenge name through the resolver: returns the chain from `fqdn` to
 * the name the TXT record is written at (just `[fqdn]` without a CNAME). A loop or more than
 * `maxHops` hops throws DnsCnameError naming the chain. Safe to call concurrently.
 */
export async function followCnames(fqdn: string, lookup: DnsLookup, signal?: AbortSignal, maxHops = MAX_CNAME_HOPS): Promise<string[]> {
  const chain = [dnsName(fqdn, 'challenge name')];
  for (;;) {
    const next = await lookup.cname(chain.at(-1)!, signal);
    if (next === undefined) return chain;
    if (chain.includes(next)) {
      throw new DnsCnameError(`the CNAMEs of ${chain[0]} loop (${[...chain, next].join(' → ')}): fix them so the chain ends at a name in a zone of a solver`);
    }
    chain.push(next);
    if (chain.length - 1 > maxHops) {
      throw new DnsCnameError(
        `the CNAME chain of ${chain[0]} is longer than ${maxHops} hops (${chain.join(' → ')} …): point _acme-challenge straight at the delegated name`,
      );
    }
  }
}

import { X509Certificate } from 'node:crypto';
import { pemBlocks } from '../../core/bundle.js';

/**
 * The targets of `Link: <url>; rel="…"` headers with the given relation, resolved against the
 * reply's URL. Takes every Link header value (a value may itself list several links). Pure.
 */
export function linkTargets(values: readonly string[], rel: string, baseUrl: string): string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const m of value.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
      const rels = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(m[2]!);
      const relValue = rels?.[1] ?? rels?.[2];
      if (relValue?.split(/\s+/).includes(rel)) out.push(new URL(m[1]!, baseUrl).toString());
    }
  }
  return out;
}

/** Common names of the issuers of every certificate in a PEM chain. Pure. */
function issuerCommonNames(chainPem: string): string[] {
  return pemBlocks(chainPem)
    .filter((b) => b.type === 'CERTIFICATE')
    .map((b) => /(?:^|\n)CN=([^\n]*)/.exec(new X509Certificate(b.pem).issuer)?.[1])
    .filter((cn): cn is string => cn !== undefined);
}

/**
 * Picks the chain in which some certificate was issued by `preferred` (a common name, e.g.
 * "ISRG Root X1"), the rule certbot and lego follow, so a chain matches whether or not it
 * includes the root itself. The first chain is the CA's default; it wins when none matches.
 * Pure.
 */
export function choosePreferredChain(chains: readonly string[], preferred: string | undefined): string {
  if (preferred !== undefined) {
    const match = chains.find((chain) => issuerCommonNames(chain).includes(preferred));
    if (match !== undefined) return match;
  }
  return chains[0]!;
}

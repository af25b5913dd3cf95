import { X509Certificate, createPrivateKey, createHash, type KeyObject } from 'node:crypto';
import { CertExpiredError, CertIsCaError, CertNotYetValidError, InvalidPemError, KeyMismatchError } from './errors.js';
import { checkNameCount } from './names.js';

/** A certificate chain with its key, as stored and as deployed. */
export interface CertBundle {
  /** Leaf first, then intermediates, PEM. */
  certPem: string;
  /** PKCS#8 PEM. Never logged. */
  keyPem: string;
}

/** What we know about a bundle without looking at the key again. */
export interface CertFacts {
  names: string[];
  notBefore: string;
  notAfter: string;
  serial: string;
  /** SHA-256 of the leaf's DER, hex. */
  fingerprint: string;
  issuerDn: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?\r?\n-----END \1-----/g;

/** Splits PEM text into blocks by type; text around blocks is ignored. */
export function pemBlocks(text: string): { type: string; pem: string }[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ type: m[1]!, pem: `${m[0].replace(/\r\n/g, '\n')}\n` }));
}

/** Clock skew allowed for a leaf's notBefore: CAs backdate a little, clocks drift a little. */
const NOT_BEFORE_SKEW_MS = 5 * 60_000;

export interface ParseOptions {
  /** Reject a leaf whose notAfter has passed (default true). */
  rejectExpired?: boolean;
  /**
   * Reject what should not be served as a leaf (default true): a CA certificate, more than
   * MAX_NAMES_PER_CERT names, a notBefore still ahead of the clock. Off for `wait`, which only asks
   * whether HAProxy can start.
   */
  checkLeaf?: boolean;
  now?: Date;
}

/**
 * Parses and checks a bundle: at least one certificate, exactly one private key matching the leaf,
 * the leaf valid now (not expired, not ahead of the clock), not a CA certificate, with at most
 * MAX_NAMES_PER_CERT names. Accepts a combined PEM (cert + key in one text) when keyPem is empty.
 * Safe to call concurrently (pure).
 */
export function parseBundle(certText: string, keyText = '', opts: ParseOptions = {}): CertBundle & CertFacts {
  const blocks = pemBlocks(`${certText}\n${keyText}`);
  const certs = blocks.filter((b) => b.type === 'CERTIFICATE');
  const keys = blocks.filter((b) => /PRIVATE KEY$/.test(b.type));
  if (certs.length === 0) throw new InvalidPemError('no CERTIFICATE block found: give a PEM certificate (fullchain.pem)');
  if (keys.length === 0) throw new InvalidPemError('no PRIVATE KEY block found: give the key (privkey.pem) or a combined PEM');
  if (keys.length > 1) throw new InvalidPemError(`found ${keys.length} private keys; give exactly one`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certs[0]!.pem);
    for (const c of certs.slice(1)) new X509Certificate(c.pem);
  } catch (cause) {
    throw new InvalidPemError('a CERTIFICATE block does not parse as X.509 (truncated or corrupted PEM?)', { cause });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keys[0]!.pem);
  } catch (cause) {
    throw new InvalidPemError('the PRIVATE KEY block does not parse (encrypted keys are not supported)', { cause });
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new KeyMismatchError('the private key does not belong to the first certificate (check the cert/key pair)');
  }
  const checkLeaf = opts.checkLeaf ?? true;
  if (checkLeaf && leaf.ca) {
    throw new CertIsCaError(
      'the first certificate is a CA certificate (basicConstraints CA:TRUE), not a server certificate: give the leaf first ' +
        '(for a self-signed one made with `openssl req -x509`, add `-addext basicConstraints=critical,CA:FALSE`)',
    );
  }
  const facts = certFacts(leaf);
  if (checkLeaf) checkNameCount(facts.names, 'the certificate');
  const now = opts.now ?? new Date();
  const shown = facts.names.slice(0, 3).join(', ') + (facts.names.length > 3 ? ` and ${facts.names.length - 3} more` : '');
  if ((opts.rejectExpired ?? true) && new Date(facts.notAfter) <= now) {
    throw new CertExpiredError(`the certificate for ${shown} expired at ${facts.notAfter}`);
  }
  if (checkLeaf && Date.parse(facts.notBefore) > now.getTime() + NOT_BEFORE_SKEW_MS) {
    throw new CertNotYetValidError(`the certificate for ${shown} is not valid before ${facts.notBefore}: check the clock of the machine that made it`);
  }
  return {
    certPem: certs.map((c) => c.pem).join(''),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string,
    ...facts,
  };
}

/** Facts read from a leaf certificate. */
export function certFacts(leaf: X509Certificate | string): CertFacts {
  const x = typeof leaf === 'string' ? new X509Certificate(leaf) : leaf;
  return {
    names: sanNames(x),
    notBefore: new Date(x.validFrom).toISOString(),
    notAfter: new Date(x.validTo).toISOString(),
    serial: x.serialNumber.toLowerCase(),
    fingerprint: createHash('sha256').update(x.raw).digest('hex'),
    issuerDn: x.issuer,
  };
}

function sanNames(x: X509Certificate): string[] {
  const san = x.subjectAltName;
  const names = (san ?? '')
    .split(/,\s*/)
    .map((part) => /^(?:DNS|IP Address):(.+)$/.exec(part)?.[1]?.toLowerCase())
    .filter((n): n is string => Boolean(n));
  if (names.length > 0) return names;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

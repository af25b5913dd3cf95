import { createHash } from 'node:crypto';
import type { CertBundle } from '../../core/bundle.js';
import { InvalidPemError } from '../../core/errors.js';
import { certSerialHex } from '../../crypto/der.js';
import { firstPemDer } from '../../crypto/pem.js';
import { certDirLayout } from '../cert-dir.js';

/** One certificate as HAProxy should serve it: file, PEM, crt-list line parts. */
export interface DeployEntry {
  /** Certificate id (see certId). `_default` is the fallback certificate, always the first line. */
  id: string;
  /** Absolute path of the PEM in certDir; also the certificate's name in HAProxy's runtime API. */
  pemPath: string;
  /** Chain + private key, as HAProxy reads it. */
  pem: string;
  /** Leaf SHA-1, uppercase hex: what `show ssl cert <path>` prints as "SHA1 FingerPrint". */
  sha1: string;
  /** Leaf serial, normalized (crypto/der.ts): what identifies it when that reply is cut short. */
  serial: string;
  /** SNI filters of the crt-list line (empty for the default certificate). */
  sni: string[];
  /** crt-list options, already validated words (e.g. "alpn h2,http/1.1"). */
  options: string[];
  /** In-memory CA for client certificates (mTLS); `path` is also its runtime name. */
  caFile?: { path: string; pem: string };
}

export const DEFAULT_CERT_ID = '_default';

export interface EntryInput {
  id: string;
  bundle: CertBundle;
  sni: string[];
  options?: string[];
  caFilePem?: string;
}

/**
 * Builds a DeployEntry whose paths live in certDir. The bundle was checked when it was issued or
 * imported: its leaf is hashed, not parsed again (an on-demand handshake waits for this). Pure.
 */
export function makeDeployEntry(certDir: string, input: EntryInput): DeployEntry {
  const leafDer = firstPemDer(input.bundle.certPem, 'CERTIFICATE');
  if (!leafDer) throw new InvalidPemError(`certificate ${input.id}: no CERTIFICATE block to deploy`);
  const caPath = clientCaPath(certDir, input.id);
  const options = [...(input.options ?? [])];
  if (input.caFilePem && !options.some((o) => o.startsWith('ca-file '))) options.push(`ca-file ${caPath}`);
  return {
    id: input.id,
    pemPath: certDirLayout(certDir).pem(input.id),
    pem: `${input.bundle.certPem.trimEnd()}\n${input.bundle.keyPem.trimEnd()}\n`,
    sha1: createHash('sha1').update(leafDer).digest('hex').toUpperCase(),
    serial: certSerialHex(leafDer),
    sni: input.sni,
    options,
    caFile: input.caFilePem ? { path: caPath, pem: input.caFilePem } : undefined,
  };
}

/** Where a certificate's client CA (mTLS) is written; also its ca-file name in HAProxy. */
export function clientCaPath(certDir: string, id: string): string {
  return certDirLayout(certDir).clientCa(id);
}

/** The crt-list line for an entry, as written in the file and sent with `add ssl crt-list`. */
export function crtListLine(e: DeployEntry): string {
  const opts = e.options.length > 0 ? ` [${e.options.join(' ')}]` : '';
  const sni = e.sni.length > 0 ? ` ${e.sni.join(' ')}` : '';
  return `${e.pemPath}${opts}${sni}`;
}

/** True when two entries would produce different crt-list lines. */
export function sameListLine(a: DeployEntry, b: DeployEntry): boolean {
  return crtListLine(a) === crtListLine(b);
}

import { createHash } from 'node:crypto';
import type { CertBundle } from '../../core/bundle.js';
import { InvalidPemError } from '../../core/errors.js';
import { certSerialHex } from '../../crypto/der.js';
import { firstPemDer } from '../../crypto/pem.js';
import { certDirLayout } from '../cert-dir.js';
import { formatCrtListLine, type CertTlsOptions, type CrtListLineParts, type CrtListOptions } from '../crtlist/line.js';

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
  /** crt-list options; `caFile` names the client CA below when there is one. */
  options: CrtListOptions;
  /** In-memory CA for client certificates (mTLS); `path` is also its runtime name. */
  caFile?: { path: string; pem: string };
}

/**
 * What the deployer keeps of an entry: everything but the PEM (chain + key, ~3 KB). Once the PEM is
 * on disk it is read back from `pemPath` when a push needs it (a restarted instance, a drift
 * repair), so 100,000 certificates do not hold 300 MB of keys in the JS heap.
 */
export type CertEntry = Omit<DeployEntry, 'pem'>;

/** A copy of `e` without its PEM. */
export function withoutPem(e: DeployEntry): CertEntry {
  const { pem: _pem, ...rest } = e;
  return rest;
}

export const DEFAULT_CERT_ID = '_default';

/** The options of an entry that has none, shared (and frozen): one object, not one per certificate. */
const NO_OPTIONS: CrtListOptions = Object.freeze({});

export interface EntryInput {
  id: string;
  bundle: CertBundle;
  sni: string[];
  options?: CertTlsOptions;
  /** Client CA (mTLS): loaded in memory under clientCaPath, which the line's `ca-file` names. */
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
  const options: CrtListOptions = input.caFilePem ? { ...input.options, caFile: caPath } : input.options && Object.keys(input.options).length > 0 ? { ...input.options } : NO_OPTIONS;
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

/** Where a certificate's client CA (mTLS) is written; also its ca-file name in HAProxy, so a restart reads the same name from disk. */
export function clientCaPath(certDir: string, id: string): string {
  return certDirLayout(certDir).clientCa(id);
}

/** An entry's crt-list line as the runtime client takes it (it renders it with formatCrtListLine). */
export function crtListLineParts(e: CertEntry): CrtListLineParts {
  return { path: e.pemPath, options: e.options, sni: e.sni };
}

/*
 * Rendered lines by entry. Entries are never changed once made (a new version is a new object), and
 * lines are compared often (serves() for every certificate in status, each upsert, each crt-list
 * write): rendering checks every word and name (~20 µs a line), so each entry is rendered once.
 */
const lines = new WeakMap<CertEntry, string>();

/** The crt-list line for an entry, as written in the file; the runtime client sends the same. */
export function crtListLine(e: CertEntry): string {
  let line = lines.get(e);
  if (line === undefined) lines.set(e, (line = formatCrtListLine(crtListLineParts(e))));
  return line;
}

/** True when two entries would produce different crt-list lines. */
export function sameListLine(a: CertEntry, b: CertEntry): boolean {
  return crtListLine(a) === crtListLine(b);
}

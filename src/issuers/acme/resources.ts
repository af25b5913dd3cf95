import { AcmeProblemError, type AcmeProblem } from './problems.js';

/*
 * The ACME resources we read (RFC 8555 §7.1), with the checks that keep a CA's odd reply from
 * surfacing later as a TypeError deep in the issuer. Only fields we act on are checked.
 */

export interface AcmeDirectory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert: string;
  keyChange?: string;
  /** RFC 9773: present when the CA offers renewal information. */
  renewalInfo?: string;
  meta?: {
    termsOfService?: string;
    website?: string;
    externalAccountRequired?: boolean;
    /** Profile name → description, when the CA offers certificate profiles. */
    profiles?: Record<string, string>;
  };
}

export type AcmeIdentifier = { type: 'dns' | 'ip'; value: string };

export interface AcmeAccount {
  status: 'valid' | 'deactivated' | 'revoked';
  contact?: string[];
}

export interface AcmeOrder {
  /** The order's own URL (the Location of newOrder). */
  url: string;
  status: 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';
  identifiers: AcmeIdentifier[];
  authorizations: string[];
  finalize: string;
  certificate?: string;
  expires?: string;
  profile?: string;
  error?: AcmeProblem;
}

export interface AcmeChallenge {
  type: string;
  url: string;
  status: 'pending' | 'processing' | 'valid' | 'invalid';
  token?: string;
  error?: AcmeProblem;
}

export interface AcmeAuthorization {
  /** The authorization's own URL. */
  url: string;
  status: 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
  identifier: AcmeIdentifier;
  challenges: AcmeChallenge[];
  /** True when this authorization is for `*.<identifier.value>`. */
  wildcard?: boolean;
}

export interface RenewalInfo {
  /** When the CA suggests renewing: pick a random time in [start, end). */
  suggestedWindow: { start: Date; end: Date };
  explanationUrl?: string;
  /** When to ask again: the CA's Retry-After, else RFC 9773's suggested 6 hours. */
  retryAfterMs: number;
}

type Json = Record<string, unknown>;

function object(value: unknown, what: string): Json {
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as Json;
  throw new AcmeProblemError(`the CA sent a ${what} that is not a JSON object`);
}

function str(obj: Json, key: string, what: string): string {
  const v = obj[key];
  if (typeof v === 'string' && v.length > 0) return v;
  throw new AcmeProblemError(`the CA sent a ${what} without "${key}"`);
}

function optStr(obj: Json, key: string): string | undefined {
  return typeof obj[key] === 'string' ? (obj[key] as string) : undefined;
}

function problem(value: unknown): AcmeProblem | undefined {
  return value && typeof value === 'object' && typeof (value as AcmeProblem).type === 'string'
    ? (value as AcmeProblem)
    : undefined;
}

function identifier(value: unknown, what: string): AcmeIdentifier {
  const o = object(value, `${what} identifier`);
  return { type: str(o, 'type', what) as AcmeIdentifier['type'], value: str(o, 'value', what) };
}

/** The directory (RFC 8555 §7.1.1); unknown members are ignored. Pure. Throws AcmeProblemError for a reply missing what we act on. */
export function parseDirectory(json: unknown): AcmeDirectory {
  const o = object(json, 'directory');
  const meta = o.meta && typeof o.meta === 'object' ? (o.meta as AcmeDirectory['meta']) : undefined;
  return {
    newNonce: str(o, 'newNonce', 'directory'),
    newAccount: str(o, 'newAccount', 'directory'),
    newOrder: str(o, 'newOrder', 'directory'),
    revokeCert: str(o, 'revokeCert', 'directory'),
    keyChange: optStr(o, 'keyChange'),
    renewalInfo: optStr(o, 'renewalInfo'),
    meta,
  };
}

/** An account object (§7.1.2). Pure. */
export function parseAccount(json: unknown): AcmeAccount {
  const o = object(json, 'account');
  return { status: str(o, 'status', 'account') as AcmeAccount['status'], contact: o.contact as string[] | undefined };
}

/** An order object (§7.1.3); `url` is where it lives (the Location of newOrder). Pure. Throws AcmeProblemError for a reply missing what we act on. */
export function parseOrder(json: unknown, url: string): AcmeOrder {
  const o = object(json, 'order');
  const authorizations = o.authorizations;
  if (!Array.isArray(authorizations) || !authorizations.every((a) => typeof a === 'string')) {
    throw new AcmeProblemError('the CA sent an order without an "authorizations" list');
  }
  return {
    url,
    status: str(o, 'status', 'order') as AcmeOrder['status'],
    identifiers: Array.isArray(o.identifiers) ? o.identifiers.map((i) => identifier(i, 'order')) : [],
    authorizations,
    finalize: str(o, 'finalize', 'order'),
    certificate: optStr(o, 'certificate'),
    expires: optStr(o, 'expires'),
    profile: optStr(o, 'profile'),
    error: problem(o.error),
  };
}

/** A challenge object (§8). Pure. */
export function parseChallenge(json: unknown): AcmeChallenge {
  const o = object(json, 'challenge');
  return {
    type: str(o, 'type', 'challenge'),
    url: str(o, 'url', 'challenge'),
    status: str(o, 'status', 'challenge') as AcmeChallenge['status'],
    token: optStr(o, 'token'),
    error: problem(o.error),
  };
}

/** An authorization object (§7.1.4); `url` is where it lives. Pure. Throws AcmeProblemError for a reply missing what we act on. */
export function parseAuthorization(json: unknown, url: string): AcmeAuthorization {
  const o = object(json, 'authorization');
  if (!Array.isArray(o.challenges)) throw new AcmeProblemError('the CA sent an authorization without "challenges"');
  return {
    url,
    status: str(o, 'status', 'authorization') as AcmeAuthorization['status'],
    identifier: identifier(o.identifier, 'authorization'),
    challenges: o.challenges.map(parseChallenge),
    wildcard: o.wildcard === true,
  };
}

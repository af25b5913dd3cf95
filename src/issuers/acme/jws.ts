import { createHash, createHmac, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { UnsupportedKeyError } from '../../crypto/errors.js';

/** The public JWK of an ES256 account key, members in RFC 7638 order. */
export interface EcJwk {
  crv: 'P-256';
  kty: 'EC';
  x: string;
  y: string;
}

/** A JWS in flattened JSON serialization, the only form ACME accepts (RFC 8555 §6.2). */
export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
}

/** The account key goes in the header as `jwk` (newAccount, revoke by cert key) or as the account URL `kid`. */
export type JwsSigner = { jwk: EcJwk } | { kid: string };

/** External account binding credentials from the CA (RFC 8555 §7.3.4). */
export interface EabCredentials {
  kid: string;
  /** The MAC key as the CA shows it: base64url (plain base64 is accepted too). */
  hmacKey: string;
}

/** base64url without padding, as JOSE wants everywhere. Pure. */
export function b64u(data: string | Uint8Array): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * The public JWK of an EC P-256 key (private or public). Throws UnsupportedKeyError for other
 * keys: account keys are ES256 only, the one algorithm every ACME CA accepts. Pure.
 */
export function publicJwk(key: KeyObject): EcJwk {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ec' || pub.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new UnsupportedKeyError('ACME account keys must be EC P-256 (ES256)');
  }
  const jwk = pub.export({ format: 'jwk' });
  return { crv: 'P-256', kty: 'EC', x: jwk.x!, y: jwk.y! };
}

/**
 * RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order with no
 * whitespace; EcJwk's member order is that order. Part of every key authorization. Pure.
 */
export function jwkThumbprint(jwk: EcJwk): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return createHash('sha256').update(canonical).digest('base64url');
}

/**
 * Signs an ACME request with ES256. `payload` undefined makes a POST-as-GET (empty payload,
 * RFC 8555 §6.3), which is not the same as the JSON `{}`. Pure apart from the signature's randomness.
 */
export function signJws(
  privateKey: KeyObject,
  header: JwsSigner & { url: string; nonce: string },
  payload: unknown,
): FlattenedJws {
  const protectedB64 = b64u(JSON.stringify({ alg: 'ES256', ...header }));
  const payloadB64 = payload === undefined ? '' : b64u(JSON.stringify(payload));
  // JWS wants the raw r||s form, not the DER that node:crypto gives by default.
  const signature = sign('sha256', Buffer.from(`${protectedB64}.${payloadB64}`), {
    key: privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return { protected: protectedB64, payload: payloadB64, signature: b64u(signature) };
}

/**
 * The inner JWS of an external account binding: the account's public JWK, MACed (HS256) with
 * the CA-issued key, for the newAccount URL. No nonce, per RFC 8555 §7.3.4. Pure.
 */
export function signEab(accountJwk: EcJwk, eab: EabCredentials, newAccountUrl: string): FlattenedJws {
  const protectedB64 = b64u(JSON.stringify({ alg: 'HS256', kid: eab.kid, url: newAccountUrl }));
  const payloadB64 = b64u(JSON.stringify(accountJwk));
  // Node's base64url decoder also accepts the standard alphabet and padding.
  const key = Buffer.from(eab.hmacKey, 'base64url');
  const signature = createHmac('sha256', key).update(`${protectedB64}.${payloadB64}`).digest();
  return { protected: protectedB64, payload: payloadB64, signature: b64u(signature) };
}

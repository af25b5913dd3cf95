import { createPrivateKey, generateKeyPair as generateKeyPairCallback, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { InvalidPemError } from '../core/errors.js';
import { UnsupportedKeyError } from './errors.js';
import { derToPem } from './pem.js';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** The key types the daemon makes, for config, issuers and the API alike. */
export const KEY_TYPES = ['ecdsa-p256', 'rsa-2048'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** True for one of KEY_TYPES (a string from config or API input). */
export function isKeyType(value: string): value is KeyType {
  return (KEY_TYPES as readonly string[]).includes(value);
}

const generate = promisify(generateKeyPairCallback);

/**
 * Generates a fresh key pair. RSA-2048 (~200 ms) runs on the libuv pool; P-256 takes ~0.06 ms, less
 * than a hop to the pool, whose threads may all be busy with fsyncs (an on-demand handshake waits).
 * Safe to call concurrently.
 */
export async function generateKeyPair(keyType: KeyType = 'ecdsa-p256'): Promise<KeyPair> {
  switch (keyType) {
    case 'ecdsa-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'rsa-2048':
      return generate('rsa', { modulusLength: 2048 });
    default: {
      // Reached only when an unchecked string slips past the type (config, API input).
      const unknown: never = keyType;
      throw new UnsupportedKeyError(`unknown key type ${JSON.stringify(unknown)}: use ${KEY_TYPES.join(' or ')}`);
    }
  }
}

/** P-256 pairs made ahead of need; each is handed out once. */
const spareP256: KeyPair[] = [];
const SPARE_P256 = 4;
let refilling = false;

/**
 * A fresh key pair for a leaf. P-256 pairs come from a few made ahead, one per event-loop turn
 * after each is taken: a leaf signed while an on-demand handshake waits skips key generation
 * (~0.1-0.3 ms in the flow). Every pair is used once. Safe to call concurrently.
 */
export async function takeLeafKeyPair(keyType: KeyType = 'ecdsa-p256'): Promise<KeyPair> {
  if (keyType !== 'ecdsa-p256') return generateKeyPair(keyType);
  const pair = spareP256.pop() ?? (await generateKeyPair('ecdsa-p256'));
  refillSpares();
  return pair;
}

function refillSpares(): void {
  if (refilling || spareP256.length >= SPARE_P256) return;
  refilling = true;
  setImmediate(() => {
    refilling = false;
    spareP256.push(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    refillSpares();
  }).unref();
}

// PrivateKeyInfo { 0, { id-ecPublicKey, prime256v1 }, OCTET STRING ECPrivateKey { 1, d, [1] point } }
// exactly as OpenSSL lays it out for P-256: all fixed but the 32-byte scalar and the 64-byte point.
const P256_PKCS8_HEAD = Buffer.from('308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420', 'hex');
const P256_PKCS8_POINT = Buffer.from('a14403420004', 'hex');

/**
 * PKCS#8 PEM of a private key: the form bundles and the store hold. Safe to call concurrently.
 * P-256 keys (every default leaf) are assembled from the JWK, byte for byte what OpenSSL writes:
 * its PEM encoder costs ~0.1 ms a call while an on-demand handshake waits, the JWK export ~10 µs.
 */
export function exportPrivateKeyPem(privateKey: KeyObject): string {
  if (privateKey.asymmetricKeyType === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    const jwk = privateKey.export({ format: 'jwk' });
    const [d, x, y] = [jwk.d, jwk.x, jwk.y].map((v) => Buffer.from(v ?? '', 'base64url'));
    // JWK pads each to the field size (RFC 7518 §6.2); anything else goes the long way.
    if (d!.length === 32 && x!.length === 32 && y!.length === 32) {
      return derToPem(Buffer.concat([P256_PKCS8_HEAD, d!, P256_PKCS8_POINT, x!, y!]), 'PRIVATE KEY');
    }
  }
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Reads a private key PEM (PKCS#8, SEC1 or PKCS#1); encrypted keys are refused (InvalidPemError). Pure. */
export function parsePrivateKeyPem(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (cause) {
    throw new InvalidPemError('the private key PEM does not parse (encrypted keys are not supported)', { cause });
  }
}

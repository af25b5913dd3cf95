import { createPrivateKey, generateKeyPair as generateKeyPairCallback, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { InvalidPemError } from '../core/errors.js';
import type { KeyType } from '../issuers/issuer.js';
import { UnsupportedKeyError } from './errors.js';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
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
      throw new UnsupportedKeyError(`unknown key type ${JSON.stringify(unknown)}: use ecdsa-p256 or rsa-2048`);
    }
  }
}

/** PKCS#8 PEM of a private key: the form bundles and the store hold. Safe to call concurrently. */
export function exportPrivateKeyPem(privateKey: KeyObject): string {
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

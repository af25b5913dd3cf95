import { sign, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { UnsupportedKeyError } from './errors.js';

/** How one private key signs certificates and CSRs. */
export interface Signer {
  /** The signatureAlgorithm written in the TBS and outside it (they must be identical). */
  readonly algorithm: AlgorithmIdentifier;
  /** The same, DER-encoded once: the outer signatureAlgorithm of every certificate we sign. */
  readonly algorithmDer: Uint8Array;
  /** Signs the DER bytes; ECDSA signatures come out DER-encoded, as X.509 wants. */
  sign(data: Uint8Array): Buffer;
}

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_ECDSA_SHA384 = '1.2.840.10045.4.3.3';
const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';
// DER NULL: RFC 4055 requires explicit NULL parameters for the RSA PKCS#1 v1.5 algorithms.
const DER_NULL = new Uint8Array([0x05, 0x00]).buffer;

/**
 * Picks the signature algorithm from the signing key: ECDSA P-256 → ecdsa-with-SHA256,
 * P-384 → ecdsa-with-SHA384 (a supplied root may use it), RSA ≥ 2048 → sha256WithRSAEncryption.
 * Throws UnsupportedKeyError for anything else. Safe to call concurrently.
 */
export function signerFor(privateKey: KeyObject): Signer {
  if (privateKey.type !== 'private') throw new UnsupportedKeyError('signing needs a private key, got a public one');
  const details = privateKey.asymmetricKeyDetails ?? {};
  if (privateKey.asymmetricKeyType === 'ec') {
    // ECDSA parameters are absent, not NULL (RFC 5758 §3.2).
    if (details.namedCurve === 'prime256v1') return signer('sha256', ecdsa(OID_ECDSA_SHA256), privateKey);
    if (details.namedCurve === 'secp384r1') return signer('sha384', ecdsa(OID_ECDSA_SHA384), privateKey);
    throw new UnsupportedKeyError(`EC curve ${details.namedCurve ?? '(unknown)'} is not supported: use P-256 or P-384`);
  }
  if (privateKey.asymmetricKeyType === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) {
      throw new UnsupportedKeyError(`RSA key of ${details.modulusLength} bits is too small: use at least 2048`);
    }
    return signer('sha256', new AlgorithmIdentifier({ algorithm: OID_RSA_SHA256, parameters: DER_NULL }), privateKey);
  }
  throw new UnsupportedKeyError(
    `${privateKey.asymmetricKeyType ?? 'unknown'} keys are not supported for signing: use ECDSA P-256 or RSA`,
  );
}

function ecdsa(algorithm: string): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithm });
}

function signer(hash: string, algorithm: AlgorithmIdentifier, key: KeyObject): Signer {
  return {
    algorithm,
    algorithmDer: new Uint8Array(AsnConvert.serialize(algorithm)),
    sign: (data) => sign(hash, data, key),
  };
}

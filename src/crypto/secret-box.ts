import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { errorKind } from '../core/errors.js';

/** The store key is missing, malformed, or not the one a secret was sealed with. */
export class StoreKeyError extends errorKind('CERTD_E_STORE_KEY', 'input') {}

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Sealed = version byte ‖ IV ‖ tag ‖ ciphertext. */
const VERSION = 1;
/** How a store key file is made: said wherever one is missing. */
export const KEY_FILE_RECIPE = 'openssl rand -base64 32 > /etc/haproxy-certd/store.key && chmod 600 /etc/haproxy-certd/store.key';
/** The sentence every "no usable key file" message ends with. */
export const HOW_TO_MAKE_KEY_FILE = `make one with \`${KEY_FILE_RECIPE}\` (the same file on every replica)`;

export interface Sealed {
  /** Which key sealed it (KeyRing id): what `store rotate-key` looks for. */
  keyId: string;
  data: Buffer;
}

/**
 * The keys that encrypt secrets at rest (AES-256-GCM): the text of `store.keyFile`, one base64
 * 32-byte key per line. The first line seals; every line opens, so a key is rotated by putting the
 * new one first, running `store rotate-key`, then dropping the old line. Never logged.
 */
export class KeyRing {
  readonly currentId: string;
  readonly #keys: Map<string, Buffer>;

  private constructor(keys: Buffer[]) {
    this.#keys = new Map(keys.map((k) => [keyIdOf(k), k]));
    this.currentId = keyIdOf(keys[0]!);
  }

  /** Parses the key file's text; `source` names it in errors (never the key itself). */
  static parse(text: string, source: string): KeyRing {
    const lines = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    if (lines.length === 0) throw new StoreKeyError(`${source} holds no key: ${HOW_TO_MAKE_KEY_FILE}`);
    const keys = lines.map((line, i) => {
      const key = /^[A-Za-z0-9+/]+={0,2}$/.test(line) ? Buffer.from(line, 'base64') : Buffer.alloc(0);
      if (key.length !== KEY_BYTES) throw new StoreKeyError(`${source} line ${i + 1} is not a base64 ${KEY_BYTES}-byte key: ${HOW_TO_MAKE_KEY_FILE}`);
      return key;
    });
    return new KeyRing(keys);
  }

  ids(): string[] {
    return [...this.#keys.keys()];
  }

  /** Encrypts `plain` bound to `context` (e.g. the record's key): a sealed value moved to another record does not open. */
  seal(plain: Buffer | string, context: string): Sealed {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.currentId)!, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return { keyId: this.currentId, data: Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]) };
  }

  open(sealed: Sealed, context: string): Buffer {
    const key = this.#keys.get(sealed.keyId);
    if (!key) throw new StoreKeyError(`a secret (${context}) was sealed with key ${sealed.keyId}, which the key file does not hold (it has ${this.ids().join(', ')}): add that key back as a later line`);
    const { data } = sealed;
    if (data.length < 1 + IV_BYTES + TAG_BYTES || data[0] !== VERSION) throw new StoreKeyError(`the secret ${context} is not a sealed value this version reads`);
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(1, 1 + IV_BYTES));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(data.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(data.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
    } catch (cause) {
      throw new StoreKeyError(`the secret ${context} does not open with key ${sealed.keyId}: it was changed, or belongs to another record`, { cause });
    }
  }
}

/** A key's public name: 8 bytes of SHA-256 over it, in hex (reveals nothing usable about the key). */
function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('haproxy-certd store key').update(key).digest('hex').slice(0, 16);
}

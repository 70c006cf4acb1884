import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidOptionsError } from './errors.ts';
import { assertKnownOptions } from './known-options.ts';
import { CorruptItemError } from './persistence/item.ts';

/** A 256-bit key: 32 bytes, or their base64 encoding. */
export type KeyMaterial = Uint8Array | string;

/** Keys by id, or a function that supplies them (from Secrets Manager, KMS, SSM...). */
export type KeySource = Record<string, KeyMaterial> | (() => Promise<Record<string, KeyMaterial>> | Record<string, KeyMaterial>);

/** Client-side encryption of stored values (`DynamoCacheOptions.encryption`). */
export interface EncryptionOptions {
  /**
   * The keys that may decrypt, by key id (1-64 of `A-Z a-z 0-9 _ -`), or a function returning them, called
   * once per execution environment and again after `keyCacheSeconds`. Keep old keys here to read items
   * written before a rotation.
   */
  keys: KeySource;
  /** The id of the key that encrypts new values. */
  writeKeyId: string;
  /** How long keys from a function are reused before it is called again, in seconds. Default `300`. */
  keyCacheSeconds?: number | undefined;
  /**
   * Also read items that are not encrypted (written before encryption was turned on). Only for a migration
   * period: while it is on, anyone who can write to the table can plant a value this cache serves. New
   * values are always encrypted. Default `false`: a clear-text item is a miss and a warning.
   */
  acceptPlaintext?: boolean | undefined;
  /**
   * Read items encrypted by dynamo-cache 0.1 (marker `aes256gcm:`), whose expiry and freshness are not
   * authenticated; they are replaced by authenticated ones as they are rewritten. Default `true`, so an
   * upgrade keeps its cached values; `false` refuses them.
   */
  acceptV1Items?: boolean | undefined;
}

const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Checks a key id, as written into the encoding marker. */
export function assertKeyId(keyId: unknown, name: string): string {
  if (typeof keyId !== 'string' || !KEY_ID_PATTERN.test(keyId)) throw new InvalidOptionsError(`${name} must be 1-64 of A-Z a-z 0-9 _ -, got ${JSON.stringify(keyId)}`);
  return keyId;
}

/** Checks and decodes keys: each must be exactly 32 bytes (AES-256). */
export function toKeyring(keys: Record<string, KeyMaterial>, writeKeyId: string): Map<string, Buffer> {
  if (typeof keys !== 'object' || keys === null) throw new InvalidOptionsError('encryption.keys must map key ids to keys');
  const ring = new Map<string, Buffer>();
  for (const [id, material] of Object.entries(keys)) {
    assertKeyId(id, 'encryption key id');
    const key = typeof material === 'string' ? Buffer.from(material, 'base64') : material instanceof Uint8Array ? Buffer.from(material) : undefined;
    if (key?.byteLength !== 32) throw new InvalidOptionsError(`encryption key "${id}" must be 32 bytes (a Uint8Array, or base64 text)`);
    ring.set(id, key);
  }
  if (!ring.has(writeKeyId)) throw new InvalidOptionsError(`encryption.writeKeyId "${writeKeyId}" is not among the keys`);
  return ring;
}

/**
 * AES-256-GCM with a random 96-bit IV per value. The additional authenticated data binds a ciphertext to
 * its item key, its encoding and its key id: an item copied onto another key, re-labelled, or altered in
 * one bit does not decrypt.
 */
export class Keyring {
  readonly writeKeyId: string;
  /** See `EncryptionOptions.acceptPlaintext`. */
  readonly acceptPlaintext: boolean;
  /** See `EncryptionOptions.acceptV1Items`. */
  readonly acceptV1Items: boolean;
  readonly #source: KeySource;
  readonly #cacheMs: number;
  #keys: Promise<Map<string, Buffer>> | undefined;
  #loadedAt = 0;

  /** @throws InvalidOptionsError for malformed options or (given as a map) keys. */
  constructor(options: EncryptionOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('encryption must be an object');
    assertKnownOptions('encryption', options, ['keys', 'writeKeyId', 'keyCacheSeconds', 'acceptPlaintext', 'acceptV1Items']);
    this.writeKeyId = assertKeyId(options.writeKeyId, 'encryption.writeKeyId');
    this.#source = options.keys;
    this.#cacheMs = (options.keyCacheSeconds ?? 300) * 1000;
    this.acceptPlaintext = options.acceptPlaintext ?? false;
    this.acceptV1Items = options.acceptV1Items ?? true;
    for (const [name, value] of [['acceptPlaintext', this.acceptPlaintext], ['acceptV1Items', this.acceptV1Items]] as const) {
      if (typeof value !== 'boolean') throw new InvalidOptionsError(`encryption.${name} must be true or false, got ${String(value)}`);
    }
    if (typeof options.keys === 'function') return;
    this.#keys = Promise.resolve(toKeyring(options.keys, this.writeKeyId));
  }

  /** Encrypts `plaintext` with the write key. Rejects when the key source fails. */
  async encrypt(plaintext: Uint8Array, aad: string): Promise<Uint8Array> {
    const key = (await this.#ring()).get(this.writeKeyId)!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(aad));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([iv, ciphertext, cipher.getAuthTag()]);
  }

  /** Decrypts; an unknown key, a wrong AAD or any altered byte is a `CorruptItemError`. */
  async decrypt(keyId: string, data: Uint8Array, aad: string): Promise<Uint8Array> {
    const key = (await this.#ring()).get(keyId);
    if (key === undefined) throw new CorruptItemError(`encrypted with unknown key "${keyId}"`);
    if (data.byteLength < IV_BYTES + TAG_BYTES) throw new CorruptItemError('encrypted data is truncated');
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(data.subarray(data.byteLength - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.byteLength - TAG_BYTES)), decipher.final()]);
    } catch (error) {
      throw new CorruptItemError('encrypted data does not authenticate (altered, or not written for this key)', { cause: error });
    }
  }

  /** `<write key id>:<HMAC-SHA256>` of `text`, with a key derived from the write key (never the encryption key itself). */
  async sign(text: string): Promise<string> {
    const key = (await this.#ring()).get(this.writeKeyId)!;
    return `${this.writeKeyId}:${createHmac('sha256', signingKey(key)).update(text).digest('base64url')}`;
  }

  /** Whether `signature` (from `sign`) is valid for `text` under one of the keys. */
  async verify(text: string, signature: string): Promise<boolean> {
    const separator = signature.indexOf(':');
    const key = (await this.#ring()).get(signature.slice(0, separator));
    if (separator < 0 || key === undefined) return false;
    const expected = createHmac('sha256', signingKey(key)).update(text).digest();
    const given = Buffer.from(signature.slice(separator + 1), 'base64url');
    return given.byteLength === expected.byteLength && timingSafeEqual(given, expected);
  }

  /** The keys: given, or from the key function (one call shared by concurrent callers, reused for keyCacheSeconds). */
  #ring(): Promise<Map<string, Buffer>> {
    const source = this.#source;
    if (typeof source === 'function' && (this.#keys === undefined || Date.now() - this.#loadedAt >= this.#cacheMs)) {
      this.#loadedAt = Date.now();
      const loading = Promise.resolve()
        .then(() => source())
        .then((keys) => toKeyring(keys, this.writeKeyId));
      // A failed load is not kept: the next operation asks again.
      loading.catch(() => {
        if (this.#keys === loading) this.#keys = undefined;
      });
      this.#keys = loading;
    }
    return this.#keys!;
  }
}

const signingKeys = new WeakMap<Buffer, Buffer>();

/** HKDF-SHA256 of an encryption key for signatures: one key is never used for two algorithms. */
function signingKey(key: Buffer): Buffer {
  let derived = signingKeys.get(key);
  if (derived === undefined) {
    derived = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'dynamo-cache lease signature', 32));
    signingKeys.set(key, derived);
  }
  return derived;
}

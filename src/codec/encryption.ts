import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidOptionsError } from '../errors.ts';
import { assertKnownOptions } from '../known-options.ts';
import { CorruptItemError } from '../storage/item.ts';
import { UNBOUNDED, type CallBudget } from '../resilience/dynamo-guard.ts';

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
   * Longest a call waits for the key function when no keys are loaded yet, in ms (less when the call's own
   * deadline comes first): a read is then a miss and a write resolves `false`, while the load goes on for
   * the next calls. Default `1000`.
   */
  keysTimeoutMs?: number | undefined;
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

/** A key id: what `encryption.keys` and `writeKeyId` take. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
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
 * The encryption keys could not be had in time: the key function failed, returned bad keys, or did not
 * answer within `keysTimeoutMs` or the call's budget. A cache failure like DynamoDB's: the read is a miss,
 * the write resolves `false`, never an exception in the caller.
 */
export class KeysUnavailableError extends Error {
  override name = 'KeysUnavailableError';
}

/**
 * AES-256-GCM with a random 96-bit IV per value. The additional authenticated data binds a ciphertext to
 * its item key, its encoding and its key id: an item copied onto another key, re-labelled, or altered in
 * one bit does not decrypt.
 *
 * Keys from a function are loaded once per execution environment and again every `keyCacheSeconds`; while
 * a reload runs, the keys known so far keep serving. No call waits for a load longer than `keysTimeoutMs`
 * (or its own deadline or signal): the load goes on, and later calls use its keys.
 */
export class Keyring {
  readonly writeKeyId: string;
  /** See `EncryptionOptions.acceptPlaintext`. */
  readonly acceptPlaintext: boolean;
  /** See `EncryptionOptions.acceptV1Items`. */
  readonly acceptV1Items: boolean;
  readonly #source: KeySource;
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  /** The keys known so far. */
  #keys: Map<string, Buffer> | undefined;
  #loadedAt = 0;
  #loading: Promise<Map<string, Buffer>> | undefined;
  /** After a failed load, not asked again before this (epoch ms): a throttled key source must not be hammered. */
  #retryAtMs = 0;
  #lastFailure: unknown;

  /** @throws InvalidOptionsError for malformed options or (given as a map) keys. */
  constructor(options: EncryptionOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('encryption must be an object');
    assertKnownOptions('encryption', options, ['keys', 'writeKeyId', 'keyCacheSeconds', 'keysTimeoutMs', 'acceptPlaintext', 'acceptV1Items']);
    this.writeKeyId = assertKeyId(options.writeKeyId, 'encryption.writeKeyId');
    this.#source = options.keys;
    this.#cacheMs = (options.keyCacheSeconds ?? 300) * 1000;
    this.#timeoutMs = options.keysTimeoutMs ?? 1000;
    if (!Number.isFinite(this.#timeoutMs) || this.#timeoutMs <= 0) throw new InvalidOptionsError(`encryption.keysTimeoutMs must be more than zero, got ${String(options.keysTimeoutMs)}`);
    this.acceptPlaintext = options.acceptPlaintext ?? false;
    this.acceptV1Items = options.acceptV1Items ?? true;
    for (const [name, value] of [['acceptPlaintext', this.acceptPlaintext], ['acceptV1Items', this.acceptV1Items]] as const) {
      if (typeof value !== 'boolean') throw new InvalidOptionsError(`encryption.${name} must be true or false, got ${String(value)}`);
    }
    if (typeof options.keys === 'function') return;
    this.#keys = toKeyring(options.keys, this.writeKeyId);
  }

  /** Encrypts `plaintext` with the write key. @throws KeysUnavailableError when the keys cannot be had in time. */
  async encrypt(plaintext: Uint8Array, aad: string, call: CallBudget = UNBOUNDED): Promise<Uint8Array> {
    const key = (await this.#ring(call)).get(this.writeKeyId)!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(aad));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([iv, ciphertext, cipher.getAuthTag()]);
  }

  /**
   * Decrypts; an unknown key, a wrong AAD or any altered byte is a `CorruptItemError`.
   * @throws KeysUnavailableError when the keys cannot be had in time.
   */
  async decrypt(keyId: string, data: Uint8Array, aad: string, call: CallBudget = UNBOUNDED): Promise<Uint8Array> {
    const key = (await this.#ring(call)).get(keyId);
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
  async sign(text: string, call: CallBudget = UNBOUNDED): Promise<string> {
    const key = (await this.#ring(call)).get(this.writeKeyId)!;
    return `${this.writeKeyId}:${createHmac('sha256', signingKey(key)).update(text).digest('base64url')}`;
  }

  /** Whether `signature` (from `sign`) is valid for `text` under one of the keys. @throws KeysUnavailableError. */
  async verify(text: string, signature: string, call: CallBudget = UNBOUNDED): Promise<boolean> {
    const separator = signature.indexOf(':');
    const key = (await this.#ring(call)).get(signature.slice(0, separator));
    if (separator < 0 || key === undefined) return false;
    const expected = createHmac('sha256', signingKey(key)).update(text).digest();
    const given = Buffer.from(signature.slice(separator + 1), 'base64url');
    return given.byteLength === expected.byteLength && timingSafeEqual(given, expected);
  }

  /**
   * The keys: given; or the ones the key function last gave, (re)loaded when due, one load shared by
   * concurrent callers. Only a call with no keys yet waits for a load, and no longer than its bounds.
   */
  async #ring(call: CallBudget): Promise<Map<string, Buffer>> {
    const source = this.#source;
    const now = Date.now();
    if (typeof source === 'function' && this.#loading === undefined && now >= this.#retryAtMs && (this.#keys === undefined || now - this.#loadedAt >= this.#cacheMs)) {
      const loading = Promise.resolve()
        .then(() => source())
        .then((keys) => toKeyring(keys, this.writeKeyId))
        .then(
          (keys) => {
            this.#keys = keys;
            this.#loadedAt = Date.now();
            return keys;
          },
          (error: unknown) => {
            // A failed load is not kept: the key function is asked again after a pause.
            this.#retryAtMs = Date.now() + FAILED_LOAD_BACKOFF_MS;
            this.#lastFailure = error;
            throw error;
          },
        )
        .finally(() => {
          if (this.#loading === loading) this.#loading = undefined;
        });
      loading.catch(() => undefined);
      this.#loading = loading;
    }
    if (this.#keys !== undefined) return this.#keys;
    if (this.#loading === undefined) {
      throw new KeysUnavailableError(`the encryption key function failed; asked again within ${FAILED_LOAD_BACKOFF_MS} ms: ${(this.#lastFailure as Error)?.message}`, { cause: this.#lastFailure });
    }
    return withinBounds(this.#loading, call, this.#timeoutMs);
  }
}

/** How long after a failed key load the key function is not asked again. */
const FAILED_LOAD_BACKOFF_MS = 1000;

/** `loading`, unless it takes longer than `timeoutMs` or the call's budget, or fails: then a `KeysUnavailableError`. */
async function withinBounds(loading: Promise<Map<string, Buffer>>, call: CallBudget, timeoutMs: number): Promise<Map<string, Buffer>> {
  // An 'abort' listener never fires for a signal aborted already: a turn ended after its caller left waits for nothing.
  if (call.signal?.aborted) throw new KeysUnavailableError('the call was aborted before the encryption keys were loaded');
  const waitMs = Math.max(0, Math.min(timeoutMs, call.untilMs === undefined ? timeoutMs : call.untilMs - Date.now()));
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      loading,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new KeysUnavailableError(`the encryption key function did not answer within ${Math.round(waitMs)} ms`)), waitMs);
        if (call.signal !== undefined) {
          onAbort = () => reject(new KeysUnavailableError('the call was aborted while waiting for the encryption keys'));
          call.signal.addEventListener('abort', onAbort, { once: true });
        }
      }),
    ]);
  } catch (error) {
    if (error instanceof KeysUnavailableError) throw error;
    throw new KeysUnavailableError(`the encryption key function failed: ${(error as Error)?.message}`, { cause: error });
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) call.signal?.removeEventListener('abort', onAbort);
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

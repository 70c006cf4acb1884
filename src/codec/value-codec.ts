import { compress, compressionPays, decompress, mayPay, type CompressionOptions } from './compression.ts';
import type { Keyring } from './encryption.ts';
import { InvalidValueError } from '../errors.ts';
import { CorruptItemError, NEGATIVE_MARKER, type StoredBody, type TagStamps } from '../storage/item.ts';
import { UNBOUNDED, type CallBudget } from '../resilience/dynamo-guard.ts';

/**
 * How a value is represented before it is stored.
 *
 * - `string`: a plain string, stored as the bare `S` value with no marker, exactly as the original
 *   Python `CacheService` stores and reads it.
 * - `json`: any other JSON value (object, array, number, boolean, `null`), stored as JSON text.
 * - `bytes` / `buffer`: binary data; two kinds so a `Uint8Array` comes back a `Uint8Array` and a
 *   `Buffer` comes back a `Buffer`.
 */
export type Payload =
  | { readonly kind: 'string'; readonly data: string }
  | { readonly kind: 'json'; readonly data: string }
  | { readonly kind: 'bytes'; readonly data: Uint8Array }
  | { readonly kind: 'buffer'; readonly data: Uint8Array };

const KINDS = new Set(['string', 'json', 'bytes', 'buffer']);
/** The encryption step of dynamo-cache 0.1: its authenticated data is the item's key and marker only. */
const ENCRYPTION_V1 = 'aes256gcm';
/** The encryption step written now: the authenticated data also covers the item's expiry, freshness and fetch time. */
const ENCRYPTION_V2 = 'aes256gcm2';

/**
 * Turns a caller's value into a payload, or throws `InvalidValueError` for anything that would not come
 * back exactly: `undefined` (anywhere), functions, symbols, bigints, non-finite numbers, `Date`, `Map`,
 * class instances, sparse arrays and cycles. JSON would silently drop or rewrite these. The one value JSON
 * changes that is accepted is `-0`, which comes back `0` (equal under `===`), as with `JSON.stringify`.
 */
export function encodeValue(value: unknown): Payload {
  // A string with a lone surrogate has no UTF-8 form; JSON text escapes it, so it still round-trips.
  if (typeof value === 'string' && value.isWellFormed()) return { kind: 'string', data: value };
  if (value instanceof Uint8Array) {
    // Copy: the caller may reuse its buffer after `set` resolves.
    return { kind: Buffer.isBuffer(value) ? 'buffer' : 'bytes', data: new Uint8Array(value) };
  }
  if (value === undefined) {
    throw new InvalidValueError('Cannot cache undefined: a miss already means "no value"; cache null instead');
  }
  let data: string;
  try {
    assertRoundTrips(value, '', []);
    data = JSON.stringify(value);
  } catch (error) {
    if (error instanceof InvalidValueError) throw error;
    throw new InvalidValueError(`Cannot cache this value: ${(error as Error).message}`, { cause: error });
  }
  return { kind: 'json', data };
}

/**
 * Throws `InvalidValueError` for the first part of `value`, in `JSON.stringify`'s order, that JSON would drop
 * or rewrite, inspecting each raw value (before any `toJSON`) so that a `Date` or a nested `undefined` is
 * caught instead of being silently converted or dropped. A walk of its own rather than a replacer function,
 * which would take `JSON.stringify` off its fast path: it would call back into JavaScript for every property.
 * `ancestors` are the objects and arrays that enclose `value` (a cycle never ends in JSON).
 */
function assertRoundTrips(value: unknown, key: string | number, ancestors: object[]): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidValueError(`Cannot cache ${where(key)}: ${value} is not a finite number`);
      return;
    case 'object': {
      if (value === null) return;
      if (ancestors.includes(value)) throw new InvalidValueError(`Cannot cache ${where(key)}: it contains itself (a cycle)`);
      if (Array.isArray(value)) {
        // A subclass comes back a plain Array, and a toJSON (even a non-enumerable one) rewrites it.
        if (Object.getPrototypeOf(value) !== Array.prototype || typeof (value as { toJSON?: unknown }).toJSON === 'function') {
          throw new InvalidValueError(`Cannot cache ${where(key)}: a ${value.constructor?.name ?? 'array'} does not round-trip through JSON; convert it first`);
        }
        if (Object.keys(value).length !== value.length) throw new InvalidValueError(`Cannot cache ${where(key)}: sparse array`);
        if (Object.getOwnPropertySymbols(value).length > 0) throw new InvalidValueError(`Cannot cache ${where(key)}: symbol-keyed properties cannot be stored`);
        ancestors.push(value);
        for (let i = 0; i < value.length; i++) assertRoundTrips(value[i], i, ancestors);
        ancestors.pop();
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if ((proto !== Object.prototype && proto !== null) || typeof (value as { toJSON?: unknown }).toJSON === 'function') {
        const name = (value as object).constructor?.name ?? 'object';
        throw new InvalidValueError(`Cannot cache ${where(key)}: a ${name} does not round-trip through JSON; convert it first`);
      }
      // JSON drops symbol-keyed properties without a word; refusing keeps a round trip exact.
      if (Object.getOwnPropertySymbols(value).length > 0) throw new InvalidValueError(`Cannot cache ${where(key)}: symbol-keyed properties cannot be stored`);
      ancestors.push(value);
      for (const name of Object.keys(value)) assertRoundTrips((value as Record<string, unknown>)[name], name, ancestors);
      ancestors.pop();
      return;
    }
    default:
      throw new InvalidValueError(`Cannot cache ${where(key)}: ${typeof value} values cannot be stored`);
  }
}

/** How an error names the part of a value at `key` (an object's property name or an array's index). */
function where(key: string | number): string {
  return key === '' ? 'value' : `property "${key}"`;
}

/** Turns a payload back into a value. Each call returns a fresh copy the caller may mutate freely. */
export function decodePayload(payload: Payload): unknown {
  switch (payload.kind) {
    case 'string':
      return payload.data;
    case 'json':
      return JSON.parse(payload.data);
    case 'bytes':
      return new Uint8Array(payload.data);
    case 'buffer':
      return Buffer.from(payload.data);
  }
}

/** Bytes the payload's data occupies (UTF-8 for text). */
export function payloadBytes(payload: Payload): number {
  return typeof payload.data === 'string' ? Buffer.byteLength(payload.data) : payload.data.byteLength;
}

/** Bytes a stored body occupies in DynamoDB. */
export function bodyBytes(body: StoredBody): number {
  return typeof body.data === 'string' ? Buffer.byteLength(body.data) : body.data.byteLength;
}

/** Whether a body with this marker is stored as text (S): a string or JSON value, neither compressed nor encrypted. */
export function isTextBody(marker: string | undefined): boolean {
  return marker === undefined || marker === 'json' || marker === 'string';
}

/**
 * Decodes UTF-8 exactly: invalid bytes throw, and a leading U+FEFF is kept as the character it is (the
 * default decoder strips it as a byte order mark, so `'\ufeffhello'` would come back `'hello'`).
 */
export const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * What the encryption binds a value to besides its data: the item's key and its timing as stored, so a
 * ciphertext copied onto another key, or an item whose expiry or freshness was edited, does not decrypt.
 */
export interface ItemBinding {
  readonly storageKey: string;
  /** The expiry attribute (epoch seconds) as stored. */
  readonly expiresAt: number;
  /** `dc_fresh` as stored. */
  readonly freshUntilMs?: number | undefined;
  /** `dc_fetch_ms` as stored. */
  readonly fetchMs?: number | undefined;
  /** `dc_tags` as stored, sorted: a tag removed from an encrypted value's item must not free it from invalidation. */
  readonly tags?: TagStamps | undefined;
}

/** Settings of a {@link ValueCodec}. */
export interface CodecSettings {
  readonly compression: Required<CompressionOptions> | false;
  readonly keyring: Keyring | undefined;
  /** Largest decoded value accepted on read (bounds decompression). */
  readonly maxDecodedBytes: number;
}

/**
 * Turns payloads into the bodies stored in DynamoDB and back: compression when it makes a value smaller,
 * then AES-256-GCM encryption when keys are configured. The encoding marker records each step
 * (`json`, `json+br`, `bytes+gzip+aes256gcm2:2026-11`); a plain string with neither has no marker at all.
 *
 * With encryption, a read accepts only what it can authenticate: a clear-text item (a plain string, JSON,
 * a "not found" without its tag) is refused unless `encryption.acceptPlaintext` is set, so nobody who can
 * write to the table can plant a value. Items encrypted by dynamo-cache 0.1 (`aes256gcm`, whose expiry is
 * not authenticated) are read unless `encryption.acceptV1Items` is `false`.
 */
export class ValueCodec {
  readonly #s: CodecSettings;

  constructor(settings: CodecSettings) {
    this.#s = settings;
  }

  /** Whether values are encrypted. */
  get encrypts(): boolean {
    return this.#s.keyring !== undefined;
  }

  /**
   * The stored body of `payload`, bound to the item it goes into. A "not found" (`undefined`) has no body
   * without encryption, and a body holding only an authentication tag with it.
   */
  async seal(payload: Payload | undefined, binding: ItemBinding, call: CallBudget = UNBOUNDED): Promise<StoredBody | undefined> {
    const keyring = this.#s.keyring;
    if (keyring === undefined) return this.sealPlain(payload, binding);
    if (payload === undefined) {
      const marker = `${NEGATIVE_MARKER}+${ENCRYPTION_V2}:${keyring.writeKeyId}`;
      return { marker, data: await keyring.encrypt(new Uint8Array(0), associatedData(binding, marker), call) };
    }
    const plain = this.#compressed(payload, binding);
    const marker = `${plain.marker}+${ENCRYPTION_V2}:${keyring.writeKeyId}`;
    const data = await keyring.encrypt(typeof plain.data === 'string' ? Buffer.from(plain.data) : plain.data, associatedData(binding, marker), call);
    return { marker, data };
  }

  /** As `seal`, for a codec without encryption (see `encrypts`): synchronous. */
  sealPlain(payload: Payload | undefined, binding: ItemBinding): StoredBody | undefined {
    if (payload === undefined) return undefined;
    const { marker, data } = this.#compressed(payload, binding);
    return { marker: marker === 'string' ? undefined : marker, data };
  }

  /** The payload's data, compressed when that pays, and its marker (the payload's kind, and the algorithm). */
  #compressed(payload: Payload, binding: ItemBinding): { marker: string; data: string | Uint8Array } {
    const compression = this.#s.compression;
    let marker: string = payload.kind;
    let data: string | Uint8Array = payload.data;
    const rawBytes = payloadBytes(payload);
    const keyBytes = Buffer.byteLength(binding.storageKey);
    if (
      compression !== false &&
      rawBytes >= compression.thresholdBytes &&
      (payload.kind !== 'string' || compression.strings) &&
      mayPay(rawBytes, keyBytes, compression.saving)
    ) {
      const raw = typeof data === 'string' ? Buffer.from(data) : data;
      const compressed = compress(raw, compression.algorithm);
      if (compressionPays(raw.byteLength, compressed.byteLength, keyBytes, compression.saving)) {
        data = compressed;
        marker += `+${compression.algorithm}`;
      }
    }
    return { marker, data };
  }

  /**
   * The payload of a stored body (`undefined` for a "not found"); throws `CorruptItemError` for anything it
   * cannot decode or, with encryption, authenticate.
   */
  async open(body: StoredBody | undefined, negative: boolean, binding: ItemBinding, call: CallBudget = UNBOUNDED): Promise<Payload | undefined> {
    const keyring = this.#s.keyring;
    if (body === undefined) {
      if (keyring !== undefined && !keyring.acceptPlaintext) throw new CorruptItemError('a "not found" item without its authentication tag; refused, since encryption is configured');
      return undefined;
    }
    const [kind = '', ...steps] = (body.marker ?? 'string').split('+');
    if (!KINDS.has(kind) && !(negative && kind === NEGATIVE_MARKER)) throw new CorruptItemError(`unknown encoding marker ${JSON.stringify(body.marker)}`);
    let data = body.data;
    const encryption = /^aes256gcm2?:/.test(steps.at(-1) ?? '') ? steps.pop()! : undefined;
    const compression = steps.pop();
    if (steps.length > 0) throw new CorruptItemError(`unknown encoding marker ${JSON.stringify(body.marker)}`);
    if ((encryption !== undefined || compression !== undefined) && typeof data === 'string') {
      throw new CorruptItemError(`a ${body.marker} value must be stored as B`);
    }
    if (keyring !== undefined && encryption === undefined && !keyring.acceptPlaintext) {
      throw new CorruptItemError('the item is not encrypted; refused, since encryption is configured (see encryption.acceptPlaintext)');
    }
    if (encryption !== undefined) {
      if (keyring === undefined) throw new CorruptItemError('the item is encrypted but no encryption keys are configured');
      const [step, keyId = ''] = encryption.split(':');
      const v1 = step === ENCRYPTION_V1;
      if (v1 && !keyring.acceptV1Items) throw new CorruptItemError('the item was encrypted by dynamo-cache 0.1 (expiry not authenticated); refused (encryption.acceptV1Items)');
      data = await keyring.decrypt(keyId, data as Uint8Array, v1 ? associatedDataV1(binding.storageKey, body.marker!) : associatedData(binding, body.marker!), call);
    }
    if (kind === NEGATIVE_MARKER) {
      if (encryption === undefined || compression !== undefined || data.length !== 0) throw new CorruptItemError('a "not found" item must hold only its authentication tag');
      return undefined;
    }
    if (compression !== undefined) data = decompress(data as Uint8Array, compression, this.#s.maxDecodedBytes);
    const transformed = encryption !== undefined || compression !== undefined;
    if (kind === 'string' || kind === 'json') {
      if (typeof data === 'string') return { kind, data };
      if (!transformed) throw new CorruptItemError(`a ${kind} value must be stored as S`);
      try {
        return { kind, data: utf8.decode(data) };
      } catch (error) {
        throw new CorruptItemError(`a ${kind} value is not valid UTF-8`, { cause: error });
      }
    }
    if (typeof data === 'string') throw new CorruptItemError(`a ${kind} value must be stored as B`);
    return { kind: kind as 'bytes' | 'buffer', data };
  }
}

/** The authenticated data of an `aes256gcm2` item: the key, the full marker (with the key id) and the timing attributes, as a JSON array so no field can run into the next. */
function associatedData(binding: ItemBinding, marker: string): string {
  const fields = ['dynamo-cache/v2', binding.storageKey, marker, binding.expiresAt, binding.freshUntilMs ?? null, binding.fetchMs ?? null];
  // Appended only when there are tags, so items written without them (and by earlier versions) still decrypt.
  return JSON.stringify(binding.tags === undefined ? fields : [...fields, binding.tags]);
}

/** The authenticated data of an `aes256gcm` item written by dynamo-cache 0.1. */
function associatedDataV1(storageKey: string, marker: string): string {
  return `dynamo-cache/v1\n${storageKey}\n${marker}`;
}

import { compress, decompress, type CompressionOptions } from './compression.ts';
import type { Keyring } from './encryption.ts';
import { InvalidValueError } from './errors.ts';
import { CorruptItemError, type StoredBody } from './persistence/item.ts';

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
const ENCRYPTION = 'aes256gcm';

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
    data = JSON.stringify(value, rejectInexactValues);
  } catch (error) {
    if (error instanceof InvalidValueError) throw error;
    throw new InvalidValueError(`Cannot cache this value: ${(error as Error).message}`, { cause: error });
  }
  return { kind: 'json', data };
}

/**
 * `JSON.stringify` replacer that inspects the raw value (`this[key]`, before `toJSON`) so a `Date` or a
 * nested `undefined` is caught instead of being silently converted or dropped.
 */
function rejectInexactValues(this: unknown, key: string, converted: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  const where = key === '' ? 'value' : `property "${key}"`;
  switch (typeof raw) {
    case 'string':
    case 'boolean':
      return converted;
    case 'number':
      if (!Number.isFinite(raw)) throw new InvalidValueError(`Cannot cache ${where}: ${raw} is not a finite number`);
      return converted;
    case 'object': {
      if (raw === null) return converted;
      if (Array.isArray(raw)) {
        if (Object.keys(raw).length !== raw.length) throw new InvalidValueError(`Cannot cache ${where}: sparse array`);
        return converted;
      }
      const proto = Object.getPrototypeOf(raw);
      if ((proto === Object.prototype || proto === null) && typeof (raw as { toJSON?: unknown }).toJSON !== 'function') {
        return converted;
      }
      const name = (raw as object).constructor?.name ?? 'object';
      throw new InvalidValueError(`Cannot cache ${where}: a ${name} does not round-trip through JSON; convert it first`);
    }
    default:
      throw new InvalidValueError(`Cannot cache ${where}: ${typeof raw} values cannot be stored`);
  }
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

/** Settings of a {@link ValueCodec}. */
export interface CodecSettings {
  readonly compression: Required<CompressionOptions> | false;
  readonly keyring: Keyring | undefined;
  /** Largest decoded value accepted on read (bounds decompression). */
  readonly maxDecodedBytes: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Turns payloads into the bodies stored in DynamoDB and back: compression when it makes a value smaller,
 * then AES-256-GCM encryption when keys are configured. The encoding marker records each step
 * (`json`, `json+br`, `bytes+gzip+aes256gcm:2026-11`); a plain string with neither has no marker at all.
 */
export class ValueCodec {
  readonly #s: CodecSettings;

  constructor(settings: CodecSettings) {
    this.#s = settings;
  }

  /** The stored body of `payload` under `storageKey` (the key is bound into the encryption). */
  async seal(payload: Payload, storageKey: string): Promise<StoredBody> {
    const { compression, keyring } = this.#s;
    let marker: string = payload.kind;
    let data: string | Uint8Array = payload.data;
    if (compression !== false && payloadBytes(payload) >= compression.thresholdBytes && (payload.kind !== 'string' || compression.strings)) {
      const raw = typeof data === 'string' ? Buffer.from(data) : data;
      const compressed = compress(raw, compression.algorithm);
      if (compressed.byteLength < raw.byteLength) {
        data = compressed;
        marker += `+${compression.algorithm}`;
      }
    }
    if (keyring !== undefined) {
      marker += `+${ENCRYPTION}:${keyring.writeKeyId}`;
      data = await keyring.encrypt(typeof data === 'string' ? Buffer.from(data) : data, associatedData(storageKey, marker));
    }
    return { marker: marker === 'string' ? undefined : marker, data };
  }

  /** The payload of a stored body; throws `CorruptItemError` for anything it cannot decode. */
  async open(body: StoredBody, storageKey: string): Promise<Payload> {
    const [kind = '', ...steps] = (body.marker ?? 'string').split('+');
    if (!KINDS.has(kind)) throw new CorruptItemError(`unknown encoding marker ${JSON.stringify(body.marker)}`);
    let data = body.data;
    const encryption = steps.at(-1)?.startsWith(`${ENCRYPTION}:`) ? steps.pop()! : undefined;
    const compression = steps.pop();
    if (steps.length > 0) throw new CorruptItemError(`unknown encoding marker ${JSON.stringify(body.marker)}`);
    if ((encryption !== undefined || compression !== undefined) && typeof data === 'string') {
      throw new CorruptItemError(`a ${body.marker} value must be stored as B`);
    }
    if (encryption !== undefined) {
      if (this.#s.keyring === undefined) throw new CorruptItemError('the item is encrypted but no encryption keys are configured');
      data = await this.#s.keyring.decrypt(encryption.slice(ENCRYPTION.length + 1), data as Uint8Array, associatedData(storageKey, body.marker!));
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

/** What the encryption authenticates besides the data: the item's key and the full encoding marker (with the key id). */
function associatedData(storageKey: string, marker: string): string {
  return `dynamo-cache/v1\n${storageKey}\n${marker}`;
}

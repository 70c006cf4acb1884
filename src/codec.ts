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

/**
 * Turns a caller's value into a payload, or throws `InvalidValueError` for anything that would not come
 * back exactly: `undefined` (anywhere), functions, symbols, bigints, non-finite numbers, `Date`, `Map`,
 * class instances, sparse arrays and cycles. JSON would silently drop or rewrite these.
 */
export function encodeValue(value: unknown): Payload {
  if (typeof value === 'string') return { kind: 'string', data: value };
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

/** The stored form of a payload. A plain string gets no marker, so the original service reads it as is. */
export function toBody(payload: Payload): StoredBody {
  return { marker: payload.kind === 'string' ? undefined : payload.kind, data: payload.data };
}

/** The payload a stored body holds; throws `CorruptItemError` for an unknown marker or a type mismatch. */
export function fromBody(body: StoredBody): Payload {
  const kind = body.marker ?? 'string';
  const isText = typeof body.data === 'string';
  switch (kind) {
    case 'string':
    case 'json':
      if (!isText) throw new CorruptItemError(`a ${kind} value must be stored as S`);
      return { kind, data: body.data as string };
    case 'bytes':
    case 'buffer':
      if (isText) throw new CorruptItemError(`a ${kind} value must be stored as B`);
      return { kind, data: body.data as Uint8Array };
    default:
      throw new CorruptItemError(`unknown encoding marker ${JSON.stringify(body.marker)}`);
  }
}

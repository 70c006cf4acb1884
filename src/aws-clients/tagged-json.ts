/**
 * JSON for AWS SDK inputs and outputs, which hold what plain JSON cannot: `Date`s (timestamps), binary
 * members (`Uint8Array`), non-finite numbers and -0. Each is written as a tagged object `{ "$t": ..., "v": ... }`;
 * an object of the SDK's own that happens to have a `$t` key is wrapped as `{ "$t": "object", "v": ... }`,
 * so the encoding is one-to-one and decoding never mistakes data for a tag.
 */

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A value the encoding cannot represent exactly (a class instance, a function, a stream...). */
export class UnencodableValueError extends Error {
  override name = 'UnencodableValueError';
}

/** How {@link toTaggedJson} writes binary members and orders object keys. */
export interface TaggingStyle {
  /** The tagged form of a binary member (for storage: its base64; for a cache key: its hash). */
  bytes(data: Uint8Array): Json;
  /** Sort object keys, so that the same input written in any order gives the same text (cache keys). */
  sortKeys: boolean;
}

const TAG = '$t';

/**
 * The tagged JSON form of `value`. Object members that are `undefined` are left out, as the SDK treats them
 * as absent. Throws {@link UnencodableValueError} for anything else that is not plain data.
 */
export function toTaggedJson(value: unknown, style: TaggingStyle): Json {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      // JSON has no NaN, no infinities, and writes -0 as 0.
      return Number.isFinite(value) && !Object.is(value, -0) ? value : { [TAG]: 'number', v: Object.is(value, -0) ? '-0' : String(value) };
    case 'object': {
      if (value === null) return null;
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new UnencodableValueError('an invalid Date');
        return { [TAG]: 'date', v: value.getTime() };
      }
      if (value instanceof Uint8Array) return style.bytes(value);
      if (Array.isArray(value)) return value.map((item) => toTaggedJson(item, style));
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new UnencodableValueError(`a ${(value as object).constructor?.name ?? 'class instance'}`);
      const keys = Object.keys(value);
      if (style.sortKeys) keys.sort();
      const entries: [string, Json][] = [];
      for (const key of keys) {
        const member = (value as Record<string, unknown>)[key];
        if (member !== undefined) entries.push([key, toTaggedJson(member, style)]);
      }
      // fromEntries, not assignment: a "__proto__" member stays a member.
      const object: { [key: string]: Json } = Object.fromEntries(entries);
      return Object.hasOwn(object, TAG) ? { [TAG]: 'object', v: object } : object;
    }
    default:
      throw new UnencodableValueError(`a ${typeof value}`);
  }
}

/** The storage style: binary members as base64, keys in the SDK's order. */
export const STORED_STYLE: TaggingStyle = {
  bytes: (data) => ({ [TAG]: 'bytes', v: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') }),
  sortKeys: false,
};

/** The value {@link toTaggedJson} wrote in the {@link STORED_STYLE}. Throws on a tag it does not know. */
export function fromTaggedJson(json: Json): unknown {
  if (Array.isArray(json)) return json.map(fromTaggedJson);
  if (json === null || typeof json !== 'object') return json;
  const tag = Object.hasOwn(json, TAG) ? json[TAG] : undefined;
  if (tag === undefined) return fromTaggedMembers(json);
  const v = json.v;
  if (tag === 'date' && typeof v === 'number') return new Date(v);
  if (tag === 'bytes' && typeof v === 'string') return new Uint8Array(Buffer.from(v, 'base64'));
  if (tag === 'number' && typeof v === 'string') return Number(v);
  if (tag === 'object' && v !== null && typeof v === 'object' && !Array.isArray(v)) return fromTaggedMembers(v);
  throw new Error(`unknown tagged value ${JSON.stringify(tag)}`);
}

function fromTaggedMembers(object: { [key: string]: Json }): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).map(([key, member]) => [key, fromTaggedJson(member)]));
}

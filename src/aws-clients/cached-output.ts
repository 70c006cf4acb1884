import type { StoredError } from './service-errors.ts';
import { STORED_STYLE, fromTaggedJson, toTaggedJson, type Json } from './tagged-json.ts';

/**
 * What the cache holds for one call:
 * - `output`: the SDK's output, `$metadata` included, with its streaming body member (if any) as bytes;
 * - `error`: a "not found" error (a negative entry);
 * - `bypass`: the call cannot be cached (secret output, body too large, output not plain data): callers go
 *   to the service directly, without taking the refresh lease in turn (as Varnish's "hit-for-pass").
 */
export type CachedRecord =
  | { readonly kind: 'output'; readonly output: Record<string, unknown>; readonly body?: { readonly member: string; readonly bytes: Uint8Array } }
  | { readonly kind: 'error'; readonly error: StoredError }
  | { readonly kind: 'bypass'; readonly reason: string };

const VERSION = 1;

/**
 * The value the cache stores for a record. Without a body it is JSON (`{ v, output }`, `{ v, error }` or
 * `{ v, bypass }`), output in tagged JSON so `Date`s and binary members come back as they were. With a body
 * it is binary, so the body is stored as bytes (compressed, encrypted and chunked as any value): a 4-byte
 * big-endian header length, the header (`{ v, output, body: "<member>" }`) in UTF-8, then the body.
 * @throws UnencodableValueError when the output holds something other than plain data.
 */
export function encodeRecord(record: CachedRecord): Json | Uint8Array {
  switch (record.kind) {
    case 'error':
      return { v: VERSION, error: toTaggedJson(record.error, STORED_STYLE) };
    case 'bypass':
      return { v: VERSION, bypass: record.reason };
    case 'output': {
      const output = toTaggedJson(record.output, STORED_STYLE);
      if (record.body === undefined) return { v: VERSION, output };
      const header = Buffer.from(JSON.stringify({ v: VERSION, output, body: record.body.member }));
      const length = Buffer.alloc(4);
      length.writeUInt32BE(header.byteLength);
      return Buffer.concat([length, header, record.body.bytes]);
    }
  }
}

/** The record a stored value holds. Throws on anything {@link encodeRecord} did not write. */
export function decodeRecord(value: unknown): CachedRecord {
  if (value instanceof Uint8Array) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const headerEnd = 4 + bytes.readUInt32BE(0);
    const header = JSON.parse(bytes.toString('utf8', 4, headerEnd)) as { v?: unknown; output?: Json; body?: unknown };
    if (header.v !== VERSION || typeof header.body !== 'string' || header.output === undefined) throw new Error('not a cached SDK output');
    return { kind: 'output', output: decodeOutput(header.output), body: { member: header.body, bytes: value.subarray(headerEnd) } };
  }
  const record = value as { v?: unknown; output?: Json; error?: Json; bypass?: unknown } | null;
  if (record === null || typeof record !== 'object' || record.v !== VERSION) throw new Error('not a cached SDK output');
  if (record.output !== undefined) return { kind: 'output', output: decodeOutput(record.output) };
  if (record.error !== undefined) return { kind: 'error', error: fromTaggedJson(record.error) as StoredError };
  if (typeof record.bypass === 'string') return { kind: 'bypass', reason: record.bypass };
  throw new Error('not a cached SDK output');
}

function decodeOutput(json: Json): Record<string, unknown> {
  const output = fromTaggedJson(json);
  if (output === null || typeof output !== 'object' || Array.isArray(output)) throw new Error('not a cached SDK output');
  return output as Record<string, unknown>;
}

import type { Payload } from './codec.ts';
import type { Deadlines, Timing } from './freshness.ts';
import type { ChunkedBody, Lease, StoredBody, StoredRecord } from './persistence/item.ts';

/** A cached value (or a cached "not found") with its timing, still encoded: each caller decodes its own copy. */
export interface CacheEntry extends Timing {
  /** `undefined` for a cached "not found" (negative caching). */
  readonly payload: Payload | undefined;
}

/** What one item holds once read: the live entry, if any, and the refresh lease, if any. */
export interface ItemState {
  /** `undefined` when the item holds no value (only a lease) or its storage expiry has passed. */
  readonly entry: CacheEntry | undefined;
  readonly lease: Lease | undefined;
  /** The item exists but cannot be read: the next write replaces it. */
  readonly corrupt?: boolean;
}

/** The timing a stored record describes. */
export function timingOf(record: StoredRecord): Timing {
  const expiresAtMs = record.expiresAt * 1000;
  return {
    expiresAtMs,
    freshUntilMs: Math.min(record.freshUntilMs ?? expiresAtMs, expiresAtMs),
    ...(record.fetchMs === undefined ? {} : { fetchMs: record.fetchMs }),
  };
}

/**
 * The record that stores a body (a "not found" when `undefined` and not chunked) until `deadlines`. The
 * exact freshness deadline (`dc_fresh`) is always kept: the refresh lease's condition relies on it.
 */
export function recordOf(body: StoredBody | ChunkedBody | undefined, deadlines: Deadlines, fetchMs?: number): StoredRecord {
  const chunked = body !== undefined && 'generation' in body ? body : undefined;
  return {
    body: chunked === undefined ? (body as StoredBody | undefined) : undefined,
    ...(chunked === undefined ? {} : { chunked }),
    negative: body === undefined,
    expiresAt: deadlines.expiresAtSeconds,
    freshUntilMs: deadlines.freshUntilMs,
    ...(fetchMs === undefined ? {} : { fetchMs }),
  };
}

/** The entry a record describes, for the memory tier of the environment that wrote it. */
export function entryOf(payload: Payload | undefined, deadlines: Deadlines, fetchMs?: number): CacheEntry {
  return {
    payload,
    freshUntilMs: deadlines.freshUntilMs,
    expiresAtMs: deadlines.expiresAtSeconds * 1000,
    ...(fetchMs === undefined ? {} : { fetchMs }),
  };
}

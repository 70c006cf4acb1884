import { fromBody, toBody, type Payload } from './codec.ts';
import { hasExpired } from './expiry.ts';
import type { Deadlines, Timing } from './freshness.ts';
import type { Lease, StoredRecord } from './persistence/item.ts';

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

/**
 * The state of a stored record at `nowMs`. Throws `CorruptItemError` (or `SyntaxError` for invalid JSON)
 * when the value cannot be decoded, so the caller can count it and treat it as a miss.
 */
export function stateOf(record: StoredRecord, nowMs: number): ItemState {
  const lease = record.lease;
  if (hasExpired(record.expiresAt, nowMs) || (record.body === undefined && !record.negative)) return { entry: undefined, lease };
  let payload: Payload | undefined;
  if (record.body !== undefined) {
    payload = fromBody(record.body);
    // Parsed once here so a corrupt JSON payload is a miss now, not an exception in a caller later.
    if (payload.kind === 'json') JSON.parse(payload.data);
  }
  const expiresAtMs = record.expiresAt * 1000;
  return {
    entry: {
      payload,
      expiresAtMs,
      freshUntilMs: Math.min(record.freshUntilMs ?? expiresAtMs, expiresAtMs),
      ...(record.fetchMs === undefined ? {} : { fetchMs: record.fetchMs }),
    },
    lease,
  };
}

/**
 * The record that stores `payload` (or a "not found" when `undefined`) until `deadlines`. The exact
 * freshness deadline is kept (`dc_fresh`) unless it equals the whole-second expiry.
 */
export function recordOf(payload: Payload | undefined, deadlines: Deadlines, fetchMs?: number): StoredRecord {
  const freshIsExpiry = deadlines.freshUntilMs === deadlines.expiresAtSeconds * 1000;
  return {
    body: payload === undefined ? undefined : toBody(payload),
    negative: payload === undefined,
    expiresAt: deadlines.expiresAtSeconds,
    ...(freshIsExpiry ? {} : { freshUntilMs: deadlines.freshUntilMs }),
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

import { decodePayload, type Payload } from '../codec/value-codec.ts';
import type { Deadlines, Timing } from '../refresh/freshness.ts';
import type { ChunkedBody, StoredBody, StoredRecord, TagStamps } from './item.ts';

/** A cached value (or a cached "not found") with its timing, still encoded: each caller decodes its own copy. */
export interface CacheEntry extends Timing {
  /** `undefined` for a cached "not found" (negative caching). */
  readonly payload: Payload | undefined;
  /** Its tags, when it has any: it is answered only while their states still hold these tokens. */
  readonly tags?: TagStamps | undefined;
}

/**
 * A value already decoded (JSON parsed once, when the item was read and checked), for exactly one caller:
 * every caller must get its own copy, so the first to `take` it gets this one and the others decode theirs.
 */
export interface Decoded {
  readonly value: unknown;
  taken?: boolean;
}

/** The decoded value, if no caller took it yet. */
export function take(decoded: Decoded | undefined): Decoded | undefined {
  if (decoded === undefined || decoded.taken) return undefined;
  decoded.taken = true;
  return decoded;
}

/** The value of an entry, decoded: a fresh copy (`undefined` for a cached "not found"). */
export function decodeEntry(entry: CacheEntry): unknown {
  return entry.payload === undefined ? undefined : decodePayload(entry.payload);
}

/** What one item holds once read. */
export interface ItemState {
  /** `undefined` when there is no item, it holds no value, or its storage expiry has passed. */
  readonly entry: CacheEntry | undefined;
  /**
   * The freshness the item claims (`dc_fresh`, epoch ms; 0 for none), readable or not: a refresh's lease
   * and its write are conditional on it, so a refresh never replaces a newer value.
   */
  readonly seenFreshMs: number;
  /** The item exists but cannot be read (or authenticated): the next write replaces it. */
  readonly corrupt?: boolean;
  /** The entry's JSON value, parsed once on read, for the caller that read it. */
  readonly decoded?: Decoded | undefined;
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
 * The record that stores a body (or a "not found": `negative`) until `deadlines`. The exact freshness
 * deadline (`dc_fresh`) is always kept: the refresh lease and the refresh's write rely on it.
 */
export function recordOf(body: StoredBody | ChunkedBody | undefined, negative: boolean, deadlines: Deadlines, fetchMs?: number, tags?: TagStamps): StoredRecord {
  const chunked = body !== undefined && 'generation' in body ? body : undefined;
  return {
    body: chunked === undefined ? (body as StoredBody | undefined) : undefined,
    ...(chunked === undefined ? {} : { chunked }),
    negative,
    expiresAt: deadlines.expiresAtSeconds,
    freshUntilMs: deadlines.freshUntilMs,
    ...(fetchMs === undefined ? {} : { fetchMs }),
    ...(tags === undefined ? {} : { tags }),
  };
}

/** The entry a record describes, for the memory tier of the environment that wrote it. */
export function entryOf(payload: Payload | undefined, deadlines: Deadlines, fetchMs?: number, tags?: TagStamps): CacheEntry {
  return {
    payload,
    freshUntilMs: deadlines.freshUntilMs,
    expiresAtMs: deadlines.expiresAtSeconds * 1000,
    ...(fetchMs === undefined ? {} : { fetchMs }),
    ...(tags === undefined ? {} : { tags }),
  };
}

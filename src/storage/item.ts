import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/**
 * The DynamoDB item schema.
 *
 * Three attributes have configurable names; their defaults are the original Python `CacheService`'s, so
 * `dynamo-cache` is a drop-in on its table. Everything else the library stores lives in `dc_*` attributes
 * that the original service never looks at.
 */
export interface AttributeNames {
  /** String partition key. Default `id`. */
  readonly key: string;
  /** The cached value: `S` for text, `B` for binary or transformed data. Default `cached_value`. */
  readonly value: string;
  /** Expiry, a Number of epoch seconds: point the table's TTL at it. Default `expires_at`. */
  readonly expiresAt: string;
}

/** The original Python service's attribute names. */
export const DEFAULT_ATTRIBUTE_NAMES: AttributeNames = { key: 'id', value: 'cached_value', expiresAt: 'expires_at' };

/** Names of the library's own attributes. Not configurable: they never clash with the original schema. */
export const META = {
  /** How the value is encoded (`json`, `bytes`, `json+gzip`...; `none` for a cached "not found"). Absent: a plain string. */
  encoding: 'dc_enc',
  /** Epoch ms until which the value is fresh (exact; the expiry is whole seconds and may add a stale window). Absent (items the original service wrote): fresh until expiry. */
  freshUntil: 'dc_fresh',
  /** On a lease item: epoch ms at which the refresh lease expires. */
  lease: 'dc_lease',
  /** On a lease item: who holds the refresh lease. */
  leaseOwner: 'dc_owner',
  /** On a lease item: the freshness (`dc_fresh`, epoch ms; 0 for none) of the value the holder is replacing. */
  leaseFor: 'dc_for',
  /** On a lease item, with encryption: `<key id>:<HMAC>` over the lease, so a forged lease is ignored. */
  signature: 'dc_sig',
  /** On a lease item: `true` when the holder's refresh failed (the lease then ends at once), so its waiters may answer stale. */
  leaseFailed: 'dc_failed',
  /** On a failed lease item: epoch ms until which callers with a value to answer (within `staleIfErrorSeconds`) answer it rather than refresh again. */
  leaseRetry: 'dc_retry',
  /** How long the fetch that produced the value took, in ms (for probabilistic early refresh). */
  fetchMs: 'dc_fetch_ms',
  /** On the head item of a large value: how many chunk items hold it. */
  chunks: 'dc_chunks',
  /** On the head item of a large value: the generation id its chunks are stored under. */
  generation: 'dc_gen',
  /** On the head item of a large value: the SHA-256 (base64url) of the whole stored value. */
  checksum: 'dc_sum',
  /** On the head item of a large value: its stored size in bytes. */
  size: 'dc_size',
  /** On a namespace's metadata item: the current generation (bumped by `clear()`). */
  namespaceGeneration: 'dc_generation',
  /** On a tagged value's item: a map from each tag (its HMAC with `hashKeys`) to the tag state's token it was written under. */
  tags: 'dc_tags',
} as const;

/** Marker of a chunk item (a piece of a large value); chunks are only read through their head item. */
export const CHUNK_MARKER = 'chunk';

/** Where a large value's chunks are: the head item holds this instead of the value. */
export interface ChunkedBody {
  /** The encoding marker of the reassembled body. */
  readonly marker: string | undefined;
  readonly count: number;
  readonly generation: string;
  readonly checksum: string;
  readonly size: number;
}

/**
 * Marker of a cached "not found" (negative caching): the item has no value attribute. With encryption the
 * marker is `none+aes256gcm2:<key id>` and the value holds an authentication tag over the item's timing.
 */
export const NEGATIVE_MARKER = 'none';

/** Marker of a refresh lease item (`<namespace>:#dc:l:<hash of the value's key>`). */
export const LEASE_MARKER = 'lease';

/** The stored form of a value: the encoding marker and the data as DynamoDB holds it. */
export interface StoredBody {
  /** `undefined` for a plain string written with no marker (as the original service writes). */
  readonly marker: string | undefined;
  readonly data: string | Uint8Array;
}

/** A refresh lease held by one caller, kept in its own small item beside the value's. */
export interface Lease {
  readonly untilMs: number;
  readonly owner: string;
  /** The freshness of the value the holder set out to replace (epoch ms, 0 for none): a lease taken for an older value than the one now stored is over. */
  readonly forFreshMs: number;
  /**
   * Set when the holder's refresh failed: its waiters may then answer a stale value within `staleIfErrorSeconds`.
   * A lease given back without it (deleted) ended without a value for another reason, which a stale value must not hide.
   */
  readonly failed?: boolean;
  /**
   * On a failed lease: epoch ms before which no caller that has a value to answer (within `staleIfErrorSeconds`)
   * refreshes again, so a failing upstream is asked about once per backoff across the fleet, not once per caller.
   */
  readonly retryAtMs?: number;
  /** `<key id>:<HMAC>` with encryption. */
  readonly signature?: string;
}

/**
 * The tags of a value, each with the token of the tag's state when the value was written (see
 * `TagStates`): the value is valid while every tag still has that token. Sorted by tag.
 */
export type TagStamps = ReadonlyArray<readonly [tag: string, token: string]>;

/** One cache item as read from or written to DynamoDB, before the value is decoded. */
export interface StoredRecord {
  /**
   * The value; `undefined` for a plain cached "not found" (`negative`), a large value (`chunked`), or an
   * empty item (one that held only a lease, written by an earlier version). An encrypted "not found" has a
   * body: its authentication tag.
   */
  readonly body: StoredBody | undefined;
  /** A large value stored in chunk items. */
  readonly chunked?: ChunkedBody;
  /** A cached "not found". */
  readonly negative?: boolean;
  /** Epoch seconds; fractional values (written by the original service) are accepted on read. */
  readonly expiresAt: number;
  /** Epoch ms until which the value is fresh; absent when fresh until `expiresAt`. */
  readonly freshUntilMs?: number;
  readonly fetchMs?: number;
  /** The value's tags (absent when it has none, and in items of earlier versions). */
  readonly tags?: TagStamps;
}

/** An item that is not a cache item this library can read: wrong types, missing attributes. */
export class CorruptItemError extends Error {
  override name = 'CorruptItemError';
}

/** Builds the DynamoDB item for `record` under partition key `storageKey`. */
export function toItem(names: AttributeNames, storageKey: string, record: StoredRecord): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    [names.key]: { S: storageKey },
    [names.expiresAt]: { N: String(record.expiresAt) },
  };
  const { body } = record;
  if (body !== undefined) item[names.value] = typeof body.data === 'string' ? { S: body.data } : { B: body.data };
  const marker = (body ?? record.chunked)?.marker ?? (record.negative ? NEGATIVE_MARKER : undefined);
  if (marker !== undefined) item[META.encoding] = { S: marker };
  if (record.chunked !== undefined) {
    item[META.chunks] = { N: String(record.chunked.count) };
    item[META.generation] = { S: record.chunked.generation };
    item[META.checksum] = { S: record.chunked.checksum };
    item[META.size] = { N: String(record.chunked.size) };
  }
  if (record.freshUntilMs !== undefined) item[META.freshUntil] = { N: String(record.freshUntilMs) };
  if (record.fetchMs !== undefined) item[META.fetchMs] = { N: String(record.fetchMs) };
  if (record.tags !== undefined) item[META.tags] = { M: Object.fromEntries(record.tags.map(([tag, token]) => [tag, { S: token }])) };
  return item;
}

/**
 * Reads a record from a DynamoDB item; throws `CorruptItemError` when its shape is wrong. A refresh lease
 * an earlier version kept on the value's item (`dc_lease`, `dc_owner`) is ignored: leases now live in their
 * own item, and an item that held only a lease reads as empty.
 */
export function fromItem(names: AttributeNames, item: Record<string, AttributeValue>): StoredRecord {
  const expiresAt = requireNumber(item, names.expiresAt);
  const marker = optional(item, META.encoding, 'S');
  const freshUntil = optional(item, META.freshUntil, 'N');
  const fetchMs = optional(item, META.fetchMs, 'N');
  const tags = item[META.tags];
  const value = item[names.value];
  let body: StoredBody | undefined;
  if (value?.S !== undefined) body = { marker, data: value.S };
  else if (value?.B !== undefined) body = { marker, data: value.B };
  else if (value !== undefined) throw new CorruptItemError(`${names.value} is neither S nor B`);
  const negative = marker === NEGATIVE_MARKER || (marker?.startsWith(`${NEGATIVE_MARKER}+`) ?? false);
  if (marker === NEGATIVE_MARKER && body !== undefined) throw new CorruptItemError('a "not found" item must not hold a value');
  if (negative && marker !== NEGATIVE_MARKER && body === undefined) throw new CorruptItemError('an encrypted "not found" item must hold its tag');
  const chunked = optional(item, META.chunks, 'N') === undefined ? undefined : chunkedBody(item, marker);
  if (chunked !== undefined && (body !== undefined || negative)) throw new CorruptItemError('a chunked item must not hold a value');
  return {
    body,
    ...(chunked === undefined ? {} : { chunked }),
    negative,
    expiresAt,
    ...(freshUntil === undefined ? {} : { freshUntilMs: toNumber(META.freshUntil, freshUntil) }),
    ...(fetchMs === undefined ? {} : { fetchMs: toNumber(META.fetchMs, fetchMs) }),
    ...(tags === undefined ? {} : { tags: tagStamps(tags) }),
  };
}

/** The tags of a value's item (`dc_tags`, a map of strings), sorted by tag. */
function tagStamps(attribute: AttributeValue): TagStamps {
  if (attribute.M === undefined) throw new CorruptItemError(`${META.tags} is not of type M`);
  const stamps = Object.entries(attribute.M).map(([tag, token]): [string, string] => {
    if (token.S === undefined) throw new CorruptItemError(`${META.tags} holds a token that is not of type S`);
    return [tag, token.S];
  });
  return stamps.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The freshness an item claims (`dc_fresh`), even when the rest of it cannot be read: a refresh's write is
 * conditional on the stored value being no fresher than the one it replaces, and must be able to replace
 * an unreadable item. `0` when the item has none.
 */
export function claimedFreshness(item: Record<string, AttributeValue> | undefined): number {
  const value = Number(item?.[META.freshUntil]?.N);
  return Number.isFinite(value) ? value : 0;
}

/** The lease item for `lease`: small (well under 1 KB), so taking it costs one write unit. */
export function leaseItem(names: AttributeNames, leaseKey: string, lease: Lease): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    [names.key]: { S: leaseKey },
    [names.expiresAt]: { N: String(Math.ceil(lease.untilMs / 1000)) },
    [META.encoding]: { S: LEASE_MARKER },
    [META.lease]: { N: String(lease.untilMs) },
    [META.leaseOwner]: { S: lease.owner },
    [META.leaseFor]: { N: String(lease.forFreshMs) },
  };
  if (lease.failed === true) item[META.leaseFailed] = { BOOL: true };
  if (lease.retryAtMs !== undefined) item[META.leaseRetry] = { N: String(lease.retryAtMs) };
  if (lease.signature !== undefined) item[META.signature] = { S: lease.signature };
  return item;
}

/** The lease a lease item holds, or `undefined` when it is not a well-formed lease item. */
export function leaseOf(item: Record<string, AttributeValue> | undefined): Lease | undefined {
  if (item?.[META.encoding]?.S !== LEASE_MARKER) return undefined;
  const untilMs = Number(item[META.lease]?.N);
  const forFreshMs = Number(item[META.leaseFor]?.N);
  const owner = item[META.leaseOwner]?.S;
  if (!Number.isFinite(untilMs) || !Number.isFinite(forFreshMs) || owner === undefined) return undefined;
  const signature = item[META.signature]?.S;
  const retryAtMs = Number(item[META.leaseRetry]?.N);
  return {
    untilMs,
    owner,
    forFreshMs,
    ...(item[META.leaseFailed]?.BOOL === true ? { failed: true } : {}),
    ...(Number.isFinite(retryAtMs) ? { retryAtMs } : {}),
    ...(signature === undefined ? {} : { signature }),
  };
}

function chunkedBody(item: Record<string, AttributeValue>, marker: string | undefined): ChunkedBody {
  const count = requireNumber(item, META.chunks);
  const size = requireNumber(item, META.size);
  const generation = optional(item, META.generation, 'S');
  const checksum = optional(item, META.checksum, 'S');
  if (!Number.isInteger(count) || count < 1 || count > 1000 || !Number.isInteger(size) || size < 0 || !generation || !checksum) {
    throw new CorruptItemError('the head of a chunked value is incomplete');
  }
  return { marker, count, generation, checksum, size };
}

function requireNumber(item: Record<string, AttributeValue>, name: string): number {
  const value = optional(item, name, 'N');
  if (value === undefined) throw new CorruptItemError(`${name} is missing or not of type N`);
  return toNumber(name, value);
}

function toNumber(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value)) throw new CorruptItemError(`${name} is not a number`);
  return value;
}

/** The attribute's value when present; throws when it is present with another type. */
function optional(item: Record<string, AttributeValue>, name: string, type: 'S' | 'N'): string | undefined {
  const attribute = item[name] as Record<string, unknown> | undefined;
  if (attribute === undefined) return undefined;
  const value = attribute[type];
  if (typeof value !== 'string') throw new CorruptItemError(`${name} is not of type ${type}`);
  return value;
}

/** A chunk item: one piece of a large value, stored under its own key with the head's expiry. */
export function chunkItem(names: AttributeNames, chunkKey: string, piece: Uint8Array, expiresAt: number): Record<string, AttributeValue> {
  return {
    [names.key]: { S: chunkKey },
    [names.value]: { B: piece },
    [names.expiresAt]: { N: String(expiresAt) },
    [META.encoding]: { S: CHUNK_MARKER },
  };
}

/** The bytes of a chunk item; throws `CorruptItemError` when it is not one. */
export function chunkBytes(names: AttributeNames, item: Record<string, AttributeValue>): Uint8Array {
  const value = item[names.value]?.B;
  if (value === undefined || item[META.encoding]?.S !== CHUNK_MARKER) throw new CorruptItemError('a chunk item is malformed');
  return value;
}

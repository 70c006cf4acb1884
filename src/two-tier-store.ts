import { createHash, randomUUID } from 'node:crypto';
import { bodyBytes, isTextBody, type Payload, type ValueCodec } from './codec.ts';
import { entryOf, recordOf, timingOf, type CacheEntry, type ItemState } from './entry.ts';
import { hasExpired } from './expiry.ts';
import type { Deadlines } from './freshness.ts';
import type { KeyMapper } from './keys.ts';
import type { CacheLogger } from './logger.ts';
import type { MemoryTier } from './memory-tier.ts';
import type { DynamoStore, Item, LeaseRequest } from './persistence/dynamo-store.ts';
import { CorruptItemError, chunkBytes, chunkItem, fromItem, toItem, type AttributeNames, type ChunkedBody, type StoredBody, type StoredRecord } from './persistence/item.ts';
import type { FailureKind } from './resilience.ts';
import type { StatsRecorder } from './stats.ts';

/** The result of reading one item: its state, or `ok: false` and why when DynamoDB failed (already logged and counted). */
export type ReadResult = { readonly ok: true; readonly state: ItemState } | { readonly ok: false; readonly failure: FailureKind };

/** The result of a lease attempt, with the item's state when the attempt lost and DynamoDB returned it. */
export type LeaseResult =
  | { readonly ok: false }
  | { readonly ok: true; readonly acquired: true }
  | { readonly ok: true; readonly acquired: false; readonly state: ItemState | undefined };

/**
 * Largest stored value kept in the item itself. DynamoDB's item limit is 400 KB, key and attribute names
 * included; a larger value is split into chunk items of this size.
 */
export const INLINE_VALUE_BYTES = 390_000;

/** Settings of a {@link TwoTierStore}. */
export interface TwoTierSettings {
  readonly memory: MemoryTier | undefined;
  readonly dynamo: DynamoStore;
  readonly keys: KeyMapper;
  readonly codec: ValueCodec;
  readonly attributes: AttributeNames;
  /** Largest stored (compressed, encrypted) value; larger ones are not cached. */
  readonly maxValueBytes: number;
  /** Time budget of reading or writing a large value's chunks. */
  readonly largeValueTimeoutMs: number;
  readonly stats: StatsRecorder;
  readonly logger: CacheLogger;
}

const NOTHING: ItemState = { entry: undefined, lease: undefined };
const CORRUPT: ItemState = { entry: undefined, lease: undefined, corrupt: true };
/** A chunk read failed for a DynamoDB reason (already logged): the value is unavailable, not corrupt. */
const UNAVAILABLE = Symbol('unavailable');

/**
 * The memory tier and the DynamoDB table as one store of entries. Writes seal values (compression,
 * encryption), split large ones into chunk items and write both tiers; reads reassemble and open them (an
 * unreadable item is logged, counted and read as empty), and fresh entries read from DynamoDB fill the
 * memory tier. Never throws for a cache problem.
 */
export class TwoTierStore {
  readonly #s: TwoTierSettings;

  constructor(settings: TwoTierSettings) {
    this.#s = settings;
  }

  /** The fresh entry this environment holds in memory, if any. */
  fromMemory(storageKey: string, nowMs: number): CacheEntry | undefined {
    return this.#s.memory?.get(storageKey, nowMs);
  }

  /** Reads the item under `storageKey` from DynamoDB; a fresh entry is copied into the memory tier. */
  async read(storageKey: string, consistent?: boolean): Promise<ReadResult> {
    const outcome = await this.#s.dynamo.get(storageKey, consistent);
    if (!outcome.ok) return { ok: false, failure: outcome.kind };
    const state = await this.#decode(storageKey, outcome.value);
    // Chunks that could not be read are a failure of DynamoDB, already logged with its kind.
    return state === UNAVAILABLE ? { ok: false, failure: 'server' } : { ok: true, state };
  }

  /** Reads many items (absent and failed ones are left out). */
  async readMany(storageKeys: readonly string[]): Promise<Map<string, ItemState>> {
    const { items } = await this.#s.dynamo.batchGet(storageKeys);
    const states = new Map<string, ItemState>();
    await Promise.all(
      [...items].map(async ([storageKey, item]) => {
        const state = await this.#decode(storageKey, item);
        if (state !== UNAVAILABLE) states.set(storageKey, state);
      }),
    );
    return states;
  }

  /**
   * Stores `payload` (a "not found" when `undefined`) until `deadlines`, in memory and in DynamoDB.
   * Resolves `false`, with a warning, when DynamoDB failed, the value could not be sealed (encryption keys
   * unavailable), or its stored form exceeds `maxValueBytes` (then it is not kept in memory either).
   */
  async write(storageKey: string, payload: Payload | undefined, deadlines: Deadlines, fetchMs?: number): Promise<boolean> {
    let body: StoredBody | undefined;
    let size = 0;
    if (payload !== undefined) {
      try {
        body = await this.#s.codec.seal(payload, storageKey);
      } catch (error) {
        this.#s.stats.increment('errors');
        this.#s.logger.warn('dynamo-cache: value could not be encrypted; not stored', { key: storageKey, errorName: (error as Error)?.name, errorMessage: (error as Error)?.message });
        return false;
      }
      size = bodyBytes(body);
      if (size > this.#s.maxValueBytes) {
        this.#s.stats.increment('oversized');
        this.#s.memory?.delete(storageKey);
        this.#s.logger.warn('dynamo-cache: value too large to cache; not stored', { key: storageKey, bytes: size, maxValueBytes: this.#s.maxValueBytes });
        return false;
      }
    }
    this.#s.memory?.set(storageKey, entryOf(payload, deadlines, fetchMs), Date.now());
    const stored = body !== undefined && size > INLINE_VALUE_BYTES ? await this.#writeChunks(body, deadlines) : body;
    if (stored === false) return false;
    const outcome = await this.#s.dynamo.put(toItem(this.#s.attributes, storageKey, recordOf(stored, deadlines, fetchMs)));
    if (outcome.ok) this.#s.stats.increment('writes');
    return outcome.ok;
  }

  /** Removes the entry from memory and DynamoDB (a large value's chunks expire with their TTL). */
  async delete(storageKey: string): Promise<boolean> {
    this.#s.memory?.delete(storageKey);
    const outcome = await this.#s.dynamo.delete(storageKey);
    if (outcome.ok) this.#s.stats.increment('deletes');
    return outcome.ok;
  }

  /** Tries to take the refresh lease (see `DynamoStore.acquireLease`). */
  async acquireLease(storageKey: string, request: LeaseRequest): Promise<LeaseResult> {
    const outcome = await this.#s.dynamo.acquireLease(storageKey, request);
    if (!outcome.ok) return { ok: false };
    if (outcome.value.acquired) return { ok: true, acquired: true };
    const item = outcome.value.item;
    const state = item === undefined ? undefined : await this.#decode(storageKey, item);
    return { ok: true, acquired: false, state: state === UNAVAILABLE ? undefined : state };
  }

  /** Gives back a lease (best effort: a failure only means the lease runs out by itself). */
  async releaseLease(storageKey: string, owner: string): Promise<void> {
    await this.#s.dynamo.releaseLease(storageKey, owner);
  }

  /**
   * Writes a large body as chunk items under a new generation id, before the head item that points to
   * them is written: a reader sees the old head with its old chunks or the new head with its new chunks,
   * never a mix. Old chunks are left for DynamoDB's TTL, since a reader may still be reading them.
   */
  async #writeChunks(body: StoredBody, deadlines: Deadlines): Promise<ChunkedBody | false> {
    const bytes = typeof body.data === 'string' ? Buffer.from(body.data) : body.data;
    const generation = randomUUID();
    const items: Item[] = [];
    for (let offset = 0, index = 0; offset < bytes.byteLength; offset += INLINE_VALUE_BYTES, index++) {
      items.push(chunkItem(this.#s.attributes, this.#s.keys.chunkKey(generation, index), bytes.subarray(offset, offset + INLINE_VALUE_BYTES), deadlines.expiresAtSeconds));
    }
    if (!(await this.#s.dynamo.batchWrite(items, this.#s.largeValueTimeoutMs))) return false;
    return { marker: body.marker, count: items.length, generation, checksum: checksum(bytes), size: bytes.byteLength };
  }

  /** Reads a large value's chunks in one BatchGetItem round trip and checks the whole against its checksum. */
  async #readChunks(chunked: ChunkedBody): Promise<StoredBody | typeof UNAVAILABLE> {
    const keys = Array.from({ length: chunked.count }, (_, index) => this.#s.keys.chunkKey(chunked.generation, index));
    // Consistent: chunks are written just before their head, and an eventually consistent read may miss them.
    const { items, complete } = await this.#s.dynamo.batchGet(keys, true, this.#s.largeValueTimeoutMs);
    if (!complete) return UNAVAILABLE;
    const pieces = keys.map((key, index) => {
      const item = items.get(key);
      if (item === undefined) throw new CorruptItemError(`chunk ${index + 1} of ${chunked.count} is missing`);
      return chunkBytes(this.#s.attributes, item);
    });
    const bytes = Buffer.concat(pieces);
    if (bytes.byteLength !== chunked.size || checksum(bytes) !== chunked.checksum) throw new CorruptItemError('the chunks do not match their checksum');
    if (!isTextBody(chunked.marker)) return { marker: chunked.marker, data: bytes };
    try {
      return { marker: chunked.marker, data: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
    } catch (error) {
      throw new CorruptItemError('a chunked text value is not valid UTF-8', { cause: error });
    }
  }

  /**
   * What the item under `storageKey` holds, for operators (`cache.inspect`, the CLI): its record and, when
   * it can be decoded, the payload, or why not. Reads DynamoDB only; counts and memory are left alone.
   */
  async inspect(storageKey: string): Promise<{ ok: false } | { ok: true; record: StoredRecord | undefined; storedBytes: number; payload?: Payload; problem?: string }> {
    const outcome = await this.#s.dynamo.get(storageKey, true);
    if (!outcome.ok) return { ok: false };
    if (outcome.value === undefined) return { ok: true, record: undefined, storedBytes: 0 };
    let record: StoredRecord | undefined;
    try {
      record = fromItem(this.#s.attributes, outcome.value);
      const body = record.chunked === undefined ? record.body : await this.#readChunks(record.chunked);
      if (body === UNAVAILABLE) return { ok: false };
      const storedBytes = record.chunked?.size ?? (body === undefined ? 0 : bodyBytes(body));
      if (body === undefined) return { ok: true, record, storedBytes };
      const payload = await this.#s.codec.open(body, storageKey);
      if (payload.kind === 'json') JSON.parse(payload.data);
      return { ok: true, record, storedBytes, payload };
    } catch (error) {
      if (!(error instanceof CorruptItemError) && !(error instanceof SyntaxError)) throw error;
      return { ok: true, record, storedBytes: 0, problem: error.message };
    }
  }

  async #decode(storageKey: string, item: Item | undefined): Promise<ItemState | typeof UNAVAILABLE> {
    if (item === undefined) return NOTHING;
    try {
      const record = fromItem(this.#s.attributes, item);
      const lease = record.lease;
      if (hasExpired(record.expiresAt, Date.now())) return { entry: undefined, lease };
      const body = record.chunked === undefined ? record.body : await this.#readChunks(record.chunked);
      if (body === UNAVAILABLE) return UNAVAILABLE;
      // No value and no "not found": an item that only holds a lease.
      if (body === undefined && !record.negative) return { entry: undefined, lease };
      const payload = body === undefined ? undefined : await this.#s.codec.open(body, storageKey);
      // Parsed once here so a corrupt JSON payload is a miss now, not an exception in a caller later.
      if (payload?.kind === 'json') JSON.parse(payload.data);
      const entry: CacheEntry = { payload, ...timingOf(record) };
      this.#s.memory?.set(storageKey, entry, Date.now());
      return { entry, lease };
    } catch (error) {
      if (!(error instanceof CorruptItemError) && !(error instanceof SyntaxError)) throw error;
      this.#s.stats.increment('errors');
      this.#s.stats.increment('corruptItems');
      this.#s.logger.warn('dynamo-cache: unreadable cache item treated as a miss', { key: storageKey, errorName: error.name, errorMessage: error.message });
      return CORRUPT;
    }
  }
}

function checksum(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64url');
}

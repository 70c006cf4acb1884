import { hash, randomUUID } from 'node:crypto';
import { bodyBytes, isTextBody, utf8, type ItemBinding, type Payload, type ValueCodec } from '../codec/value-codec.ts';
import { KeysUnavailableError, type Keyring } from '../codec/encryption.ts';
import { entryOf, recordOf, timingOf, type CacheEntry, type ItemState } from './entry.ts';
import { hasExpired } from '../refresh/expiry.ts';
import type { Deadlines } from '../refresh/freshness.ts';
import type { KeyMapper, Slot } from './keys.ts';
import type { CacheLogger } from '../observability/logger.ts';
import type { MemoryTier } from './memory-tier.ts';
import type { DynamoStore, Item } from './dynamo-store.ts';
import {
  CorruptItemError,
  chunkBytes,
  chunkItem,
  claimedFreshness,
  fromItem,
  leaseItem,
  leaseOf,
  toItem,
  type AttributeNames,
  type ChunkedBody,
  type Lease,
  type StoredBody,
  type StoredRecord,
  type TagStamps,
} from './item.ts';
import { UNBOUNDED, type CallBudget, type FailureKind } from '../resilience/dynamo-guard.ts';
import type { StatsRecorder } from '../observability/stats.ts';
import type { TagStates } from '../invalidation/tag-states.ts';

/** The result of reading one item: its state, or `ok: false` and why when DynamoDB failed (already logged and counted). */
export type ReadResult = { readonly ok: true; readonly state: ItemState } | { readonly ok: false; readonly failure: FailureKind };

/** The result of reading a value's item and its lease item together. */
export type LeaseReadResult = { readonly ok: true; readonly state: ItemState; readonly lease: Lease | undefined } | { readonly ok: false; readonly failure: FailureKind };

/**
 * The result of a lease attempt. When it lost, `lease` is the lease that stands in the way (when DynamoDB
 * returned it or it could be read); `untrusted` when that lease could not be authenticated (encryption on):
 * the caller then fetches without coordination rather than wait on a lease nobody may hold.
 */
export type LeaseResult =
  | { readonly ok: false }
  | { readonly ok: true; readonly acquired: true }
  | { readonly ok: true; readonly acquired: false; readonly lease: Lease | undefined; readonly untrusted: boolean };

/** What a lease attempt needs. */
export interface LeaseRequest {
  readonly owner: string;
  readonly nowMs: number;
  readonly untilMs: number;
  /** The freshness of the value this caller saw (`ItemState.seenFreshMs`, or a fresh entry's `freshUntilMs` for an early refresh). */
  readonly forFreshMs: number;
}

/** How a value is written: a plain `set` replaces whatever is there, a refresh only an older value. */
export interface WriteOptions {
  /** How long the fetch took, kept for early refresh. */
  readonly fetchMs?: number | undefined;
  /** Write only if the stored value is fresh until no later than this (the freshness the refresh saw). */
  readonly notFresherThanMs?: number | undefined;
  /** The value's tags, stamped with their states' tokens (see `TagStates`). */
  readonly tags?: TagStamps | undefined;
}

/** Settings of a {@link TwoTierStore}. */
export interface TwoTierSettings {
  readonly memory: MemoryTier | undefined;
  readonly dynamo: DynamoStore;
  readonly keys: KeyMapper;
  readonly codec: ValueCodec;
  /** The encryption keys, when configured: leases are then signed, and unsigned leases ignored. */
  readonly keyring: Keyring | undefined;
  readonly attributes: AttributeNames;
  /** Largest stored (compressed, encrypted) value; larger ones are not cached. */
  readonly maxValueBytes: number;
  /** Time budget of reading or writing a large value's chunks. */
  readonly largeValueTimeoutMs: number;
  /**
   * Largest stored value kept in the item itself (390,000 bytes: DynamoDB's item limit is 400 KB, key and
   * attribute names included); a larger value is split into chunk items of this size.
   */
  readonly inlineValueBytes: number;
  readonly stats: StatsRecorder;
  readonly logger: CacheLogger;
  /** Judges tagged entries before they are answered (a tagged entry without it is never answered). */
  readonly tags?: TagStates | undefined;
}

const NOTHING: ItemState = { entry: undefined, seenFreshMs: 0 };
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

  /** The fresh entry this environment holds in memory for the slot, if any. */
  fromMemory(slot: Slot, nowMs: number): CacheEntry | undefined {
    const entry = this.#s.memory?.get(slot.memoryKey, slot.generation, nowMs);
    // A tagged entry only while its tags' states, known here, still hold its tokens.
    return entry?.tags === undefined ? entry : this.#s.tags?.fresh(entry, nowMs);
  }

  /** Reads the slot's item from DynamoDB; a fresh entry is copied into the memory tier. */
  async read(slot: Slot & { storageKey: string }, call: CallBudget, consistent?: boolean): Promise<ReadResult> {
    const outcome = await this.#s.dynamo.get(slot.storageKey, { consistent, call });
    if (!outcome.ok) return { ok: false, failure: outcome.kind };
    // Nothing stored (every miss): no decoding, and no promise to wait for.
    const state = outcome.value === undefined ? NOTHING : await this.#decode(slot, outcome.value, call);
    // Chunks that could not be read are a failure of DynamoDB, already logged with its kind.
    return state === UNAVAILABLE ? { ok: false, failure: 'server' } : { ok: true, state };
  }

  /** Reads the slot's item and its lease item in one strongly consistent BatchGetItem (a lease waiter's poll). */
  async readWithLease(slot: Slot & { storageKey: string }, call: CallBudget): Promise<LeaseReadResult> {
    const leaseKey = this.#s.keys.leaseKey(slot.storageKey);
    const { items, complete, failure } = await this.#s.dynamo.batchGet([slot.storageKey, leaseKey], { consistent: true, call });
    if (!complete) return { ok: false, failure: failure ?? 'server' };
    const state = await this.#decode(slot, items.get(slot.storageKey), call);
    if (state === UNAVAILABLE) return { ok: false, failure: 'server' };
    const lease = await this.#trustedLease(leaseKey, items.get(leaseKey), call);
    return { ok: true, state, lease: lease === 'untrusted' ? undefined : lease };
  }

  /** Reads many slots' items (absent and failed ones are left out), by storage key. */
  async readMany(slots: ReadonlyArray<Slot & { storageKey: string }>, call: CallBudget): Promise<Map<string, ItemState>> {
    const { items } = await this.#s.dynamo.batchGet(
      slots.map((slot) => slot.storageKey),
      { call },
    );
    const states = new Map<string, ItemState>();
    await Promise.all(
      slots.map(async (slot) => {
        const item = items.get(slot.storageKey);
        if (item === undefined) return;
        const state = await this.#decode(slot, item, call);
        if (state !== UNAVAILABLE) states.set(slot.storageKey, state);
      }),
    );
    return states;
  }

  /**
   * Stores `payload` (a "not found" when `undefined`) until `deadlines`, in memory and, when the slot's
   * generation is known, in DynamoDB. Resolves `false`, with a warning, when DynamoDB failed, the value could
   * not be sealed (encryption keys unavailable), or its stored form exceeds `maxValueBytes` (then it is not
   * kept in memory either); also `false`, silently, when `notFresherThanMs` found a newer value in place.
   */
  async write(slot: Slot, payload: Payload | undefined, deadlines: Deadlines, call: CallBudget, options: WriteOptions = {}): Promise<boolean> {
    const { fetchMs, notFresherThanMs, tags } = options;
    let body: StoredBody | undefined;
    let size = 0;
    if (slot.storageKey !== undefined) {
      try {
        body = await this.#s.codec.seal(payload, { storageKey: slot.storageKey, expiresAt: deadlines.expiresAtSeconds, freshUntilMs: deadlines.freshUntilMs, fetchMs, tags }, call);
      } catch (error) {
        this.#s.stats.increment('errors');
        this.#s.logger.warn('dynamo-cache: value could not be encrypted; not stored', { key: slot.storageKey, errorName: (error as Error)?.name, errorMessage: (error as Error)?.message });
        return false;
      }
      size = body === undefined ? 0 : bodyBytes(body);
      if (size > this.#s.maxValueBytes) {
        this.#s.stats.increment('oversized');
        this.#s.memory?.delete(slot.memoryKey);
        this.#s.logger.warn('dynamo-cache: value too large to cache; not stored', { key: slot.storageKey, bytes: size, maxValueBytes: this.#s.maxValueBytes });
        return false;
      }
    }
    this.#s.memory?.set(slot.memoryKey, entryOf(payload, deadlines, fetchMs, tags), slot.generation, Date.now());
    if (slot.storageKey === undefined) return false;
    const stored = body !== undefined && size > this.#s.inlineValueBytes ? await this.#writeChunks(body, deadlines, call) : body;
    if (stored === false) return false;
    const outcome = await this.#s.dynamo.put(toItem(this.#s.attributes, slot.storageKey, recordOf(stored, payload === undefined, deadlines, fetchMs, tags)), notFresherThanMs, call);
    if (!outcome.ok) return false;
    if (outcome.value) this.#s.stats.increment('writes');
    return outcome.value;
  }

  /** Removes the entry from memory and DynamoDB (a large value's chunks expire with their TTL). */
  async delete(slot: Slot, call: CallBudget): Promise<boolean> {
    this.#s.memory?.delete(slot.memoryKey);
    if (slot.storageKey === undefined) return false;
    const outcome = await this.#s.dynamo.delete(slot.storageKey, call);
    if (outcome.ok) this.#s.stats.increment('deletes');
    return outcome.ok;
  }

  /** Tries to take the refresh lease of the slot's value (see `DynamoStore.acquireLease`). */
  async acquireLease(slot: Slot & { storageKey: string }, request: LeaseRequest, call: CallBudget): Promise<LeaseResult> {
    const leaseKey = this.#s.keys.leaseKey(slot.storageKey);
    const lease = { untilMs: request.untilMs, owner: request.owner, forFreshMs: request.forFreshMs };
    // Unsigned without encryption: built at once, with no promise to wait for on every miss.
    const mine = this.#s.keyring === undefined ? leaseItem(this.#s.attributes, leaseKey, lease) : await this.#signedLeaseItem(leaseKey, lease, call);
    if (mine === undefined) return { ok: false };
    const outcome = await this.#s.dynamo.acquireLease(mine, request.nowMs, call);
    if (!outcome.ok) {
      // Cut short by the caller, the write may still have been applied: give back the lease it may hold, so the
      // fleet does not wait for it to expire (the release is conditional on the owner, so it is safe either way).
      if (outcome.kind === 'aborted' || outcome.kind === 'deadline') void this.#s.dynamo.releaseLease(leaseKey, request.owner);
      return { ok: false };
    }
    if (outcome.value.acquired) return { ok: true, acquired: true };
    let item = outcome.value.item;
    if (item === undefined) {
      const read = await this.#s.dynamo.get(leaseKey, { consistent: true, call });
      item = read.ok ? read.value : undefined;
    }
    const current = await this.#trustedLease(leaseKey, item, call);
    return current === 'untrusted' ? { ok: true, acquired: false, lease: undefined, untrusted: true } : { ok: true, acquired: false, lease: current, untrusted: false };
  }

  /**
   * Gives back a lease (best effort: a failure only means the lease runs out by itself). With `failed`, the
   * lease is not deleted but ended as failed (see `Lease.failed`), for the refresh's waiters to see why.
   */
  async releaseLease(slot: Slot & { storageKey: string }, owner: string, call: CallBudget, failed?: { forFreshMs: number }): Promise<void> {
    const leaseKey = this.#s.keys.leaseKey(slot.storageKey);
    if (failed === undefined) {
      await this.#s.dynamo.releaseLease(leaseKey, owner, call);
      return;
    }
    // Already over (the next caller takes the turn at once, as after a delete); only waiters read the mark.
    // Without a signature the mark would be ignored as forged: deleting the lease is the next best thing.
    const ended = await this.#signedLeaseItem(leaseKey, { untilMs: Date.now() - 1, owner, forFreshMs: failed.forFreshMs, failed: true }, call);
    await this.#s.dynamo.releaseLease(leaseKey, owner, call, ended);
  }

  /** The lease an item holds: `undefined` when none (or malformed), `'untrusted'` when encryption is on and its signature does not verify. */
  async #trustedLease(leaseKey: string, item: Item | undefined, call: CallBudget): Promise<Lease | undefined | 'untrusted'> {
    const lease = leaseOf(item);
    if (lease === undefined || this.#s.keyring === undefined) return lease;
    let valid: boolean;
    try {
      valid = lease.signature !== undefined && (await this.#s.keyring.verify(leaseText(leaseKey, lease), lease.signature, call));
    } catch (error) {
      // Without the keys no lease can be vouched for: fetch without coordination (the keys' failure is logged).
      this.#keysUnavailable(leaseKey, error);
      return 'untrusted';
    }
    if (valid) return lease;
    this.#s.stats.increment('errors');
    this.#s.stats.increment('corruptItems');
    this.#s.logger.warn('dynamo-cache: refresh lease is not authenticated; ignored (fetching without it)', { key: leaseKey });
    return 'untrusted';
  }

  /** The lease item for `lease`, signed with encryption; `undefined` (logged) when the keys are unavailable to sign it. */
  async #signedLeaseItem(leaseKey: string, lease: Lease, call: CallBudget): Promise<Item | undefined> {
    const keyring = this.#s.keyring;
    if (keyring === undefined) return leaseItem(this.#s.attributes, leaseKey, lease);
    try {
      return leaseItem(this.#s.attributes, leaseKey, { ...lease, signature: await keyring.sign(leaseText(leaseKey, lease), call) });
    } catch (error) {
      this.#s.stats.increment('errors');
      this.#s.logger.warn('dynamo-cache: refresh lease could not be signed; fetching without it', { key: leaseKey, errorName: (error as Error)?.name, errorMessage: (error as Error)?.message });
      return undefined;
    }
  }

  /**
   * Writes a large body as chunk items under a new generation id, before the head item that points to
   * them is written: a reader sees the old head with its old chunks or the new head with its new chunks,
   * never a mix. Old chunks are left for DynamoDB's TTL, since a reader may still be reading them.
   */
  async #writeChunks(body: StoredBody, deadlines: Deadlines, call: CallBudget): Promise<ChunkedBody | false> {
    const bytes = typeof body.data === 'string' ? Buffer.from(body.data) : body.data;
    const generation = randomUUID();
    const items: Item[] = [];
    const size = this.#s.inlineValueBytes;
    for (let offset = 0, index = 0; offset < bytes.byteLength; offset += size, index++) {
      items.push(chunkItem(this.#s.attributes, this.#s.keys.chunkKey(generation, index), bytes.subarray(offset, offset + size), deadlines.expiresAtSeconds));
    }
    if (!(await this.#s.dynamo.batchWrite(items, this.#s.largeValueTimeoutMs, call))) return false;
    return { marker: body.marker, count: items.length, generation, checksum: checksum(bytes), size: bytes.byteLength };
  }

  /** Reads a large value's chunks in one BatchGetItem round trip and checks the whole against its checksum. */
  async #readChunks(chunked: ChunkedBody, call: CallBudget): Promise<StoredBody | typeof UNAVAILABLE> {
    const keys = Array.from({ length: chunked.count }, (_, index) => this.#s.keys.chunkKey(chunked.generation, index));
    // Consistent: chunks are written just before their head, and an eventually consistent read may miss them.
    const { items, complete } = await this.#s.dynamo.batchGet(keys, { consistent: true, timeoutMs: this.#s.largeValueTimeoutMs, call });
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
      return { marker: chunked.marker, data: utf8.decode(bytes) };
    } catch (error) {
      throw new CorruptItemError('a chunked text value is not valid UTF-8', { cause: error });
    }
  }

  /**
   * What the item under `storageKey` holds, for operators (`cache.inspect`, the CLI): its record and, when
   * it can be decoded, the payload, or why not; and its refresh lease. Reads DynamoDB only; counts and
   * memory are left alone.
   */
  async inspect(storageKey: string, call: CallBudget = UNBOUNDED): Promise<
    { ok: false } | { ok: true; record: StoredRecord | undefined; storedBytes: number; payload?: Payload; problem?: string; lease?: Lease }
  > {
    const leaseKey = this.#s.keys.leaseKey(storageKey);
    const { items, complete } = await this.#s.dynamo.batchGet([storageKey, leaseKey], { consistent: true, call });
    if (!complete) return { ok: false };
    const item = items.get(storageKey);
    const leased = leaseOf(items.get(leaseKey));
    const lease = leased === undefined || leased.untilMs <= Date.now() ? {} : { lease: leased };
    if (item === undefined) return { ok: true, record: undefined, storedBytes: 0, ...lease };
    let record: StoredRecord | undefined;
    try {
      record = fromItem(this.#s.attributes, item);
      const body = record.chunked === undefined ? record.body : await this.#readChunks(record.chunked, call);
      if (body === UNAVAILABLE) return { ok: false };
      const storedBytes = record.chunked?.size ?? (body === undefined ? 0 : bodyBytes(body));
      if (body === undefined && !record.negative) return { ok: true, record, storedBytes, ...lease };
      const payload = await this.#s.codec.open(body, record.negative ?? false, bindingOf(storageKey, record), call);
      if (payload?.kind === 'json') JSON.parse(payload.data);
      return { ok: true, record, storedBytes, ...(payload === undefined ? {} : { payload }), ...lease };
    } catch (error) {
      if (error instanceof KeysUnavailableError) {
        this.#keysUnavailable(storageKey, error);
        return { ok: false };
      }
      if (!(error instanceof CorruptItemError) && !(error instanceof SyntaxError)) throw error;
      return { ok: true, record, storedBytes: 0, problem: error.message, ...lease };
    }
  }

  async #decode(slot: Slot & { storageKey: string }, item: Item | undefined, call: CallBudget): Promise<ItemState | typeof UNAVAILABLE> {
    if (item === undefined) return NOTHING;
    const seenFreshMs = claimedFreshness(item);
    try {
      const record = fromItem(this.#s.attributes, item);
      if (hasExpired(record.expiresAt, Date.now())) return { entry: undefined, seenFreshMs };
      // No value and no "not found": an empty item (an earlier version's lease left it).
      if (record.body === undefined && record.chunked === undefined && !record.negative) return { entry: undefined, seenFreshMs };
      const body = record.chunked === undefined ? record.body : await this.#readChunks(record.chunked, call);
      if (body === UNAVAILABLE) return UNAVAILABLE;
      const payload = await this.#s.codec.open(body, record.negative ?? false, bindingOf(slot.storageKey, record), call);
      // Parsed here so a corrupt JSON payload is a miss now, not an exception in a caller later; the caller
      // that read it gets this parse, so a hit parses once.
      const decoded = payload?.kind === 'json' ? { value: JSON.parse(payload.data) as unknown } : undefined;
      let entry: CacheEntry | undefined = record.tags === undefined ? { payload, ...timingOf(record) } : { payload, ...timingOf(record), tags: record.tags };
      // Invalidated by a tag (or its state unreadable): no value; soft-invalidated: stale (and so not kept in memory).
      if (entry.tags !== undefined) entry = this.#s.tags === undefined ? undefined : await this.#s.tags.judge(entry, call);
      if (entry === undefined) return { entry, seenFreshMs };
      this.#s.memory?.set(slot.memoryKey, entry, slot.generation, Date.now());
      return { entry, seenFreshMs, decoded };
    } catch (error) {
      // The item may be fine: the keys to read it are what is missing. DynamoDB is as good as unavailable.
      if (error instanceof KeysUnavailableError) {
        this.#keysUnavailable(slot.storageKey, error);
        return UNAVAILABLE;
      }
      if (!(error instanceof CorruptItemError) && !(error instanceof SyntaxError)) throw error;
      this.#s.stats.increment('errors');
      this.#s.stats.increment('corruptItems');
      this.#s.logger.warn('dynamo-cache: unreadable cache item treated as a miss', { key: slot.storageKey, errorName: error.name, errorMessage: error.message });
      return { entry: undefined, seenFreshMs, corrupt: true };
    }
  }

  /** The encryption keys could not be had (failed, slow, or the call ran out): counted and logged, a miss. */
  #keysUnavailable(key: string, error: unknown): void {
    this.#s.stats.increment('errors');
    this.#s.logger.warn('dynamo-cache: encryption keys unavailable; treated as a miss', { key, errorName: (error as Error)?.name, errorMessage: (error as Error)?.message });
  }
}

/** What a stored record's encryption is bound to. */
function bindingOf(storageKey: string, record: StoredRecord): ItemBinding {
  return { storageKey, expiresAt: record.expiresAt, freshUntilMs: record.freshUntilMs, fetchMs: record.fetchMs, tags: record.tags };
}

/** What a lease's signature covers: the lease item's key and every field that gives the lease its meaning. */
function leaseText(leaseKey: string, lease: Lease): string {
  const fields = ['dynamo-cache/lease/v1', leaseKey, lease.untilMs, lease.owner, lease.forFreshMs];
  // Appended only when set, so leases signed by earlier versions still verify.
  return JSON.stringify(lease.failed === true ? [...fields, 'failed'] : fields);
}

function checksum(bytes: Uint8Array): string {
  return hash('sha256', bytes, 'base64url');
}

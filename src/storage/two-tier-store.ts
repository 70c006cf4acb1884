import { hash, randomUUID } from 'node:crypto';
import { bodyBytes, isTextBody, utf8, type ItemBinding, type Payload, type ValueCodec } from '../codec/value-codec.ts';
import { KeysUnavailableError, type Keyring } from '../codec/encryption.ts';
import { entryOf, recordOf, timingOf, type CacheEntry, type ItemState } from './entry.ts';
import { hasExpired } from '../refresh/expiry.ts';
import type { Deadlines } from '../refresh/freshness.ts';
import type { KeyMapper, Slot } from './keys.ts';
import type { CacheLogger } from '../observability/logger.ts';
import type { DeferReason, Held, MemoryTier } from './memory-tier.ts';
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
  /** Not taken, for `failure` (`client` too when the encryption keys could not sign it). */
  | { readonly ok: false; readonly failure: FailureKind }
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
  /**
   * A write DynamoDB throttled or was too slow for is tried once more with this time budget (a refresh's write,
   * which is conditional, so a second attempt never undoes a first that was applied after all).
   */
  readonly patienceMs?: number | undefined;
  /** A value the fleet shares (a refresh's): spread over piece items above `spreadValueBytes`. */
  readonly spread?: boolean | undefined;
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
  /** Largest stored value kept in one item below `inlineValueBytes`; a larger one is spread over pieces of one read unit (`false`: never). */
  readonly spreadValueBytes: number | false;
  readonly stats: StatsRecorder;
  readonly logger: CacheLogger;
  /** Judges tagged entries before they are answered (a tagged entry without it is never answered). */
  readonly tags?: TagStates | undefined;
}

const NOTHING: ItemState = { entry: undefined, seenFreshMs: 0 };
/** A slot whose namespace generation could not be read: its value is kept in memory only. */
const UNKNOWN_GENERATION = Symbol('unknown generation');

/** A value sealed for its item, and its stored size. */
interface Sealed {
  readonly storageKey: string;
  readonly body: StoredBody | undefined;
  readonly size: number;
}
/** The item size one read unit covers (strongly consistent; half a unit eventually consistent). */
const READ_UNIT_BYTES = 4096;
/** A chunk read failed for a DynamoDB reason (already logged), or the keys to open the value: unavailable, not corrupt. */
interface Unavailable {
  readonly unavailable: FailureKind;
}

function unavailable(failure: FailureKind | undefined): Unavailable {
  return { unavailable: failure ?? 'server' };
}

function isUnavailable<T extends object>(value: T | Unavailable): value is Unavailable {
  return 'unavailable' in value;
}

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

  /** The fresh entry this environment holds in memory for the slot, before its recheck, if any. */
  fromMemory(slot: Slot, nowMs: number): CacheEntry | undefined {
    const entry = this.#s.memory?.get(slot.memoryKey, slot.generation, nowMs);
    // A tagged entry only while its tags' states, known here, still hold its tokens.
    return entry?.tags === undefined ? entry : this.#s.tags?.fresh(entry, nowMs);
  }

  /**
   * Whatever this environment holds in memory for the slot: fresh, due for its recheck, or stale within its
   * storage expiry. A tagged entry as its tags' states known here allow (cut stale by a soft purge, or not at
   * all); with `lastKnown`, by the states last known even when due for a reread, for when DynamoDB cannot be
   * asked (see `TagStates.verdict`).
   */
  held(slot: Slot, nowMs: number, lastKnown = false): Held | undefined {
    const held = this.#s.memory?.held(slot.memoryKey, slot.generation, nowMs);
    if (held?.entry.tags === undefined) return held;
    const entry = this.#s.tags?.verdict(held.entry, nowMs, lastKnown);
    return entry === undefined ? undefined : entry === held.entry ? held : { ...held, entry };
  }

  /** Puts off the recheck of the slot's entry in memory (see `MemoryTier.defer`). */
  defer(slot: Slot, untilMs: number, reason: DeferReason): void {
    this.#s.memory?.defer(slot.memoryKey, untilMs, reason);
  }

  /** Reads the slot's item from DynamoDB; a fresh entry is copied into the memory tier. */
  async read(slot: Slot & { storageKey: string }, call: CallBudget, consistent?: boolean): Promise<ReadResult> {
    const outcome = await this.#s.dynamo.get(slot.storageKey, { consistent, call });
    if (!outcome.ok) return { ok: false, failure: outcome.kind };
    // Nothing stored (every miss): no decoding, and no promise to wait for.
    const state = outcome.value === undefined ? this.#nothing(slot) : await this.#decode(slot, outcome.value, call);
    // Chunks that could not be read (or the keys to open them) fail the read with their own reason, already logged.
    return isUnavailable(state) ? { ok: false, failure: state.unavailable } : { ok: true, state };
  }

  /**
   * Reads the slot's item and its lease item in one BatchGetItem (a lease waiter's poll), eventually
   * consistent unless `consistentRead`: a poll that lags only polls again, and the lease is taken by a
   * conditional write, which never lags. A throttled item is not asked for again here: the poll is throttled,
   * and its caller asks again after its own pause.
   */
  async readWithLease(slot: Slot & { storageKey: string }, call: CallBudget): Promise<LeaseReadResult> {
    return (await this.readEachWithLease([slot], call)).get(slot.storageKey)!;
  }

  /**
   * `readWithLease` for many slots (the waiters of a batch), in BatchGetItem requests of 50 slots (100 items)
   * each, read as `readWithLease` reads: each slot's result by storage key.
   */
  async readEachWithLease(slots: ReadonlyArray<Slot & { storageKey: string }>, call: CallBudget): Promise<Map<string, LeaseReadResult>> {
    // A value's key and its lease's side by side, so that a request holds both (100 keys: an even number).
    const pairs = slots.map((slot) => ({ slot, leaseKey: this.#s.keys.leaseKey(slot.storageKey) }));
    const { items, unread, failure = 'server' } = await this.#s.dynamo.batchGet(
      pairs.flatMap(({ slot, leaseKey }) => [slot.storageKey, leaseKey]),
      { call, once: true },
    );
    const results = new Map<string, LeaseReadResult>();
    await Promise.all(
      pairs.map(async ({ slot, leaseKey }) => {
        if (unread.has(slot.storageKey) || unread.has(leaseKey)) return results.set(slot.storageKey, { ok: false, failure });
        const state = await this.#decode(slot, items.get(slot.storageKey), call);
        if (isUnavailable(state)) return results.set(slot.storageKey, { ok: false, failure: state.unavailable });
        const lease = await this.#trustedLease(leaseKey, items.get(leaseKey), call);
        return results.set(slot.storageKey, { ok: true, state, lease: lease === 'untrusted' ? undefined : lease });
      }),
    );
    return results;
  }

  /** Reads many slots' items (absent and failed ones are left out), by storage key. */
  async readMany(slots: ReadonlyArray<Slot & { storageKey: string }>, call: CallBudget): Promise<Map<string, ItemState>> {
    const states = new Map<string, ItemState>();
    for (const [storageKey, read] of await this.readEach(slots, call)) if (read.ok && read.state !== NOTHING) states.set(storageKey, read.state);
    return states;
  }

  /**
   * Reads many slots' items with BatchGetItem (100 keys per request, `UnprocessedKeys` retried within the budget),
   * as `read` does one: each slot's result by storage key, `ok: false` for those whose request failed.
   */
  async readEach(slots: ReadonlyArray<Slot & { storageKey: string }>, call: CallBudget): Promise<Map<string, ReadResult>> {
    const { items, unread, failure = 'server' } = await this.#s.dynamo.batchGet(
      slots.map((slot) => slot.storageKey),
      { call },
    );
    const results = new Map<string, ReadResult>();
    await Promise.all(
      slots.map(async (slot) => {
        if (unread.has(slot.storageKey)) return results.set(slot.storageKey, { ok: false, failure });
        const state = await this.#decode(slot, items.get(slot.storageKey), call);
        return results.set(slot.storageKey, isUnavailable(state) ? { ok: false, failure: state.unavailable } : { ok: true, state });
      }),
    );
    return results;
  }

  /**
   * Stores `payload` (a "not found" when `undefined`) until `deadlines`, in memory and, when the slot's
   * generation is known, in DynamoDB. Resolves `false`, with a warning, when DynamoDB failed, the value could
   * not be sealed (encryption keys unavailable), or its stored form exceeds `maxValueBytes` (then it is not
   * kept in memory either); also `false`, silently, when `notFresherThanMs` found a newer value in place.
   */
  async write(slot: Slot, payload: Payload | undefined, deadlines: Deadlines, call: CallBudget, options: WriteOptions = {}): Promise<boolean> {
    const { fetchMs, notFresherThanMs, tags } = options;
    const sealing = this.#seal(slot, payload, deadlines, fetchMs, call, tags);
    const sealed = sealing instanceof Promise ? await sealing : sealing;
    if (sealed === undefined) return false;
    this.#s.memory?.set(slot.memoryKey, entryOf(payload, deadlines, fetchMs, tags), slot.generation, Date.now());
    if (sealed === UNKNOWN_GENERATION) return false;
    const head = this.#headItem(sealed, payload, deadlines, fetchMs, call, options.spread === true, tags);
    const item = head instanceof Promise ? await head : head;
    if (item === undefined) return false;
    let outcome = await this.#s.dynamo.put(item, notFresherThanMs, call);
    if (!outcome.ok && options.patienceMs !== undefined && (outcome.kind === 'throttle' || outcome.kind === 'timeout')) {
      outcome = await this.#s.dynamo.put(item, notFresherThanMs, { ...call, timeoutMs: options.patienceMs });
    }
    if (!outcome.ok) return false;
    if (outcome.value) this.#s.stats.increment('writes');
    return outcome.value;
  }

  /**
   * Stores many payloads as `write` does each, unconditionally (a plain `set`): in memory, then in DynamoDB with
   * BatchWriteItem (25 items per request, `UnprocessedItems` retried with backoff within the budget). A value
   * larger than one item is written on its own (its chunks, then its head). Resolves, for each entry, whether
   * DynamoDB stored it.
   */
  async writeMany(entries: ReadonlyArray<{ readonly slot: Slot; readonly payload: Payload; readonly deadlines: Deadlines; readonly tags?: TagStamps | undefined }>, call: CallBudget): Promise<boolean[]> {
    const sealed = await Promise.all(entries.map(({ slot, payload, deadlines, tags }) => this.#seal(slot, payload, deadlines, undefined, call, tags)));
    const written = entries.map(() => false);
    const batch: Array<{ index: number; item: Item }> = [];
    const alone: Array<Promise<void>> = [];
    entries.forEach(({ slot, payload, deadlines, tags }, index) => {
      const body = sealed[index];
      if (body === undefined) return;
      this.#s.memory?.set(slot.memoryKey, entryOf(payload, deadlines, undefined, tags), slot.generation, Date.now());
      if (body === UNKNOWN_GENERATION) return;
      const head = this.#headItem(body, payload, deadlines, undefined, call, false, tags);
      if (!(head instanceof Promise)) {
        batch.push({ index, item: head });
        return;
      }
      alone.push(
        head.then(async (item) => {
          const outcome = item === undefined ? undefined : await this.#s.dynamo.put(item, undefined, call);
          written[index] = outcome?.ok === true && outcome.value;
        }),
      );
    });
    const [batchWritten] = await Promise.all([
      this.#s.dynamo.batchPut(
        batch.map(({ item }) => item),
        undefined,
        call,
      ),
      ...alone,
    ]);
    batch.forEach(({ index }, at) => (written[index] = batchWritten[at]!));
    this.#s.stats.increment('writes', written.filter(Boolean).length);
    return written;
  }

  /**
   * The stored form of a payload for the slot: sealed (compressed, encrypted) and measured. `undefined` (logged,
   * counted) when it cannot be stored: its keys are unavailable, or it exceeds `maxValueBytes` (then it is
   * dropped from memory too); `UNKNOWN_GENERATION` when the slot has no storage key (memory only).
   */
  #seal(slot: Slot, payload: Payload | undefined, deadlines: Deadlines, fetchMs: number | undefined, call: CallBudget, tags?: TagStamps): Sealed | typeof UNKNOWN_GENERATION | undefined | Promise<Sealed | undefined> {
    const { storageKey } = slot;
    if (storageKey === undefined) return UNKNOWN_GENERATION;
    const binding = { storageKey, expiresAt: deadlines.expiresAtSeconds, freshUntilMs: deadlines.freshUntilMs, fetchMs, tags };
    // Without encryption, sealing is synchronous: a miss's write awaits nothing before its request.
    if (!this.#s.codec.encrypts) return this.#measured(slot, storageKey, this.#s.codec.sealPlain(payload, binding));
    return this.#s.codec.seal(payload, binding, call).then(
      (body) => this.#measured(slot, storageKey, body),
      (error: unknown) => {
        this.#s.stats.increment('errors');
        this.#s.logger.warn('dynamo-cache: value could not be encrypted; not stored', { key: storageKey, errorName: (error as Error)?.name, errorMessage: (error as Error)?.message });
        return undefined;
      },
    );
  }

  /** A sealed body, measured: `undefined` (logged, counted, dropped from memory) when it exceeds `maxValueBytes`. */
  #measured(slot: Slot, storageKey: string, body: StoredBody | undefined): Sealed | undefined {
    const size = body === undefined ? 0 : bodyBytes(body);
    if (size > this.#s.maxValueBytes) {
      this.#s.stats.increment('oversized');
      this.#s.memory?.delete(slot.memoryKey);
      this.#s.logger.warn('dynamo-cache: value too large to cache; not stored', { key: storageKey, bytes: size, maxValueBytes: this.#s.maxValueBytes });
      return undefined;
    }
    return { storageKey, body, size };
  }

  /**
   * The item that holds a sealed value: the value itself (at once: no promise on the common path), or, for a
   * large one, the head of its chunks, once they are written; `undefined` when they could not be.
   */
  #headItem(sealed: Sealed, payload: Payload | undefined, deadlines: Deadlines, fetchMs: number | undefined, call: CallBudget, spread = false, tags?: TagStamps): Item | Promise<Item | undefined> {
    const { storageKey, body, size } = sealed;
    const head = (stored: StoredBody | ChunkedBody | undefined) => toItem(this.#s.attributes, storageKey, recordOf(stored, payload === undefined, deadlines, fetchMs, tags));
    const pieceBytes = body === undefined ? undefined : this.#pieceBytes(size, spread);
    if (pieceBytes === undefined) return head(body);
    return this.#writeChunks(body!, deadlines, call, pieceBytes).then((chunked) => (chunked === false ? undefined : head(chunked)));
  }

  /**
   * Ends the value under the slot, if DynamoDB still holds the one read here and `matches` accepts it: it is never
   * answered again, fresh or stale, and the next refresh wins its lease at once. The item is replaced, on the
   * condition that its freshness (`dc_fresh`) is still the one read, by an item without a value that keeps that
   * freshness (read as a miss by every version, and by the original service): a lease still standing from the
   * value's own refresh is then over, where after a delete the next refresh would wait for it to expire. The
   * entry is dropped from this environment's memory tier either way. Resolves whether this call ended a value.
   */
  async invalidate(slot: Slot, matches: ((payload: Payload | undefined) => boolean) | undefined, call: CallBudget): Promise<boolean> {
    this.#s.memory?.delete(slot.memoryKey);
    if (slot.storageKey === undefined) return false;
    const read = await this.read(slot as Slot & { storageKey: string }, call, true);
    // The read copies a fresh value into memory: it goes again, whatever the outcome.
    this.#s.memory?.delete(slot.memoryKey);
    const entry = read.ok ? read.state.entry : undefined;
    if (!read.ok || entry === undefined || (matches !== undefined && !matches(entry.payload))) return false;
    const seen = read.state.seenFreshMs;
    const ended = toItem(this.#s.attributes, slot.storageKey, { body: undefined, negative: false, expiresAt: Math.ceil(entry.expiresAtMs / 1000), ...(seen === 0 ? {} : { freshUntilMs: seen }) });
    const outcome = await this.#s.dynamo.putIfUnchanged(ended, seen, call);
    this.#s.memory?.delete(slot.memoryKey);
    if (outcome.ok && outcome.value) this.#s.stats.increment('deletes');
    return outcome.ok && outcome.value;
  }

  /** Removes the entry from memory and DynamoDB (a large value's chunks expire with their TTL). */
  async delete(slot: Slot, call: CallBudget): Promise<boolean> {
    this.#s.memory?.delete(slot.memoryKey);
    if (slot.storageKey === undefined) return false;
    const outcome = await this.#s.dynamo.delete(slot.storageKey, call);
    if (outcome.ok) this.#s.stats.increment('deletes');
    return outcome.ok;
  }

  /** Reads the slot's lease item alone (small: half a read unit eventually consistent); `undefined` when there is none or it cannot be trusted. */
  async readLease(slot: Slot & { storageKey: string }, call: CallBudget): Promise<{ ok: true; lease: Lease | undefined } | { ok: false; failure: FailureKind }> {
    const leaseKey = this.#s.keys.leaseKey(slot.storageKey);
    const outcome = await this.#s.dynamo.get(leaseKey, { call });
    if (!outcome.ok) return { ok: false, failure: outcome.kind };
    const lease = await this.#trustedLease(leaseKey, outcome.value, call);
    return { ok: true, lease: lease === 'untrusted' ? undefined : lease };
  }

  /** Tries to take the refresh lease of the slot's value (see `DynamoStore.acquireLease`). */
  async acquireLease(slot: Slot & { storageKey: string }, request: LeaseRequest, call: CallBudget): Promise<LeaseResult> {
    const leaseKey = this.#s.keys.leaseKey(slot.storageKey);
    const lease = { untilMs: request.untilMs, owner: request.owner, forFreshMs: request.forFreshMs };
    // Unsigned without encryption: built at once, with no promise to wait for on every miss.
    const mine = this.#s.keyring === undefined ? leaseItem(this.#s.attributes, leaseKey, lease) : await this.#signedLeaseItem(leaseKey, lease, call);
    if (mine === undefined) return { ok: false, failure: 'client' };
    const outcome = await this.#s.dynamo.acquireLease(mine, request.nowMs, call);
    if (!outcome.ok) {
      // Cut short (by the caller or the time budget), the write may still have been applied: give back the lease it
      // may hold, so the fleet does not wait for it to expire (the release is conditional on the owner, so it is
      // safe either way; a caller that tries again does so under another owner).
      if (outcome.kind === 'aborted' || outcome.kind === 'deadline' || outcome.kind === 'timeout') void this.#s.dynamo.releaseLease(leaseKey, request.owner);
      return { ok: false, failure: outcome.kind };
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
  async releaseLease(slot: Slot & { storageKey: string }, owner: string, call: CallBudget, failed?: { forFreshMs: number; retryAtMs: number }): Promise<void> {
    const leaseKey = this.#s.keys.leaseKey(slot.storageKey);
    if (failed === undefined) {
      await this.#s.dynamo.releaseLease(leaseKey, owner, call);
      return;
    }
    // Already over (the next caller takes the turn at once, as after a delete); only waiters read the mark.
    // Without a signature the mark would be ignored as forged: deleting the lease is the next best thing.
    const ended = await this.#signedLeaseItem(leaseKey, { untilMs: Date.now() - 1, owner, forFreshMs: failed.forFreshMs, failed: true, retryAtMs: failed.retryAtMs }, call);
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
   * The size of the chunks a stored value of `size` bytes is split into, or `undefined` to keep it in one item:
   * above DynamoDB's item limit, chunks as large as an item; above `spreadValueBytes`, a value the fleet shares (a
   * refresh's, `spread`) in pieces of one read unit (4 KB with their key and attributes), each its own partition,
   * so that a hot value's readers spread over as many partitions as it has pieces, and read its small head item
   * (and poll it) rather than the whole value.
   */
  #pieceBytes(size: number, spread: boolean): number | undefined {
    if (size > this.#s.inlineValueBytes) return this.#s.inlineValueBytes;
    if (!spread || this.#s.spreadValueBytes === false || size <= this.#s.spreadValueBytes) return undefined;
    const { attributes, keys } = this.#s;
    // The chunk key's own part (`#dc:c:<uuid>:<index>`), the expiry's digits, the marker and their names, with room to spare.
    const overhead = Buffer.byteLength(keys.prefix) + Buffer.byteLength(attributes.key + attributes.value + attributes.expiresAt) + 48 + 12 + 11 + 32;
    return READ_UNIT_BYTES - overhead;
  }

  /**
   * Writes a large or spread body as chunk items under a new generation id, before the head item that points to
   * them is written: a reader sees the old head with its old chunks or the new head with its new chunks,
   * never a mix. Old chunks are left for DynamoDB's TTL, since a reader may still be reading them.
   */
  async #writeChunks(body: StoredBody, deadlines: Deadlines, call: CallBudget, size: number): Promise<ChunkedBody | false> {
    const bytes = typeof body.data === 'string' ? Buffer.from(body.data) : body.data;
    const generation = randomUUID();
    const items: Item[] = [];
    for (let offset = 0, index = 0; offset < bytes.byteLength; offset += size, index++) {
      items.push(chunkItem(this.#s.attributes, this.#s.keys.chunkKey(generation, index), bytes.subarray(offset, offset + size), deadlines.expiresAtSeconds));
    }
    if (!(await this.#s.dynamo.batchWrite(items, this.#s.largeValueTimeoutMs, call))) return false;
    return { marker: body.marker, count: items.length, generation, checksum: checksum(bytes), size: bytes.byteLength };
  }

  /** Reads a large value's chunks in one BatchGetItem round trip and checks the whole against its checksum. */
  async #readChunks(chunked: ChunkedBody, call: CallBudget): Promise<StoredBody | Unavailable> {
    const keys = Array.from({ length: chunked.count }, (_, index) => this.#s.keys.chunkKey(chunked.generation, index));
    const timeoutMs = this.#s.largeValueTimeoutMs;
    // Eventually consistent (half the units): a chunk is written once, under a key of its own, so a read returns it
    // whole or not at all. Chunks are written just before their head, so a lagging read may miss some: those are
    // read again, consistently.
    const { items, complete, failure } = await this.#s.dynamo.batchGet(keys, { timeoutMs, call });
    if (!complete) return unavailable(failure);
    const missing = keys.filter((key) => !items.has(key));
    if (missing.length > 0) {
      const again = await this.#s.dynamo.batchGet(missing, { consistent: true, timeoutMs, call });
      if (!again.complete) return unavailable(again.failure);
      for (const [key, item] of again.items) items.set(key, item);
    }
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
      if (body !== undefined && isUnavailable(body)) return { ok: false };
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

  async #decode(slot: Slot & { storageKey: string }, item: Item | undefined, call: CallBudget): Promise<ItemState | Unavailable> {
    if (item === undefined) return this.#nothing(slot);
    const seenFreshMs = claimedFreshness(item);
    try {
      const record = fromItem(this.#s.attributes, item);
      if (hasExpired(record.expiresAt, Date.now())) return this.#nothing(slot, seenFreshMs);
      // No value and no "not found": a value ended by `invalidate`, or an empty item (an earlier version's lease left it).
      if (record.body === undefined && record.chunked === undefined && !record.negative) return this.#nothing(slot, seenFreshMs);
      const body = record.chunked === undefined ? record.body : await this.#readChunks(record.chunked, call);
      if (body !== undefined && isUnavailable(body)) return body;
      const payload = await this.#s.codec.open(body, record.negative ?? false, bindingOf(slot.storageKey, record), call);
      // Parsed here so a corrupt JSON payload is a miss now, not an exception in a caller later; the caller
      // that read it gets this parse, so a hit parses once.
      const decoded = payload?.kind === 'json' ? { value: JSON.parse(payload.data) as unknown } : undefined;
      let entry: CacheEntry | undefined = record.tags === undefined ? { payload, ...timingOf(record) } : { payload, ...timingOf(record), tags: record.tags };
      // Invalidated by a tag: no value; soft-invalidated: stale (and so not kept in memory).
      if (entry.tags !== undefined) {
        const judged = this.#s.tags === undefined ? undefined : await this.#s.tags.judge(entry, call);
        // Not judged (a tag's state could not be read, or the caller's time ran out first): a read that failed, as
        // DynamoDB's own failures are, not a value known to be gone (its copy in memory stays).
        if (judged !== undefined && isUnavailable(judged)) return judged;
        entry = judged;
      }
      if (entry === undefined) return this.#nothing(slot, seenFreshMs);
      this.#s.memory?.set(slot.memoryKey, entry, slot.generation, Date.now());
      return { entry, seenFreshMs, decoded };
    } catch (error) {
      // The item may be fine: the keys to read it are what is missing. DynamoDB is as good as unavailable.
      if (error instanceof KeysUnavailableError) {
        this.#keysUnavailable(slot.storageKey, error);
        // Not DynamoDB's doing: nothing to wait out.
        return unavailable('client');
      }
      if (!(error instanceof CorruptItemError) && !(error instanceof SyntaxError)) throw error;
      this.#s.stats.increment('errors');
      this.#s.stats.increment('corruptItems');
      this.#s.logger.warn('dynamo-cache: unreadable cache item treated as a miss', { key: slot.storageKey, errorName: error.name, errorMessage: error.message });
      return { entry: undefined, seenFreshMs, corrupt: true };
    }
  }

  /**
   * DynamoDB holds no value for the slot (absent, deleted, ended by `invalidate`, expired): what this environment
   * still holds of it goes too, so that it never stands in as a stale fallback for a value the fleet removed.
   */
  #nothing(slot: Slot, seenFreshMs = 0): ItemState {
    this.#s.memory?.delete(slot.memoryKey);
    return seenFreshMs === 0 ? NOTHING : { entry: undefined, seenFreshMs };
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
  const fields: Array<string | number> = ['dynamo-cache/lease/v1', leaseKey, lease.untilMs, lease.owner, lease.forFreshMs];
  // Appended only when set, so leases signed by earlier versions still verify.
  if (lease.failed === true) fields.push('failed');
  if (lease.retryAtMs !== undefined) fields.push('retry', lease.retryAtMs);
  return JSON.stringify(fields);
}

function checksum(bytes: Uint8Array): string {
  return hash('sha256', bytes, 'base64url');
}

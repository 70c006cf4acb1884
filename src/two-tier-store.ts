import type { Payload } from './codec.ts';
import { entryOf, recordOf, stateOf, type CacheEntry, type ItemState } from './entry.ts';
import type { Deadlines } from './freshness.ts';
import type { CacheLogger } from './logger.ts';
import type { MemoryTier } from './memory-tier.ts';
import type { DynamoStore, Item, LeaseRequest } from './persistence/dynamo-store.ts';
import { CorruptItemError, fromItem, toItem, type AttributeNames } from './persistence/item.ts';
import type { StatsRecorder } from './stats.ts';

/** The result of reading one item: its state, or `ok: false` when DynamoDB failed (already logged and counted). */
export type ReadResult = { readonly ok: true; readonly state: ItemState } | { readonly ok: false };

/** The result of a lease attempt, with the item's state when the attempt lost and DynamoDB returned it. */
export type LeaseResult =
  | { readonly ok: false }
  | { readonly ok: true; readonly acquired: true }
  | { readonly ok: true; readonly acquired: false; readonly state: ItemState | undefined };

/** Settings of a {@link TwoTierStore}. */
export interface TwoTierSettings {
  readonly memory: MemoryTier | undefined;
  readonly dynamo: DynamoStore;
  readonly attributes: AttributeNames;
  readonly stats: StatsRecorder;
  readonly logger: CacheLogger;
}

const NOTHING: ItemState = { entry: undefined, lease: undefined };
const CORRUPT: ItemState = { entry: undefined, lease: undefined, corrupt: true };

/**
 * The memory tier and the DynamoDB table as one store of entries: reads decode items (an unreadable item
 * is logged, counted and read as empty), fresh entries read from DynamoDB fill the memory tier, and writes
 * go to both. Never throws for a cache problem.
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
    if (!outcome.ok) return { ok: false };
    return { ok: true, state: this.#decode(storageKey, outcome.value) };
  }

  /** Reads many items (absent and failed ones are left out). */
  async readMany(storageKeys: readonly string[]): Promise<Map<string, ItemState>> {
    const items = await this.#s.dynamo.batchGet(storageKeys);
    const states = new Map<string, ItemState>();
    for (const [storageKey, item] of items) states.set(storageKey, this.#decode(storageKey, item));
    return states;
  }

  /** Stores `payload` (a "not found" when `undefined`) until `deadlines`, in memory and in DynamoDB. */
  async write(storageKey: string, payload: Payload | undefined, deadlines: Deadlines, fetchMs?: number): Promise<boolean> {
    const now = Date.now();
    this.#s.memory?.set(storageKey, entryOf(payload, deadlines, fetchMs), now);
    const outcome = await this.#s.dynamo.put(toItem(this.#s.attributes, storageKey, recordOf(payload, deadlines, fetchMs)));
    if (outcome.ok) this.#s.stats.increment('writes');
    return outcome.ok;
  }

  /** Removes the entry from memory and DynamoDB. */
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
    return { ok: true, acquired: false, state: item === undefined ? undefined : this.#decode(storageKey, item) };
  }

  /** Gives back a lease (best effort: a failure only means the lease runs out by itself). */
  async releaseLease(storageKey: string, owner: string): Promise<void> {
    await this.#s.dynamo.releaseLease(storageKey, owner);
  }

  #decode(storageKey: string, item: Item | undefined): ItemState {
    if (item === undefined) return NOTHING;
    const now = Date.now();
    try {
      const state = stateOf(fromItem(this.#s.attributes, item), now);
      if (state.entry !== undefined) this.#s.memory?.set(storageKey, state.entry, now);
      return state;
    } catch (error) {
      if (!(error instanceof CorruptItemError) && !(error instanceof SyntaxError)) throw error;
      this.#s.stats.increment('errors');
      this.#s.stats.increment('corruptItems');
      this.#s.logger.warn('dynamo-cache: unreadable cache item treated as a miss', { key: storageKey, errorName: error.name, errorMessage: error.message });
      return CORRUPT;
    }
  }
}

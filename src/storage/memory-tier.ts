import { LRUCache } from 'lru-cache';
import { payloadBytes } from '../codec/value-codec.ts';
import type { CacheEntry } from './entry.ts';

/** Options of the in-memory tier kept in each execution environment. */
export interface MemoryTierOptions {
  /** Most entries kept. Default `1000`. */
  maxEntries?: number | undefined;
  /** Most payload bytes kept (UTF-8 text or binary length). Default `16 MiB`. */
  maxBytes?: number | undefined;
  /**
   * Longest an entry is answered from memory without asking DynamoDB again, in seconds, whatever the item's own
   * TTL (each environment asks again at a random point of the last tenth of it). It bounds how long a `delete()`
   * or a newer value written by another execution environment can go unseen here, as long as DynamoDB answers.
   * Default `30`.
   */
  ttlSeconds?: number | undefined;
}

/** Defaults of {@link MemoryTierOptions}. */
export const MEMORY_TIER_DEFAULTS: Required<MemoryTierOptions> = {
  maxEntries: 1000,
  maxBytes: 16 * 1024 * 1024,
  ttlSeconds: 30,
};

/**
 * The namespace generation an entry belongs to (see `NamespaceGeneration`), or `undefined` for a value
 * stored before this environment could read any (DynamoDB unreachable at a cold start). An entry is answered
 * only in its own generation: one of `undefined` only while none is known, since a flush may have come between
 * its fetch and the first generation read (it is fetched again, once, through the lease).
 */
export type GenerationTag = number | undefined;

/**
 * Why an entry past its recheck is still answered from memory for a while, without asking DynamoDB: another
 * environment is refreshing it (`refreshing`: within `staleWhileRevalidateSeconds` once stale), or DynamoDB or the
 * refresh failed (`failing`: within the larger stale window). See `MemoryTier.defer`.
 */
export type DeferReason = 'refreshing' | 'failing';

/** What this environment holds for a key, fresh or not (see `MemoryTier.held`). */
export interface Held {
  readonly entry: CacheEntry;
  readonly generation: GenerationTag;
  /** Until when (epoch ms) the entry is answered without asking DynamoDB. */
  readonly recheckAtMs: number;
  /** The recheck falls in the last stretch of the value's freshness: there the value is refreshed ahead of its expiry. */
  readonly ahead: boolean;
  /** The width of the stretch the recheck was drawn from, in ms (a tenth of the entry's time in memory). */
  readonly spreadMs: number;
  /** Set while the recheck is put off (see {@link DeferReason}). */
  readonly deferred?: DeferReason | undefined;
  /** How many times in a row the recheck was put off, for the backoff. */
  readonly deferrals: number;
}

/**
 * Share of an entry's lifetime in memory over which environments spread their rechecks: each goes back to
 * DynamoDB at a random point of the last tenth of it, so a fleet that loaded a value at the same moment does not
 * come back for it at the same moment (and a value about to expire is refreshed by the first to come back).
 */
export const RECHECK_SPREAD = 0.1;

/**
 * A bounded LRU of entries for one execution environment, keyed by the caller's key (its storage key in
 * generation 0), so it works whether or not the namespace generation is known. Entries hold encoded payloads,
 * not live objects, so a caller that mutates a value it got back cannot change what the next caller gets.
 *
 * An entry is answered without asking DynamoDB until its recheck: a random point in the last tenth of the
 * shorter of the tier's TTL and the time the value stays fresh. Past it the entry is kept (until the value's
 * storage expiry, the end of its stale windows) but answered only when DynamoDB cannot be asked or the refresh is
 * someone else's or failed: that is what the refresh coordinator decides (`held`, `defer`).
 */
export class MemoryTier {
  readonly #lru: LRUCache<string, Held>;
  readonly #ttlMs: number;

  constructor(options: Required<MemoryTierOptions>) {
    this.#ttlMs = options.ttlSeconds * 1000;
    this.#lru = new LRUCache({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      // lru-cache needs a positive size; count a small overhead per entry so empty strings count too.
      sizeCalculation: ({ entry }) => (entry.payload === undefined ? 0 : payloadBytes(entry.payload)) + 64,
      // No lru-cache TTL: without autopurge it frees nothing early, it only hides expired entries, which `get`
      // does below against the wall clock; its clock reads and timers cost on every get and set.
    });
  }

  /**
   * The fresh entry for `memoryKey`, before its recheck, unless absent or of another generation than
   * `generation` (a flush happened since it was stored; see {@link GenerationTag}).
   */
  get(memoryKey: string, generation: GenerationTag, nowMs: number): CacheEntry | undefined {
    const held = this.#lru.get(memoryKey);
    if (held === undefined || nowMs >= held.recheckAtMs || nowMs >= held.entry.freshUntilMs) return undefined;
    if (held.generation !== generation) {
      this.#lru.delete(memoryKey);
      return undefined;
    }
    return held.entry;
  }

  /** Whatever is held for `memoryKey` in `generation`, fresh, due for its recheck or stale, until the value's storage expiry. */
  held(memoryKey: string, generation: GenerationTag, nowMs: number): Held | undefined {
    const held = this.#lru.get(memoryKey);
    if (held === undefined) return undefined;
    if (nowMs >= held.entry.expiresAtMs || held.generation !== generation) {
      this.#lru.delete(memoryKey);
      return undefined;
    }
    return held;
  }

  /** Keeps `entry` until its storage expiry, to be answered until a recheck spread over the end of its time in memory. */
  set(memoryKey: string, entry: CacheEntry, generation: GenerationTag, nowMs: number): void {
    if (nowMs >= entry.expiresAtMs) {
      this.#lru.delete(memoryKey);
      return;
    }
    const freshMs = Math.min(entry.freshUntilMs, entry.expiresAtMs) - nowMs;
    const ahead = freshMs <= this.#ttlMs;
    const lifetimeMs = Math.max(0, Math.min(this.#ttlMs, freshMs));
    const spreadMs = RECHECK_SPREAD * lifetimeMs;
    this.#lru.set(memoryKey, { entry, generation, recheckAtMs: nowMs + lifetimeMs - spreadMs * Math.random(), ahead: ahead && freshMs > 0, spreadMs, deferrals: 0 });
  }

  /**
   * Puts off the recheck of what is held for `memoryKey` until `untilMs` (an answer from it meanwhile is the
   * coordinator's to decide, by `reason`).
   */
  defer(memoryKey: string, untilMs: number, reason: DeferReason): void {
    const held = this.#lru.get(memoryKey);
    if (held === undefined) return;
    this.#lru.set(memoryKey, { ...held, recheckAtMs: Math.min(untilMs, held.entry.expiresAtMs), deferred: reason, deferrals: held.deferrals + 1 });
  }

  delete(memoryKey: string): void {
    this.#lru.delete(memoryKey);
  }

  /** Drops every entry. */
  clear(): void {
    this.#lru.clear();
  }

  /** Entries currently held (expired ones may still count until touched). */
  get size(): number {
    return this.#lru.size;
  }

  /** Payload bytes currently held, as counted against `maxBytes`. */
  get bytes(): number {
    return this.#lru.calculatedSize;
  }
}

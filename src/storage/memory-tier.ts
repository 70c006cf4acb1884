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
   * Longest an entry lives in memory, in seconds, whatever the item's own TTL. It bounds how long a
   * `delete()` or a newer value written by another execution environment can go unseen here.
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
 * fetched while the generation could not be read (DynamoDB unreachable at a cold start): such a value came
 * from the upstream, not from a flushed table, so it is valid in any generation.
 */
export type GenerationTag = number | undefined;

/**
 * A bounded LRU of fresh entries for one execution environment, keyed by the caller's key (its storage
 * key in generation 0), so it works whether or not the namespace generation is known. Entries hold encoded
 * payloads, not live objects, so a caller that mutates a value it got back cannot change what the next
 * caller gets. An entry is served only while fresh: stale values are read from DynamoDB, where the refresh
 * lease lives.
 */
export class MemoryTier {
  /** Entries with their generation and the time (epoch ms) they stop being served: the end of freshness or the tier's TTL. */
  readonly #lru: LRUCache<string, { entry: CacheEntry; generation: GenerationTag; validUntilMs: number }>;
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
   * The entry for `memoryKey`, unless absent, expired at `nowMs`, or of another generation than `generation`
   * (a flush happened since it was stored). With the generation unknown (`undefined`: it could not be read
   * just now) any live entry is served: it lives no longer than the tier's TTL, the bound a flush promises.
   */
  get(memoryKey: string, generation: GenerationTag, nowMs: number): CacheEntry | undefined {
    const held = this.#lru.get(memoryKey);
    if (held === undefined) return undefined;
    const otherGeneration = generation !== undefined && held.generation !== undefined && held.generation !== generation;
    if (nowMs >= held.validUntilMs || otherGeneration) {
      this.#lru.delete(memoryKey);
      return undefined;
    }
    return held.entry;
  }

  /** Keeps `entry` for the shorter of the tier's TTL and the time it stays fresh. */
  set(memoryKey: string, entry: CacheEntry, generation: GenerationTag, nowMs: number): void {
    const remainingMs = Math.min(entry.freshUntilMs, entry.expiresAtMs) - nowMs;
    if (remainingMs <= 0) {
      this.#lru.delete(memoryKey);
      return;
    }
    const ttl = Math.min(this.#ttlMs, remainingMs);
    this.#lru.set(memoryKey, { entry, generation, validUntilMs: nowMs + ttl });
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

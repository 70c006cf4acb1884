import { decodePayload, encodeValue, fromBody, toBody, type Payload } from './codec.ts';
import { InvalidOptionsError } from './errors.ts';
import { expiresAtSeconds, hasExpired } from './expiry.ts';
import { KeyMapper, assertKey } from './keys.ts';
import type { CacheLogger } from './logger.ts';
import { MemoryTier, type MemoryEntry } from './memory-tier.ts';
import { finiteNumber, resolveOptions, type DynamoCacheOptions, type ResolvedOptions } from './options.ts';
import { DynamoStore, type Item } from './persistence/dynamo-store.ts';
import { CorruptItemError, fromItem, toItem } from './persistence/item.ts';
import { DynamoGuard, type CircuitStatus } from './resilience.ts';
import { StatsRecorder, type CacheStats } from './stats.ts';

/** Options of `set`. */
export interface SetOptions {
  /** Seconds until the value expires. Zero or less stores an already-expired item. Default: `defaultTtlSeconds`. */
  ttlSeconds?: number;
}

/** Options of `getOrSet`. */
export interface GetOrSetOptions extends SetOptions {}

/** Options of `wrap`. */
export interface WrapOptions<TArgs extends unknown[]> extends GetOrSetOptions {
  /**
   * The cache key of a call. Default: the function's name and its arguments as JSON
   * (`loadUser:["42"]`), which needs a named function and JSON arguments.
   */
  key?: (...args: TArgs) => string;
}

/** `cache.stats()`: the counters plus the current state of the breaker and the memory tier. */
export interface CacheStatsSnapshot extends CacheStats {
  /** State of the circuit breaker around DynamoDB. */
  circuit: CircuitStatus;
  /** Entries in the memory tier (0 when it is off). */
  memoryEntries: number;
  /** Payload bytes in the memory tier. */
  memoryBytes: number;
}

/**
 * A two-tier cache: a bounded in-memory LRU per execution environment in front of a DynamoDB table shared
 * by every function and environment.
 *
 * It never breaks its caller. Throttling, timeouts, outages and unreadable items become misses (`get`
 * resolves `undefined`, `set` resolves `false`, `getOrSet` calls the fetcher); each is logged and counted
 * in `stats()`. Only bad input throws: `InvalidKeyError`, `InvalidValueError`, `InvalidOptionsError`.
 *
 * @example
 * const cache = new DynamoCache({ tableName: 'app-cache-prod' });
 * const token = await cache.getOrSet('access_token', fetchToken, { ttlSeconds: 3300 });
 */
export class DynamoCache {
  /** The DynamoDB table. */
  readonly tableName: string;
  /** The key namespace (`""` for none). */
  readonly namespace: string;

  readonly #options: ResolvedOptions;
  readonly #keys: KeyMapper;
  readonly #memory: MemoryTier | undefined;
  readonly #store: DynamoStore;
  readonly #guard: DynamoGuard;
  readonly #stats = new StatsRecorder();
  /** Fetches in flight in this process, by storage key: concurrent `getOrSet` calls join them. */
  readonly #inflight = new Map<string, Promise<Payload | undefined>>();

  /** @throws InvalidOptionsError when an option is missing or wrong. */
  constructor(options: DynamoCacheOptions = {}) {
    const resolved = resolveOptions(options);
    this.#options = resolved;
    this.tableName = resolved.tableName;
    this.namespace = resolved.namespace;
    this.#keys = new KeyMapper(resolved.namespace);
    this.#memory = resolved.memory === false ? undefined : new MemoryTier(resolved.memory);
    this.#guard = new DynamoGuard({
      timeoutMs: resolved.timeoutMs,
      retry: resolved.retry,
      breaker: resolved.breaker,
      logger: resolved.logger,
      stats: this.#stats,
    });
    this.#store = new DynamoStore({
      client: resolved.client,
      tableName: resolved.tableName,
      attributes: resolved.attributes,
      consistentRead: resolved.consistentRead,
      guard: this.#guard,
      stats: this.#stats,
    });
  }

  /** The logger the cache reports absorbed failures to. */
  get logger(): CacheLogger {
    return this.#options.logger;
  }

  /**
   * The value stored under `key`, or `undefined` on a miss (absent, expired, or unreadable because of a
   * cache failure). A cached `null` is a hit and resolves `null`.
   * @throws InvalidKeyError when `key` is not a non-empty string.
   */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    assertKey(key);
    const payload = await this.#read(this.#keys.storageKey(key));
    return payload === undefined ? undefined : (decodePayload(payload) as T);
  }

  /**
   * Stores `value` under `key` for `ttlSeconds`. Resolves `true` when DynamoDB stored it, `false` when a
   * cache failure prevented it (the memory tier still keeps it).
   * @throws InvalidKeyError when `key` is not a non-empty string.
   * @throws InvalidValueError when `value` cannot round-trip exactly (undefined, Date, NaN, a cycle...).
   */
  async set(key: string, value: unknown, options: SetOptions = {}): Promise<boolean> {
    assertKey(key);
    const payload = encodeValue(value);
    return this.#write(this.#keys.storageKey(key), payload, this.#ttl(options));
  }

  /**
   * The value under `key`; on a miss, calls `fetcher`, stores its result and returns it. Concurrent calls
   * for one key in this process share one read and one fetch. A fetcher that throws rejects every waiter
   * and nothing is cached; a fetcher that returns `undefined` caches nothing.
   * @throws InvalidKeyError, InvalidValueError (for the fetcher's result); whatever `fetcher` throws.
   */
  async getOrSet<T>(key: string, fetcher: () => T | Promise<T>, options: GetOrSetOptions = {}): Promise<T> {
    assertKey(key);
    if (typeof fetcher !== 'function') throw new InvalidOptionsError('getOrSet needs a fetcher function');
    const ttlSeconds = this.#ttl(options);
    const storageKey = this.#keys.storageKey(key);
    let flight = this.#inflight.get(storageKey);
    if (flight === undefined) {
      flight = this.#readOrFetch(storageKey, fetcher, ttlSeconds).finally(() => this.#inflight.delete(storageKey));
      this.#inflight.set(storageKey, flight);
    } else {
      this.#stats.increment('coalesced');
    }
    const payload = await flight;
    return (payload === undefined ? undefined : decodePayload(payload)) as T;
  }

  /**
   * Wraps `fn` so calls are answered from the cache, keyed by `options.key(...args)`.
   * @example const cachedLoad = cache.wrap(loadUser, { key: (id) => `user:${id}`, ttlSeconds: 60 });
   * @throws InvalidOptionsError when `fn` is not a function, or has no name and no `key` is given.
   */
  wrap<TArgs extends unknown[], TResult>(
    fn: (...args: TArgs) => TResult | Promise<TResult>,
    options: WrapOptions<TArgs> = {},
  ): (...args: TArgs) => Promise<TResult> {
    if (typeof fn !== 'function') throw new InvalidOptionsError('wrap needs a function');
    const { key, ...getOrSetOptions } = options;
    if (key === undefined && fn.name === '') throw new InvalidOptionsError('wrap needs options.key for an anonymous function');
    if (key !== undefined && typeof key !== 'function') throw new InvalidOptionsError('wrap options.key must be a function');
    if (getOrSetOptions.ttlSeconds !== undefined) finiteNumber('ttlSeconds', getOrSetOptions.ttlSeconds);
    const keyOf = key ?? ((...args: TArgs) => `${fn.name}:${JSON.stringify(args)}`);
    return (...args: TArgs) => this.getOrSet(keyOf(...args), () => fn(...args), getOrSetOptions);
  }

  /**
   * The values of several keys at once, as a `Map` of the hits (misses are absent). Memory hits are served
   * first; the rest are read with BatchGetItem, 100 keys per request.
   * @throws InvalidKeyError when any key is not a non-empty string.
   */
  async getMany<T = unknown>(keys: readonly string[]): Promise<Map<string, T>> {
    if (!Array.isArray(keys)) throw new InvalidOptionsError('getMany needs an array of keys');
    for (const key of keys) assertKey(key);
    // The key mapping is one-to-one, so each distinct key has its own storage key.
    const keyOf = new Map<string, string>();
    for (const key of keys) keyOf.set(this.#keys.storageKey(key), key);
    const result = new Map<string, T>();
    const toFetch: string[] = [];
    for (const storageKey of keyOf.keys()) {
      const entry = this.#memory?.get(storageKey, Date.now());
      if (entry === undefined) toFetch.push(storageKey);
      else result.set(keyOf.get(storageKey)!, this.#hit(storageKey, entry, 'memory') as T);
    }
    if (toFetch.length > 0) {
      const items = await this.#store.batchGet(toFetch);
      for (const storageKey of toFetch) {
        const item = items.get(storageKey);
        const found = item === undefined ? undefined : this.#decodeItem(storageKey, item, Date.now());
        if (found === undefined) this.#stats.increment('misses');
        else result.set(keyOf.get(storageKey)!, this.#hit(storageKey, found, 'dynamo') as T);
      }
    }
    return result;
  }

  /**
   * Removes `key` from this environment's memory tier and from DynamoDB. Other environments stop serving
   * it from their memory tiers within `memory.ttlSeconds`. Resolves `false` when DynamoDB failed.
   * @throws InvalidKeyError when `key` is not a non-empty string.
   */
  async delete(key: string): Promise<boolean> {
    assertKey(key);
    const storageKey = this.#keys.storageKey(key);
    this.#memory?.delete(storageKey);
    const outcome = await this.#store.delete(storageKey);
    if (outcome.ok) this.#stats.increment('deletes');
    return outcome.ok;
  }

  /** Counters since this instance was created, the breaker's state and the memory tier's size. */
  stats(): CacheStatsSnapshot {
    return {
      ...this.#stats.snapshot(),
      circuit: this.#guard.circuit,
      memoryEntries: this.#memory?.size ?? 0,
      memoryBytes: this.#memory?.bytes ?? 0,
    };
  }

  async #readOrFetch<T>(storageKey: string, fetcher: () => T | Promise<T>, ttlSeconds: number): Promise<Payload | undefined> {
    const cached = await this.#read(storageKey);
    if (cached !== undefined) return cached;
    this.#stats.increment('fetches');
    const value = await fetcher();
    if (value === undefined) return undefined;
    const payload = encodeValue(value);
    await this.#write(storageKey, payload, ttlSeconds);
    return payload;
  }

  /** Memory tier, then DynamoDB; counts the hit or miss. Resolves the still-encoded payload. */
  async #read(storageKey: string): Promise<Payload | undefined> {
    const memoryEntry = this.#memory?.get(storageKey, Date.now());
    if (memoryEntry !== undefined) {
      this.#count('memory');
      return memoryEntry.payload;
    }
    const outcome = await this.#store.get(storageKey);
    const found = outcome.ok && outcome.value !== undefined ? this.#decodeItem(storageKey, outcome.value, Date.now()) : undefined;
    if (found === undefined) {
      this.#stats.increment('misses');
      return undefined;
    }
    this.#count('dynamo');
    this.#memory?.set(storageKey, found, Date.now());
    return found.payload;
  }

  /** The live value of an item, or `undefined` when expired or unreadable (logged and counted). */
  #decodeItem(storageKey: string, item: Item, nowMs: number): MemoryEntry | undefined {
    try {
      const record = fromItem(this.#options.attributes, item);
      if (hasExpired(record.expiresAt, nowMs)) return undefined;
      const payload = fromBody(record.body);
      // Parse once here so a corrupt JSON payload is a miss now, not an exception in a caller later.
      if (payload.kind === 'json') JSON.parse(payload.data);
      return { payload, expiresAtMs: record.expiresAt * 1000 };
    } catch (error) {
      if (!(error instanceof CorruptItemError) && !(error instanceof SyntaxError)) throw error;
      this.#stats.increment('errors');
      this.#stats.increment('corruptItems');
      this.#options.logger.warn('dynamo-cache: unreadable cache item treated as a miss', {
        key: storageKey,
        errorName: error.name,
        errorMessage: error.message,
      });
      return undefined;
    }
  }

  async #write(storageKey: string, payload: Payload, ttlSeconds: number): Promise<boolean> {
    const now = Date.now();
    const expiresAt = expiresAtSeconds(ttlSeconds, now);
    this.#memory?.set(storageKey, { payload, expiresAtMs: expiresAt * 1000 }, now);
    const item = toItem(this.#options.attributes, storageKey, { body: toBody(payload), expiresAt });
    const outcome = await this.#store.put(item);
    if (outcome.ok) this.#stats.increment('writes');
    return outcome.ok;
  }

  /** Counts a hit, copies a DynamoDB hit into the memory tier, and decodes the caller's copy. */
  #hit(storageKey: string, found: MemoryEntry, source: 'memory' | 'dynamo'): unknown {
    this.#count(source);
    if (source === 'dynamo') this.#memory?.set(storageKey, found, Date.now());
    return decodePayload(found.payload);
  }

  #count(source: 'memory' | 'dynamo'): void {
    this.#stats.increment('hits');
    this.#stats.increment(source === 'memory' ? 'memoryHits' : 'dynamoHits');
  }

  #ttl(options: SetOptions): number {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options must be an object');
    return options.ttlSeconds === undefined ? this.#options.defaultTtlSeconds : finiteNumber('ttlSeconds', options.ttlSeconds);
  }
}

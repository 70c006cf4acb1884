import { EventEmitter } from 'node:events';
import { DynamoCache } from '../cache.ts';
import { InvalidOptionsError } from '../errors.ts';

/** Options of {@link KeyvDynamoCache}. */
export interface KeyvDynamoCacheOptions {
  /**
   * Where values go: a `DynamoCache`, whose namespace `clear()` flushes (so give the store a namespace of its
   * own); or a function that returns the `DynamoCache` of each Keyv namespace (Keyv's `namespace` option,
   * `'keyv'` by default; created once per namespace), so that `clear()` flushes only the Keyv namespace it
   * is called for.
   */
  cache: DynamoCache | ((keyvNamespace: string | undefined) => DynamoCache);
}

/**
 * A Keyv store on a `DynamoCache`: Keyv, and what builds on it (cacheable, cache-manager and so NestJS's
 * `CacheModule`, got's HTTP cache), get the cache's memory tier, values of any size (chunked past
 * DynamoDB's 400 KB), batched reads (BatchGetItem, 100 keys per request), O(1) `clear()`, and its fail-open
 * behaviour: a DynamoDB failure is a miss (`get`), a `false` (`set`, `delete`), logged and counted.
 *
 * TTLs are Keyv's, in milliseconds; without one, the cache's `defaultTtlSeconds` applies (DynamoDB's TTL
 * deletes every item in time). Keys are the cache's keys as Keyv prefixes them (`keyv:<key>`). There is no
 * `iterator()`: listing keys would take a Scan, which the cache's least-privilege policy does not grant.
 * Its types name no type of keyv's own, whose store interface differs between 5.x versions.
 *
 * @example
 * const keyv = new Keyv({ store: new KeyvDynamoCache({ cache: new DynamoCache({ namespace: 'sessions' }) }) });
 */
export class KeyvDynamoCache extends EventEmitter {
  /** The options given (Keyv reads and sets some of its own here). */
  opts: KeyvDynamoCacheOptions & Record<string, unknown>;
  /** Set by Keyv: the namespace of the Keyv instance using this store. */
  namespace?: string | undefined;
  readonly #caches = new Map<string | undefined, DynamoCache>();

  /** @throws InvalidOptionsError when `cache` is neither a `DynamoCache` nor a function. */
  constructor(options: KeyvDynamoCacheOptions) {
    super();
    const cache = (options as Partial<KeyvDynamoCacheOptions> | undefined)?.cache;
    if (typeof cache !== 'function' && !DynamoCache.isDynamoCache(cache)) throw new InvalidOptionsError('KeyvDynamoCache needs options.cache: a DynamoCache, or a function that returns one per Keyv namespace');
    this.opts = { ...options };
  }

  /** The cache of the current Keyv namespace. */
  get cache(): DynamoCache {
    const { cache } = this.opts;
    if (DynamoCache.isDynamoCache(cache)) return cache;
    let found = this.#caches.get(this.namespace);
    if (found === undefined) {
      found = cache(this.namespace);
      if (!DynamoCache.isDynamoCache(found)) throw new InvalidOptionsError(`KeyvDynamoCache: options.cache(${JSON.stringify(this.namespace)}) did not return a DynamoCache`);
      this.#caches.set(this.namespace, found);
    }
    return found;
  }

  /** The value Keyv stored under `key` (its serialized form, unless Keyv was told not to serialize), or `undefined`. */
  async get<Value>(key: string): Promise<Value | undefined> {
    return this.cache.get<Value>(key);
  }

  /** The values under `keys`, in order (`undefined` for a miss), read with BatchGetItem, 100 keys per request. */
  async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    const found = await this.cache.getMany<Value>(keys);
    return keys.map((key) => found.get(key));
  }

  /** Stores `value` for `ttl` ms (the cache's `defaultTtlSeconds` without one). Resolves whether DynamoDB stored it. */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    return this.cache.set(key, value, ttl === undefined ? {} : { ttlSeconds: ttl / 1000 });
  }

  /** Stores each entry; resolves whether DynamoDB stored each, which Keyv's `setMany` returns. */
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number | undefined }>): Promise<boolean[]> {
    return Promise.all(entries.map(({ key, value, ttl }) => this.set(key, value, ttl)));
  }

  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return (await this.getMany(keys)).map((value) => value !== undefined);
  }

  /** Resolves whether `key` held a value, now deleted (`false` also when DynamoDB failed: logged and counted). */
  async delete(key: string): Promise<boolean> {
    const existed = await this.has(key);
    return (await this.cache.delete(key)) && existed;
  }

  /** Resolves whether every key held a value, now deleted, as Keyv's own `deleteMany` does. */
  async deleteMany(keys: string[]): Promise<boolean> {
    const existed = await this.hasMany(keys);
    const deleted = await Promise.all(keys.map((key) => this.cache.delete(key)));
    return keys.length > 0 && deleted.every(Boolean) && existed.every(Boolean);
  }

  /**
   * Flushes the namespace of the current Keyv namespace's cache in O(1) (`DynamoCache.clear`). Resolves
   * even when DynamoDB fails (the cache logs and counts it).
   */
  async clear(): Promise<void> {
    await this.cache.clear();
  }

  /** Nothing to close: the DynamoDB client belongs to the cache, which other code may share. */
  async disconnect(): Promise<void> {}
}

/**
 * cacheable (the layered cache behind cache-manager 7 and NestJS's CacheModule) with dynamo-cache as its L2:
 * each execution environment answers from cacheable's in-memory L1, and on a miss from the DynamoDB table
 * every environment shares, through the `dynamo-cache/keyv` store; only a miss in both calls the loader.
 *
 * In a function: `import { KeyvDynamoCache } from 'dynamo-cache/keyv'` and `{ DynamoCache } from 'dynamo-cache'`;
 * this example imports the repository's sources so that it compiles and runs without a build (test/keyv.test.ts
 * runs it against dynalite).
 */
import { Cacheable } from 'cacheable';
import Keyv from 'keyv';
import { DynamoCache, type DynamoCacheOptions } from '../../src/index.ts';
import { KeyvDynamoCache } from '../../src/keyv/keyv-dynamo-cache.ts';

/** A product as the catalog service returns it. */
export interface Product {
  id: string;
  name: string;
  priceCents: number;
}

/**
 * The cache of one execution environment: cacheable's memory (L1, 10 s) in front of dynamo-cache (L2, the
 * shared table, 5 minutes), for the Keyv namespace `products`. The DynamoCache's own memory tier is off:
 * cacheable's L1 is this environment's memory. `options` configure the DynamoCache (table and namespace
 * from DYNAMO_CACHE_TABLE and DYNAMO_CACHE_NAMESPACE when not given).
 */
export function productCache(options: DynamoCacheOptions = {}): Cacheable {
  const store = new KeyvDynamoCache({ cache: new DynamoCache({ memory: false, ...options }) });
  return new Cacheable({ secondary: new Keyv({ store, namespace: 'products' }), ttl: '5m' });
}

/** A product by id, from the cache, or from `load` (the catalog service) on a miss in both tiers. */
export async function getProduct(cache: Cacheable, id: string, load: (id: string) => Promise<Product>): Promise<Product | undefined> {
  // L1 for 10 s: a change another environment stores reaches this one within that.
  return cache.getOrSet(`product:${id}`, () => load(id), { ttl: { primary: '10s', secondary: '5m' } });
}

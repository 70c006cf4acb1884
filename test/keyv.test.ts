import keyvTestSuite from '@keyv/test-suite';
import Keyv from 'keyv';
import * as vitest from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { KeyvDynamoCache } from '../src/keyv/keyv-dynamo-cache.ts';
import { getProduct, productCache } from '../examples/keyv-cacheable/product-cache.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite } from './support/fixtures.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const { beforeAll, describe, expect, it } = vitest;
const db = useDynalite();
let tableName: string;

beforeAll(async () => {
  tableName = await db.newTable();
});

/** A cache for each Keyv namespace, on the one table, as a fleet's functions would share it. */
const cacheFor = (keyvNamespace: string | undefined) =>
  new DynamoCache({ tableName, namespace: `keyv-${keyvNamespace ?? 'none'}`, clientConfig: localClientConfig(db.endpoint), timeoutMs: 5000, logger: new RecordingLogger() });

describe('the official Keyv test suite (@keyv/test-suite)', () => {
  // One store per Keyv instance, as the suite asks; the caches are shared by namespace, as in a real fleet.
  // (The suite's types are vitest 4's, whose runner API it uses: the same in vitest 5.)
  const caches = new Map<string | undefined, DynamoCache>();
  keyvTestSuite(vitest as unknown as Parameters<typeof keyvTestSuite>[0], Keyv, () => new KeyvDynamoCache({ cache: (namespace) => caches.get(namespace) ?? caches.set(namespace, cacheFor(namespace)).get(namespace)! }));
});

describe('KeyvDynamoCache', () => {
  it('a second execution environment (another cache on the table) reads what Keyv stored, with its TTL in ms', async () => {
    const writer = new Keyv({ store: new KeyvDynamoCache({ cache: cacheFor('fleet') }), namespace: 'fleet' });
    const reader = new Keyv({ store: new KeyvDynamoCache({ cache: cacheFor('fleet') }), namespace: 'fleet' });
    expect(await writer.set('session', { user: 'ada' }, 60_000)).toBe(true);
    expect(await reader.get('session')).toEqual({ user: 'ada' });
    const stored = await cacheFor('fleet').inspect('fleet:session');
    expect(stored?.state).toBe('fresh');
    const ttlMs = stored!.expiresAt!.getTime() - Date.now();
    expect(ttlMs).toBeGreaterThan(50_000);
    expect(ttlMs).toBeLessThanOrEqual(61_000);
  });

  it('many keys: getMany reads in batches (more than 100 keys), setMany and deleteMany report each', async () => {
    const keyv = new Keyv({ store: new KeyvDynamoCache({ cache: cacheFor('many') }), namespace: 'many' });
    const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
    expect(await keyv.setMany(keys.map((key) => ({ key, value: key.toUpperCase() })))).toEqual(keys.map(() => true));
    // From DynamoDB, not memory: another environment.
    const other = new Keyv({ store: new KeyvDynamoCache({ cache: cacheFor('many') }), namespace: 'many' });
    expect(await other.get([...keys, 'absent'])).toEqual([...keys.map((key) => key.toUpperCase()), undefined]);
    expect(await other.has('k1')).toBe(true);
    expect(await other.delete(['k1', 'k2'])).toBe(true);
    expect(await other.delete(['k1', 'k3'])).toBe(false); // k1 is gone
    expect(await other.get(['k1', 'k2', 'k3'])).toEqual([undefined, undefined, undefined]);
  });

  it('a value larger than a DynamoDB item (400 KB) round-trips', async () => {
    const keyv = new Keyv({ store: new KeyvDynamoCache({ cache: cacheFor('large') }), namespace: 'large' });
    const large = 'x'.repeat(600 * 1024);
    expect(await keyv.set('large', large)).toBe(true);
    const other = new Keyv({ store: new KeyvDynamoCache({ cache: cacheFor('large') }), namespace: 'large' });
    expect(await other.get('large')).toBe(large);
  });

  it('clear() flushes the cache’s namespace, which every environment sees', async () => {
    const keyv = new Keyv({ store: new KeyvDynamoCache({ cache: cacheFor('flush') }), namespace: 'flush' });
    await keyv.set('a', 1);
    await keyv.clear();
    const other = new Keyv({ store: new KeyvDynamoCache({ cache: cacheFor('flush') }), namespace: 'flush' });
    expect(await other.get('a')).toBeUndefined();
  });

  it('fails open: with DynamoDB unreachable, a get is a miss and a set resolves false, without throwing', async () => {
    const logger = new RecordingLogger();
    const cache = new DynamoCache({ tableName: 'no-such-table', clientConfig: localClientConfig(db.endpoint), memory: false, breaker: false, logger });
    const keyv = new Keyv({ store: new KeyvDynamoCache({ cache }) });
    expect(await keyv.set('k', 'v')).toBe(false);
    expect(await keyv.get('k')).toBeUndefined();
    expect(cache.stats().errors).toBeGreaterThan(0);
  });

  it('refuses options without a cache, and a factory that returns something else', () => {
    expect(() => new KeyvDynamoCache({} as never)).toThrow(InvalidOptionsError);
    expect(() => new KeyvDynamoCache({ cache: {} as never })).toThrow(InvalidOptionsError);
    const store = new KeyvDynamoCache({ cache: () => ({}) as never });
    expect(() => store.cache).toThrow(/did not return a DynamoCache/);
  });

  it('the cacheable example (examples/keyv-cacheable): a second environment gets the product from the table without calling the loader', async () => {
    const options = { tableName, namespace: 'catalog', clientConfig: localClientConfig(db.endpoint), timeoutMs: 5000, logger: new RecordingLogger() };
    const loads: string[] = [];
    const load = async (id: string) => (loads.push(id), { id, name: `Product ${id}`, priceCents: 1999 });
    const [first, second] = [productCache(options), productCache(options)];
    expect(await getProduct(first, '42', load)).toEqual({ id: '42', name: 'Product 42', priceCents: 1999 });
    expect(await getProduct(second, '42', load)).toEqual({ id: '42', name: 'Product 42', priceCents: 1999 });
    expect(loads).toEqual(['42']);
    // In the table, under the Keyv namespace, for 5 minutes (cacheable's secondary TTL).
    const stored = await new DynamoCache(options).inspect('products:product:42');
    expect(stored?.state).toBe('fresh');
    expect(stored!.expiresAt!.getTime() - Date.now()).toBeGreaterThan(4 * 60_000);
  });
});

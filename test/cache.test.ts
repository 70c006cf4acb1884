import { GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { InvalidKeyError, InvalidOptionsError, InvalidValueError } from '../src/errors.ts';
import { KeyMapper } from '../src/storage/keys.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const db = useDynalite();

afterEach(() => {
  vi.useRealTimers();
});

const JSON_VALUES: Array<[string, unknown]> = [
  ['object', { id: 7, name: 'Zoë 🚀', tags: ['a', 'b'], nested: { deep: [1, { x: null }] }, empty: {} }],
  ['array', [1, 'two', false, null, [3.5e-7], { k: 'v' }]],
  ['integer', 42],
  ['negative float', -1234.5678],
  ['large number', Number.MAX_SAFE_INTEGER],
  ['zero', 0],
  ['true', true],
  ['false', false],
  ['null', null],
  ['string', 'hello'],
  ['empty string', ''],
  ['string that looks like JSON', '{"a":1}'],
  ['unicode string', 'ŝŧřïñğ ✓ 𝄞'],
  ['object with __proto__ key', JSON.parse('{"__proto__":{"polluted":true},"ok":1}')],
];

describe('values round-trip exactly', () => {
  for (const tier of ['through DynamoDB', 'through the memory tier'] as const) {
    describe(tier, () => {
      const memory = tier === 'through DynamoDB' ? (false as const) : undefined;

      it.each(JSON_VALUES)('%s', async (_name, value) => {
        const { cache } = await db.newCache({ memory });
        await expect(cache.set('k', value)).resolves.toBe(true);
        expect(await cache.get('k')).toStrictEqual(value);
        expect(cache.stats().hits).toBe(1);
        expect(cache.stats()[memory === false ? 'dynamoHits' : 'memoryHits']).toBe(1);
      });

      it('binary: a Buffer comes back a Buffer, a Uint8Array a Uint8Array, byte for byte', async () => {
        const { cache } = await db.newCache({ memory });
        const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
        const buffer = Buffer.from('binary \u0000 data', 'utf8');
        await cache.set('bytes', bytes);
        await cache.set('buffer', buffer);
        await cache.set('empty', new Uint8Array(0));
        const gotBytes = await cache.get<Uint8Array>('bytes');
        const gotBuffer = await cache.get<Buffer>('buffer');
        expect(Buffer.isBuffer(gotBytes)).toBe(false);
        expect(gotBytes).toBeInstanceOf(Uint8Array);
        expect([...gotBytes!]).toEqual([...bytes]);
        expect(Buffer.isBuffer(gotBuffer)).toBe(true);
        expect(gotBuffer!.equals(buffer)).toBe(true);
        expect((await cache.get<Uint8Array>('empty'))?.byteLength).toBe(0);
      });
    });
  }

  it('-0 comes back as 0, as JSON has no negative zero', async () => {
    const { cache } = await db.newCache({ memory: false });
    await cache.set('z', { n: -0, list: [-0] });
    expect(await cache.get('z')).toStrictEqual({ n: 0, list: [0] });
  });

  it('a cached null is a hit, not a miss', async () => {
    const { cache } = await db.newCache({ memory: false });
    await cache.set('nothing', null);
    expect(await cache.get('nothing')).toBeNull();
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 0 });
    const fetcher = vi.fn(async () => 'fetched');
    expect(await cache.getOrSet('nothing', fetcher)).toBeNull();
    expect(fetcher).not.toHaveBeenCalled();
  });

  it('a missing key is a miss', async () => {
    const { cache } = await db.newCache();
    expect(await cache.get('absent')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 1 });
  });
});

describe('values that cannot round-trip are refused with InvalidValueError', () => {
  class Point {
    x = 1;
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const refused: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a bigint', 10n],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a Date', new Date()],
    ['a Map', new Map([[1, 2]])],
    ['a Set', new Set([1])],
    ['a class instance', new Point()],
    ['a nested undefined', { a: 1, b: undefined }],
    ['an undefined in an array', [1, undefined]],
    ['a nested Date', { when: new Date() }],
    ['a nested NaN', [Number.NaN]],
    ['a sparse array', [1, , 3]],
    ['a cycle', cyclic],
    ['an object with toJSON', { toJSON: () => 'x' }],
    ['a symbol-keyed property (JSON would drop it)', { plan: 'pro', [Symbol.for('tenant')]: 'acme' }],
    ['a nested symbol-keyed property', { a: { [Symbol.iterator]: 1 } }],
  ];

  it.each(refused)('%s', async (_name, value) => {
    const { cache, tableName } = await db.newCache();
    await expect(cache.set('k', value)).rejects.toBeInstanceOf(InvalidValueError);
    await expect(cache.set('k', value)).rejects.toBeInstanceOf(TypeError);
    const scan = await db.client.send(new ScanCommand({ TableName: tableName }));
    expect(scan.Count).toBe(0);
  });

  it('getOrSet refuses a fetcher result that cannot round-trip, and caches nothing', async () => {
    const { cache } = await db.newCache();
    await expect(cache.getOrSet('k', async () => new Date())).rejects.toThrow(/Date/);
    expect(await cache.get('k')).toBeUndefined();
  });
});

describe('the memory tier cannot be mutated through returned values', () => {
  it('mutating a value returned by get does not change the cached copy', async () => {
    const { cache } = await db.newCache();
    await cache.set('user', { name: 'Ada', roles: ['admin'] });
    const first = await cache.get<{ name: string; roles: string[] }>('user');
    first!.name = 'Mallory';
    first!.roles.push('root');
    expect(await cache.get('user')).toEqual({ name: 'Ada', roles: ['admin'] });
    expect(cache.stats().memoryHits).toBe(2);
  });

  it('mutating the object after set does not change the cached copy', async () => {
    const { cache } = await db.newCache();
    const value = { count: 1 };
    await cache.set('v', value);
    value.count = 99;
    expect(await cache.get('v')).toEqual({ count: 1 });
  });

  it('mutating returned bytes does not change the cached copy', async () => {
    const { cache } = await db.newCache();
    const bytes = new Uint8Array([1, 2, 3]);
    await cache.set('b', bytes);
    bytes[0] = 9;
    const got = await cache.get<Uint8Array>('b');
    got![1] = 9;
    expect([...(await cache.get<Uint8Array>('b'))!]).toEqual([1, 2, 3]);
  });

  it('concurrent getOrSet callers each get their own copy', async () => {
    const { cache } = await db.newCache();
    const [a, b] = await Promise.all([cache.getOrSet('o', async () => ({ n: 1 })), cache.getOrSet('o', async () => ({ n: 2 }))]);
    expect(a).toEqual({ n: 1 });
    expect(b).toEqual({ n: 1 });
    expect(a).not.toBe(b);
  });
});

describe('expiry', () => {
  it('stores expires_at as whole epoch seconds, rounded up, never early', async () => {
    const { cache, tableName } = await db.newCache();
    const before = Date.now();
    await cache.set('k', 'v', { ttlSeconds: 10 });
    const raw = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'k' } } }));
    const expiresAt = raw.Item?.expires_at?.N;
    expect(expiresAt).toMatch(/^\d+$/);
    expect(Number(expiresAt) * 1000).toBeGreaterThanOrEqual(before + 10_000);
  });

  it('freshness is exact to the millisecond, although expires_at is whole seconds', async () => {
    const { cache } = await db.newCache({ memory: false });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_800_000_000_250);
    await cache.set('k', 'v', { ttlSeconds: 1.5 });
    vi.setSystemTime(1_800_000_001_700);
    expect(await cache.get('k')).toBe('v');
    vi.setSystemTime(1_800_000_001_751);
    expect(await cache.get('k')).toBeUndefined();
  });

  it('ttlSeconds 0 and below store an already-expired item', async () => {
    const { cache, tableName } = await db.newCache();
    await cache.set('zero', 'v', { ttlSeconds: 0 });
    await cache.set('negative', 'v', { ttlSeconds: -30 });
    expect(await cache.get('zero')).toBeUndefined();
    expect(await cache.get('negative')).toBeUndefined();
    const scan = await db.client.send(new ScanCommand({ TableName: tableName }));
    expect(scan.Count).toBe(2);
  });

  it('filters expired items that DynamoDB has not deleted yet', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    await db.client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { id: { S: 'stale' }, cached_value: { S: '{"a":1}' }, expires_at: { N: String(Math.floor(Date.now() / 1000) - 86_400) }, dc_enc: { S: 'json' } },
      }),
    );
    expect(await cache.get('stale')).toBeUndefined();
    expect(cache.stats().misses).toBe(1);
  });

  it('a memory-tier hit never outlives the item expiry', async () => {
    const { cache } = await db.newCache({ memory: { ttlSeconds: 3600 } });
    vi.useFakeTimers({ toFake: ['Date'] });
    await cache.set('short', 'v', { ttlSeconds: 5 });
    expect(await cache.get('short')).toBe('v');
    expect(cache.stats().memoryHits).toBe(1);
    vi.setSystemTime(Date.now() + 6_000);
    expect(await cache.get('short')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ memoryHits: 1, misses: 1 });
  });

  it('a DynamoDB hit fills the memory tier only for the time the item has left', async () => {
    const writer = await db.newCache({ memory: false });
    const { cache: reader } = await db.newCache({ tableName: writer.tableName, memory: { ttlSeconds: 3600 } });
    vi.useFakeTimers({ toFake: ['Date'] });
    await writer.cache.set('k', 'v', { ttlSeconds: 3 });
    expect(await reader.get('k')).toBe('v');
    expect(await reader.get('k')).toBe('v');
    expect(reader.stats()).toMatchObject({ dynamoHits: 1, memoryHits: 1 });
    vi.setSystemTime(Date.now() + 4_000);
    expect(await reader.get('k')).toBeUndefined();
  });

  it("the memory tier's own TTL bounds how long another environment's delete goes unseen", async () => {
    const a = await db.newCache({ memory: { ttlSeconds: 10 } });
    const { cache: b } = await db.newCache({ tableName: a.tableName, memory: { ttlSeconds: 10 } });
    vi.useFakeTimers({ toFake: ['Date'] });
    await a.cache.set('k', 'v', { ttlSeconds: 3600 });
    expect(await b.get('k')).toBe('v');
    await a.cache.delete('k');
    expect(await a.cache.get('k')).toBeUndefined();
    expect(await b.get('k')).toBe('v'); // still in b's memory tier
    vi.setSystemTime(Date.now() + 10_001);
    expect(await b.get('k')).toBeUndefined();
  });
});

describe('keys', () => {
  it('are the keys earlier versions wrote, to the byte: a lease key and the hashed form of a long key (pinned)', () => {
    const keys = new KeyMapper('ns');
    expect(keys.leaseKey('ns:k')).toBe('ns:#dc:l:j1SN3EslUHQa8BGEu-aDaAjbTfAKo1TNEIos98nLI5s');
    expect(keys.storageKey('x'.repeat(3000), 0)).toBe('ns:#dc:h:e1630f843370f402870799e14abbf2b06af2d23b0153658e1211dffabc61ad8f');
  });

  it('applies the namespace prefix to the stored key', async () => {
    const { cache, tableName } = await db.newCache({ namespace: 'orders' });
    await cache.set('token', 't');
    const raw = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'orders:token' } } }));
    expect(raw.Item?.cached_value).toEqual({ S: 't' });
  });

  it('namespaces on one table do not see each other', async () => {
    const a = await db.newCache({ namespace: 'fn-a', memory: false });
    const { cache: b } = await db.newCache({ tableName: a.tableName, namespace: 'fn-b', memory: false });
    await a.cache.set('shared-name', 'from a');
    expect(await b.get('shared-name')).toBeUndefined();
    await b.set('shared-name', 'from b');
    expect(await a.cache.get('shared-name')).toBe('from a');
  });

  it('a 5,000-character key round-trips, stored hashed within the 2048-byte limit', async () => {
    const { cache, tableName } = await db.newCache({ memory: false, namespace: 'ns' });
    const longKey = 'k'.repeat(5000);
    const otherLongKey = `${'k'.repeat(4999)}j`;
    await cache.set(longKey, 'long');
    await cache.set(otherLongKey, 'other');
    expect(await cache.get(longKey)).toBe('long');
    expect(await cache.get(otherLongKey)).toBe('other');
    const scan = await db.client.send(new ScanCommand({ TableName: tableName }));
    for (const item of scan.Items ?? []) {
      expect(item.id!.S!.startsWith('ns:#dc:h:')).toBe(true);
      expect(Buffer.byteLength(item.id!.S!)).toBeLessThanOrEqual(2048);
    }
  });

  it('hashes by UTF-8 bytes, not characters: multi-byte keys near the limit round-trip', async () => {
    const { cache } = await db.newCache({ memory: false });
    const key = '€'.repeat(700); // 2100 bytes in 700 characters
    await cache.set(key, 'euro');
    expect(await cache.get(key)).toBe('euro');
  });

  it("a caller's key can never collide with a stored hashed form", async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    const longKey = 'x'.repeat(3000);
    await cache.set(longKey, 'long');
    const scan = await db.client.send(new ScanCommand({ TableName: tableName }));
    const hashedForm = scan.Items![0]!.id!.S!;
    expect(await cache.get(hashedForm)).toBeUndefined();
    await cache.set(hashedForm, 'impostor');
    expect(await cache.get(longKey)).toBe('long');
    expect(await cache.get(hashedForm)).toBe('impostor');
  });

  it.each([
    ['empty string', ''],
    ['number', 42],
    ['undefined', undefined],
    ['null', null],
    ['object', { id: 1 }],
  ])('a key that is %s is an InvalidKeyError for every method', async (_name, key) => {
    const { cache } = await db.newCache();
    const bad = key as unknown as string;
    await expect(cache.get(bad)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.set(bad, 1)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.getOrSet(bad, () => 1)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.delete(bad)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.getMany(['ok', bad])).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.get(bad)).rejects.toBeInstanceOf(TypeError);
  });
});

describe('memory tier', () => {
  it('is filled from DynamoDB hits and serves the next read with no request', async () => {
    const writer = await db.newCache({ memory: false });
    const { cache } = await db.newCache({ tableName: writer.tableName });
    await writer.cache.set('k', { v: 1 });
    await cache.get('k');
    await cache.get('k');
    await cache.get('k');
    expect(cache.stats()).toMatchObject({ dynamoHits: 1, memoryHits: 2, memoryEntries: 1 });
  });

  it('is a bounded LRU: the least recently used entry is evicted', async () => {
    const { cache } = await db.newCache({ memory: { maxEntries: 2 } });
    await cache.set('a', 1);
    await cache.set('b', 2);
    await cache.get('a'); // b is now least recently used
    await cache.set('c', 3);
    expect(cache.stats().memoryEntries).toBe(2);
    expect(await cache.get('b')).toBe(2);
    expect(cache.stats()).toMatchObject({ memoryHits: 1, dynamoHits: 1 });
  });

  it('is bounded in bytes: a value larger than maxBytes is not kept in memory', async () => {
    const { cache } = await db.newCache({ memory: { maxBytes: 1024 } });
    await cache.set('big', 'x'.repeat(4096));
    await cache.set('small', 'y');
    expect(cache.stats().memoryEntries).toBe(1);
    expect(await cache.get('big')).toBe('x'.repeat(4096));
    expect(cache.stats().dynamoHits).toBe(1);
  });

  it('a write resolves with its entry in the memory tier (plain, chunked, and when DynamoDB fails)', async () => {
    const { cache } = await db.newCache({ largeValueTimeoutMs: 10_000 });
    await cache.set('small', 'v');
    await cache.getOrSet('fetched', async () => ({ n: 1 }));
    await cache.set('large', 'x'.repeat(500_000)); // written as chunk items
    expect(cache.stats().memoryEntries).toBe(3);
    expect([await cache.get('small'), await cache.get('fetched'), (await cache.get<string>('large'))?.length]).toEqual(['v', { n: 1 }, 500_000]);
    expect(cache.stats()).toMatchObject({ memoryHits: 3, dynamoHits: 0 });
    // DynamoDB unreachable (nothing listens on port 1): the write fails, the memory tier still has the value.
    const { cache: failing } = await db.newCache({ endpoint: 'http://127.0.0.1:1', logger: new RecordingLogger() });
    expect(await failing.set('offline', 'kept')).toBe(false);
    expect(await failing.get('offline')).toBe('kept');
    expect(failing.stats()).toMatchObject({ memoryHits: 1 });
  });

  it('a delete() that starts while a set() is in flight is never undone in memory: once both resolve, the tiers agree', async () => {
    for (const ticks of [5, 20, 80, 'immediate'] as const) {
      const { cache } = await db.newCache();
      await cache.get('warm'); // namespace generation known, connection open
      const setting = cache.set('k', 'old');
      if (ticks === 'immediate') await new Promise((resolve) => setImmediate(resolve));
      else for (let i = 0; i < ticks; i++) await Promise.resolve();
      const [, deleted] = await Promise.all([setting, cache.delete('k')]);
      expect(deleted).toBe(true);
      const stored = (await cache.inspect('k'))?.state;
      // Whichever request DynamoDB applied last, this environment's memory tier says the same.
      expect({ ticks, value: await cache.get('k') }).toEqual({ ticks, value: stored === 'fresh' ? 'old' : undefined });
    }
  });

  it('memory: false sends every read to DynamoDB', async () => {
    const { cache } = await db.newCache({ memory: false });
    await cache.set('k', 1);
    await cache.get('k');
    await cache.get('k');
    expect(cache.stats()).toMatchObject({ dynamoHits: 2, memoryHits: 0, memoryEntries: 0 });
  });
});

describe('getOrSet and wrap', () => {
  it('fetches on a miss, stores, and answers the next call from the cache', async () => {
    const { cache } = await db.newCache();
    const fetcher = vi.fn(async () => ({ token: 'abc' }));
    expect(await cache.getOrSet('t', fetcher, { ttlSeconds: 60 })).toEqual({ token: 'abc' });
    expect(await cache.getOrSet('t', fetcher, { ttlSeconds: 60 })).toEqual({ token: 'abc' });
    expect(fetcher).toHaveBeenCalledTimes(1);
    expect(cache.stats()).toMatchObject({ fetches: 1, writes: 1, misses: 1, hits: 1 });
  });

  it('single-flight: 25 concurrent calls for one key run the fetcher once and all get its result', async () => {
    const { cache } = await db.newCache();
    let calls = 0;
    const fetcher = async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { n: calls };
    };
    const results = await Promise.all(Array.from({ length: 25 }, () => cache.getOrSet('hot', fetcher)));
    expect(calls).toBe(1);
    expect(results).toEqual(Array.from({ length: 25 }, () => ({ n: 1 })));
    expect(cache.stats()).toMatchObject({ fetches: 1, coalesced: 24, writes: 1 });
  });

  it('single-flight: a fetcher that throws rejects every waiter and nothing is cached', async () => {
    const { cache } = await db.newCache();
    const failure = new Error('upstream 429');
    const fetcher = vi.fn(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw failure;
    });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => cache.getOrSet('k', fetcher)));
    expect(fetcher).toHaveBeenCalledTimes(1);
    expect(results.every((r) => r.status === 'rejected' && r.reason === failure)).toBe(true);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.getOrSet('k', async () => 'recovered')).toBe('recovered');
  });

  it('a fetcher returning undefined caches nothing', async () => {
    const { cache } = await db.newCache();
    const fetcher = vi.fn(async () => undefined);
    expect(await cache.getOrSet('k', fetcher)).toBeUndefined();
    expect(await cache.getOrSet('k', fetcher)).toBeUndefined();
    expect(fetcher).toHaveBeenCalledTimes(2);
    expect(cache.stats().writes).toBe(0);
  });

  it('different keys do not share a flight', async () => {
    const { cache } = await db.newCache();
    const [a, b] = await Promise.all([cache.getOrSet('a', async () => 'A'), cache.getOrSet('b', async () => 'B')]);
    expect([a, b]).toEqual(['A', 'B']);
    expect(cache.stats().fetches).toBe(2);
  });

  it('wrap caches per key built from the arguments', async () => {
    const { cache } = await db.newCache();
    const loadUser = vi.fn(async (id: string) => ({ id, name: `user ${id}` }));
    const cachedLoad = cache.wrap(loadUser, { key: (id) => `user:${id}`, ttlSeconds: 60 });
    expect(await cachedLoad('1')).toEqual({ id: '1', name: 'user 1' });
    expect(await cachedLoad('1')).toEqual({ id: '1', name: 'user 1' });
    expect(await cachedLoad('2')).toEqual({ id: '2', name: 'user 2' });
    expect(loadUser).toHaveBeenCalledTimes(2);
    expect(await cache.get('user:1')).toEqual({ id: '1', name: 'user 1' });
  });

  it('wrap without key uses the function name and the JSON arguments', async () => {
    const { cache } = await db.newCache();
    async function add(a: number, b: number) {
      return a + b;
    }
    const cachedAdd = cache.wrap(add);
    expect(await cachedAdd(1, 2)).toBe(3);
    expect(await cache.get('add:[1,2]')).toBe(3);
  });

  it('wrap refuses an anonymous function without a key, and bad options', async () => {
    const { cache } = await db.newCache();
    expect(() => cache.wrap((x: number) => x)).toThrow(InvalidOptionsError);
    expect(() => cache.wrap('nope' as never)).toThrow(InvalidOptionsError);
    expect(() => cache.wrap(async function f() {}, { ttlSeconds: Number.NaN })).toThrow(InvalidOptionsError);
    await expect(cache.getOrSet('k', 'nope' as never)).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(cache.set('k', 1, { ttlSeconds: '60' as never })).rejects.toBeInstanceOf(InvalidOptionsError);
  });
});

describe('getMany', () => {
  it('returns a Map of the hits across BatchGetItem chunks of 100, mixing memory and DynamoDB', async () => {
    const writer = await db.newCache({ memory: false });
    const { cache } = await db.newCache({ tableName: writer.tableName });
    const keys = Array.from({ length: 250 }, (_, i) => `key-${i}`);
    await Promise.all(keys.filter((_, i) => i % 5 !== 0).map((key) => writer.cache.set(key, { key })));
    await writer.cache.set('key-1', 'expired', { ttlSeconds: -1 });
    await cache.get('key-2'); // now in the memory tier
    const many = await cache.getMany([...keys, 'key-3', 'key-3', 'absent']);
    const expected = keys.filter((_, i) => i % 5 !== 0 && i !== 1);
    expect([...many.keys()].sort()).toEqual(expected.sort());
    expect(many.get('key-3')).toEqual({ key: 'key-3' });
    expect(cache.stats().memoryHits).toBe(1);
  });

  it('an empty list is an empty Map', async () => {
    const { cache } = await db.newCache();
    expect((await cache.getMany([])).size).toBe(0);
  });
});

describe('delete', () => {
  it('removes the value from memory and DynamoDB', async () => {
    const { cache, tableName } = await db.newCache();
    await cache.set('k', 'v');
    expect(await cache.delete('k')).toBe(true);
    expect(await cache.get('k')).toBeUndefined();
    const raw = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'k' } } }));
    expect(raw.Item).toBeUndefined();
    expect(cache.stats().deletes).toBe(1);
  });

  it('deleting a missing key succeeds', async () => {
    const { cache } = await db.newCache();
    expect(await cache.delete('never-set')).toBe(true);
  });
});

describe('custom attribute names', () => {
  it('stores and reads under the configured key, value and expiry names', async () => {
    const tableName = await db.newTable('pk');
    const { cache } = await db.newCache({ tableName, memory: false, attributes: { key: 'pk', value: 'val', expiresAt: 'ttl' } });
    await cache.set('k', [1, 2]);
    expect(await cache.get('k')).toEqual([1, 2]);
    const raw = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'k' } } }));
    expect(Object.keys(raw.Item!).filter((name) => name !== 'dc_fresh').sort()).toEqual(['dc_enc', 'pk', 'ttl', 'val']);
  });
});

describe('kill switch: disabled, or DYNAMO_CACHE_DISABLED=true', () => {
  const proxy = useFaultProxy(db);

  it('an always-miss cache that never calls DynamoDB, and needs no table name', async () => {
    const { cache } = await db.newCache({ endpoint: proxy.endpoint, disabled: true });
    proxy.resetCounts();
    const fetcher = vi.fn(async () => 'from the upstream');
    expect(await cache.set('k', 'v')).toBe(false);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.getOrSet('k', fetcher)).toBe('from the upstream');
    expect(await cache.getOrSet('k', fetcher)).toBe('from the upstream');
    expect(fetcher).toHaveBeenCalledTimes(2);
    expect((await cache.getMany(['k'])).size).toBe(0);
    expect(await cache.delete('k')).toBe(false);
    expect(await cache.clear()).toBe(false);
    const turn = await cache.acquire('k');
    expect(turn.found).toBe(false);
    expect(proxy.count()).toBe(0);
    const saved = { table: process.env.DYNAMO_CACHE_TABLE, disabled: process.env.DYNAMO_CACHE_DISABLED };
    try {
      delete process.env.DYNAMO_CACHE_TABLE;
      process.env.DYNAMO_CACHE_DISABLED = 'true';
      const fromEnv = new DynamoCache({ logger: new RecordingLogger() });
      expect(fromEnv.disabled).toBe(true);
      expect(await fromEnv.getOrSet('k', async () => 1)).toBe(1);
      expect(new DynamoCache({ logger: new RecordingLogger(), disabled: false, tableName: 'tbl' }).disabled).toBe(false);
    } finally {
      for (const [name, value] of [['DYNAMO_CACHE_TABLE', saved.table], ['DYNAMO_CACHE_DISABLED', saved.disabled]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});

describe('prefetch: known keys warmed into memory during INIT', () => {
  const proxy = useFaultProxy(db);

  it('reads the listed keys once, so the first invocations hit memory with no DynamoDB request', async () => {
    const tableName = await db.newTable();
    const { cache: writer } = await db.newCache({ tableName });
    await writer.set('config', { flags: ['a'] });
    await writer.set('token', 'abc');
    const { cache } = await db.newCache({ tableName, endpoint: proxy.endpoint, prefetch: ['config', 'token', 'absent'] });
    await cache.ready;
    proxy.resetCounts();
    expect(await cache.get('config')).toEqual({ flags: ['a'] });
    expect(await cache.get('token')).toBe('abc');
    expect(proxy.count()).toBe(0);
    expect(cache.stats().memoryHits).toBe(2);
  });

  it('with DynamoDB down, construction succeeds, ready resolves, and the failure is a warning', async () => {
    proxy.setFaults({ dropRate: 1 });
    const { cache, logger } = await db.newCache({ tableName: await db.newTable(), endpoint: proxy.endpoint, timeoutMs: 200, prefetch: ['config'] });
    await expect(cache.ready).resolves.toBeUndefined();
    expect(logger.warnings.length).toBeGreaterThan(0);
  });

  it('a bad prefetch list is an InvalidOptionsError at construction', () => {
    expect(() => new DynamoCache({ tableName: 'tbl', logger: new RecordingLogger(), prefetch: ['ok', ''] })).toThrow(InvalidOptionsError);
  });
});

describe('a DynamoCache is recognized across copies of the package (no instanceof)', () => {
  it('one built by the CommonJS build is a DynamoCache for the ES module build and the sources, and back', async () => {
    const require = createRequire(import.meta.url);
    const cjs = require('../dist/index.cjs') as typeof import('../src/index.ts');
    const esm = (await import('../dist/index.js' as string)) as typeof import('../src/index.ts');
    const options = { tableName: 'tbl', logger: new RecordingLogger(), clientConfig: { region: 'us-east-1' } };
    const fromCjs = new cjs.DynamoCache(options);
    const fromEsm = new esm.DynamoCache(options);
    expect(fromCjs instanceof esm.DynamoCache).toBe(false); // the hazard
    expect(esm.DynamoCache.isDynamoCache(fromCjs)).toBe(true);
    expect(cjs.DynamoCache.isDynamoCache(fromEsm)).toBe(true);
    expect(DynamoCache.isDynamoCache(fromCjs)).toBe(true);
    expect(DynamoCache.isDynamoCache({ get() {}, set() {} })).toBe(false);
  });
});

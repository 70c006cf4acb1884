import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidKeyError, InvalidOptionsError, InvalidValueError } from '../src/errors.ts';
import { INLINE_LIMIT_FOR_TESTS, type DynamoCacheOptions } from '../src/options.ts';
import { scanAll } from './support/dynalite.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

const itemsOf = (tableName: string) => scanAll(db.client, tableName);

describe('setMany', () => {
  it('1,000 entries are all stored under UnprocessedItems faults: BatchWriteItem, 25 per request, the rest sent again', async () => {
    const tableName = await db.newTable();
    const { cache } = await db.newCache({ tableName, endpoint: proxy.endpoint, memory: false });
    proxy.setFaults({ unprocessedRate: 0.4, operations: ['BatchWriteItem'] });
    const entries = new Map(Array.from({ length: 1000 }, (_, i) => [`entry:${i}`, { i, tags: ['a', 'b'] }]));
    expect(await cache.setMany(entries, { ttlSeconds: 600 })).toBe(true);
    expect(proxy.injected.get('unprocessed')).toBeGreaterThan(100);
    expect(proxy.count('BatchWriteItem')).toBeGreaterThan(40); // 40 requests, and the unprocessed items again
    expect(proxy.count('PutItem')).toBe(0);
    expect(cache.stats()).toMatchObject({ writes: 1000, errors: 0 });
    expect(cache.stats().retries).toBeGreaterThan(0);
    proxy.setFaults({});
    const { cache: reader } = await db.newCache({ tableName });
    const read = await reader.getMany([...entries.keys()]);
    expect(read.size).toBe(1000);
    for (const [key, value] of entries) expect(read.get(key)).toEqual(value);
  });

  it('takes a Map, [key, value] pairs or an object; a key given twice keeps its last value', async () => {
    const { cache } = await db.newCache({ memory: false });
    expect(await cache.setMany(new Map([['m', 1]]))).toBe(true);
    expect(await cache.setMany([['p', 1], ['p', 2]])).toBe(true);
    expect(await cache.setMany({ o: 'x' })).toBe(true);
    expect(Object.fromEntries(await cache.getMany(['m', 'p', 'o']))).toEqual({ m: 1, p: 2, o: 'x' });
    expect(await cache.setMany([])).toBe(true);
  });

  it('ttlSeconds may be a function of each value and its key', async () => {
    const { cache } = await db.newCache({ memory: false });
    await cache.setMany({ short: { ttl: 5 }, long: { ttl: 500 } }, { ttlSeconds: (value) => value.ttl });
    const left = async (key: string) => ((await cache.inspect(key))!.freshUntil!.getTime() - Date.now()) / 1000;
    expect(await left('short')).toBeLessThanOrEqual(5);
    expect(await left('long')).toBeGreaterThan(400);
  });

  it('a value too large for one item is written on its own, in chunks, beside the batched ones', async () => {
    const tableName = await db.newTable();
    const { cache } = await db.newCache({ tableName, endpoint: proxy.endpoint, memory: false, compression: false, ...({ [INLINE_LIMIT_FOR_TESTS]: 1000 } as DynamoCacheOptions) });
    const large = randomBytes(3500);
    expect(await cache.setMany({ small: 'a', large, other: 'b' })).toBe(true);
    expect(proxy.count('PutItem')).toBe(1); // the large value's head; its 4 chunks and the two small ones in batches
    expect(Buffer.from((await cache.get<Uint8Array>('large'))!).equals(large)).toBe(true);
    expect((await itemsOf(tableName)).filter((item) => item.dc_enc?.S === 'chunk')).toHaveLength(4);
  });

  it('seals and keys values as set does: encryption, compression, hashed keys, the namespace', async () => {
    const options: DynamoCacheOptions = {
      namespace: 'billing',
      encryption: { keys: { k1: randomBytes(32) }, writeKeyId: 'k1' },
      compression: { thresholdBytes: 0, strings: true, saving: 'bytes' },
      hashKeys: { secret: randomBytes(32) },
    };
    const { cache, tableName } = await db.newCache({ ...options, memory: false });
    const value = { invoice: 'x'.repeat(2000) };
    expect(await cache.setMany({ 'invoice:1': value, 'invoice:2': 'plain'.repeat(500) })).toBe(true);
    expect(await cache.get('invoice:1')).toEqual(value);
    expect(await cache.get('invoice:2')).toBe('plain'.repeat(500));
    const items = await itemsOf(tableName);
    expect(items.every((item) => item.id!.S!.startsWith('billing:#dc:m:'))).toBe(true);
    expect(items.map((item) => item.dc_enc?.S).sort()).toEqual(['json+br+aes256gcm2:k1', 'string+br+aes256gcm2:k1']);
  });

  it('fails open: when DynamoDB fails it resolves false, and the memory tier keeps the values', async () => {
    const { cache } = await db.newCache({ endpoint: proxy.endpoint, timeoutMs: 200, breaker: false, retry: { maxAttempts: 1 } });
    proxy.setFaults({ throttleRate: 1, operations: ['BatchWriteItem'] });
    expect(await cache.setMany({ a: 1, b: 2 })).toBe(false);
    expect(Object.fromEntries(await cache.getMany(['a', 'b']))).toEqual({ a: 1, b: 2 });
    expect(cache.stats().throttles).toBeGreaterThan(0);
  });

  it('refuses bad input before storing anything, naming the key', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    await expect(cache.setMany({ good: 1, bad: undefined })).rejects.toThrow(InvalidValueError);
    await expect(cache.setMany({ good: 1, bad: new Date() })).rejects.toThrow(/"bad"/);
    await expect(cache.setMany([['', 1]])).rejects.toThrow(InvalidKeyError);
    await expect(cache.setMany({ good: 1 }, { ttlSeconds: () => Number.NaN })).rejects.toThrow(InvalidOptionsError);
    await expect(cache.setMany({ good: 1 }, { ttl: 5 } as never)).rejects.toThrow(/did you mean "ttlSeconds"/);
    await expect(cache.setMany('ab' as never)).rejects.toThrow(/needs a Map/);
    await expect(cache.setMany([['a', 1, 2]] as never)).rejects.toThrow(/\[key, value\] pairs/);
    expect(await itemsOf(tableName)).toEqual([]);
  });
});

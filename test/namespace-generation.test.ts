import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

afterEach(() => {
  vi.useRealTimers();
});

describe('clear(): O(1) flush of a namespace', () => {
  it('a flush is visible at once to the flushing cache and to a fresh one; old items are never returned', async () => {
    const a = await db.newCache({ namespace: 'orders' });
    await a.cache.set('k', 'old');
    expect(await a.cache.clear()).toBe(true);
    expect(await a.cache.get('k')).toBeUndefined();
    const { cache: fresh } = await db.newCache({ tableName: a.tableName, namespace: 'orders' });
    expect(await fresh.get('k')).toBeUndefined();
    await fresh.set('k', 'new');
    expect(await a.cache.get('k')).toBe('new');
    // The old item is still in the table (DynamoDB's TTL removes it), just unreachable.
    const old = await db.client.send(new GetItemCommand({ TableName: a.tableName, Key: { id: { S: 'orders:k' } } }));
    expect(old.Item?.cached_value).toEqual({ S: 'old' });
  });

  it('an existing cache in another environment sees the flush within the memory tier bound', async () => {
    const a = await db.newCache({ namespace: 'ns', memory: { ttlSeconds: 30 } });
    const { cache: other } = await db.newCache({ tableName: a.tableName, namespace: 'ns', memory: { ttlSeconds: 30 } });
    vi.useFakeTimers({ toFake: ['Date'] });
    await a.cache.set('k', 'v', { ttlSeconds: 3600 });
    expect(await other.get('k')).toBe('v');
    await a.cache.clear();
    expect(await other.get('k')).toBe('v'); // still inside the bound: its memory tier and generation are current for 30 s
    vi.setSystemTime(Date.now() + 30_001);
    expect(await other.get('k')).toBeUndefined();
    const { cache: noMemory } = await db.newCache({ tableName: a.tableName, namespace: 'ns', memory: false });
    await a.cache.set('k2', 'before');
    expect(await noMemory.get('k2')).toBe('before');
    await a.cache.clear();
    vi.setSystemTime(Date.now() + 30_001); // without a memory tier, the generation is still reread every 30 s
    expect(await noMemory.get('k2')).toBeUndefined();
  });

  it('costs one write whatever the number of items', async () => {
    const tableName = await db.newTable();
    const { cache } = await db.newCache({ tableName, endpoint: proxy.endpoint, namespace: 'big' });
    await Promise.all(Array.from({ length: 200 }, (_, i) => cache.set(`k${i}`, i)));
    proxy.resetCounts();
    expect(await cache.clear()).toBe(true);
    expect(proxy.count()).toBe(1);
    expect(proxy.count('UpdateItem')).toBe(1);
    expect((await cache.getMany(['k1', 'k2', 'k199'])).size).toBe(0);
  });

  it('keeps the drop-in key layout until the first flush, then prefixes keys with the generation', async () => {
    const { cache, tableName } = await db.newCache({ namespace: 'app', memory: false });
    await cache.set('k', 1);
    expect((await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'app:k' } } }))).Item).toBeDefined();
    await cache.clear();
    await cache.clear();
    await cache.set('k', 3);
    expect((await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'app:#dc:g2:k' } } }))).Item).toBeDefined();
    const meta = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'app:#dc:meta' } } }));
    expect(meta.Item?.dc_generation).toEqual({ N: '2' });
    expect(meta.Item?.expires_at).toBeUndefined(); // never expires: that would bring old generations back
  });

  it('flushing one namespace leaves the others alone', async () => {
    const a = await db.newCache({ namespace: 'fn-a', memory: false });
    const { cache: b } = await db.newCache({ tableName: a.tableName, namespace: 'fn-b', memory: false });
    await a.cache.set('k', 'a');
    await b.set('k', 'b');
    await a.cache.clear();
    expect(await a.cache.get('k')).toBeUndefined();
    expect(await b.get('k')).toBe('b');
  });

  it('resolves false when DynamoDB fails, and nothing throws', async () => {
    const { cache } = await db.newCache({ tableName: await db.newTable(), endpoint: proxy.endpoint, timeoutMs: 200, breaker: false });
    proxy.setFaults({ throttleRate: 1 });
    expect(await cache.clear()).toBe(false);
  });
});

describe('a flush seen here stays seen: the generation only moves forward', () => {
  /** Environment A holds 'k' in memory; B flushes; A learns of the flush (through another key); then A's next reread of the generation is throttled. */
  async function flushedThenThrottled() {
    const tableName = await db.newTable();
    const { cache: a } = await db.newCache({ tableName, endpoint: proxy.endpoint, timeoutMs: 500 });
    const { cache: b } = await db.newCache({ tableName });
    let calls = 0;
    const fetch = async () => `v${++calls}`;
    vi.useFakeTimers({ toFake: ['Date'] });
    expect(await a.getOrSet('k', fetch, { ttlSeconds: 3600 })).toBe('v1');
    expect(await b.clear()).toBe(true);
    vi.setSystemTime(Date.now() + 30_001); // A's generation is due for a reread
    expect(await a.getOrSet('other', fetch, { ttlSeconds: 3600 })).toBe('v2');
    expect((await a.inspect('k'))?.state).toBe('absent'); // A knows the new generation
    vi.setSystemTime(Date.now() + 30_001); // due again
    proxy.setFaults({ throttleRate: 1, operations: ['GetItem'] });
    return { a, fetch };
  }

  it('get: a value the flush ended is not answered again when the next reread is throttled', async () => {
    const { a } = await flushedThenThrottled();
    expect(await a.get('k')).toBeUndefined();
  });

  it('getOrSet: a value the flush ended is not answered again from memory when the next reread is throttled', async () => {
    const { a, fetch } = await flushedThenThrottled();
    const sources: string[] = [];
    const value = await a.getOrSet('k', fetch, { ttlSeconds: 3600, onResult: ({ source }) => sources.push(source) });
    expect({ value, sources }).toEqual({ value: 'v3', sources: ['fetcher'] });
  });
});

describe('reserved key space: no key reaches another namespace\'s internals', () => {
  it.each(['orders:#dc:meta', 'orders:#dc:g1:k', '#dc:meta', 'x:#dc:l:anything'])(
    'a cache without a namespace storing %s cannot undo the orders namespace\'s flush',
    async (attackKey) => {
      const orders = await db.newCache({ namespace: 'orders', memory: false });
      await orders.cache.set('k', 'before the flush');
      expect(await orders.cache.clear()).toBe(true);
      const { cache: unprefixed } = await db.newCache({ tableName: orders.tableName, memory: false });
      // Generation 0 is the value an attacker would write to take the flush back.
      expect(await unprefixed.set(attackKey, 0)).toBe(true);
      expect(await unprefixed.get(attackKey)).toBe(0); // still an ordinary key for its writer
      const meta = await db.client.send(new GetItemCommand({ TableName: orders.tableName, Key: { id: { S: 'orders:#dc:meta' } }, ConsistentRead: true }));
      expect(meta.Item?.dc_generation).toEqual({ N: '1' });
      const { cache: newEnvironment } = await db.newCache({ tableName: orders.tableName, namespace: 'orders', memory: false });
      expect(await newEnvironment.get('k')).toBeUndefined();
    },
  );
});

describe('a cold start with the namespace generation unknown (DynamoDB unreachable or slow)', () => {
  it('20 concurrent getOrSet with DynamoDB unreachable make exactly one fetch, and the memory tier serves the next calls', async () => {
    const { cache, logger } = await db.newCache({ tableName: await db.newTable(), endpoint: proxy.endpoint, timeoutMs: 200, breaker: false, namespace: 'cold' });
    proxy.setFaults({ dropRate: 1 });
    const fetcher = vi.fn(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { token: 'from the upstream' };
    });
    const first = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('token', fetcher)));
    expect(first.every((value) => value.token === 'from the upstream')).toBe(true);
    expect(fetcher).toHaveBeenCalledTimes(1);
    const later = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('token', fetcher)));
    expect(later.every((value) => value.token === 'from the upstream')).toBe(true);
    expect(fetcher).toHaveBeenCalledTimes(1);
    expect(await cache.get('token')).toEqual({ token: 'from the upstream' });
    // One read of the generation for all of them (retried by the guard), not one per call.
    expect(proxy.count('GetItem')).toBeLessThanOrEqual(3);
    expect(logger.warnings.length).toBeGreaterThan(0);
  });

  it('a slow metadata read is shared by all callers, and 20 more callers 50 ms later still make no second fetch', async () => {
    const { cache } = await db.newCache({ tableName: await db.newTable(), endpoint: proxy.endpoint, timeoutMs: 300, breaker: false, namespace: 'slow' });
    proxy.setFaults({ latencyMs: 450 });
    const fetcher = vi.fn(async () => 'value');
    const first = Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('k', fetcher)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    proxy.setFaults({});
    const second = Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('k', fetcher)));
    expect(await first).toEqual(Array(20).fill('value'));
    expect(await second).toEqual(Array(20).fill('value'));
    expect(fetcher).toHaveBeenCalledTimes(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('k', fetcher)))).toEqual(Array(20).fill('value'));
    expect(fetcher).toHaveBeenCalledTimes(1);
  });

  it('a value fetched while the generation was unknown is not served after a flush this environment makes', async () => {
    const { cache } = await db.newCache({ tableName: await db.newTable(), endpoint: proxy.endpoint, timeoutMs: 200, breaker: false, namespace: 'f' });
    proxy.setFaults({ dropRate: 1 });
    expect(await cache.getOrSet('k', async () => 'fetched blind')).toBe('fetched blind');
    proxy.setFaults({});
    expect(await cache.clear()).toBe(true);
    expect(await cache.getOrSet('k', async () => 'after the flush')).toBe('after the flush');
  });
});

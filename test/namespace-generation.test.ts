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

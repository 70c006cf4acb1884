import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OriginalCacheService } from '../bench/baselines/original-cache-service.ts';
import type { DynamoCache } from '../src/cache.ts';
import type { DynamoCacheOptions } from '../src/options.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

afterEach(() => {
  vi.useRealTimers();
});

async function fleet(n: number, options: DynamoCacheOptions & { endpoint?: string } = {}): Promise<DynamoCache[]> {
  const tableName = await db.newTable();
  return Promise.all(Array.from({ length: n }, async () => (await db.newCache({ tableName, ...options })).cache));
}

describe('invalidate', () => {
  it('ends a cached "not found" too (the thing exists now), which ifValue never accepts', async () => {
    const [cache] = await fleet(1, { negativeTtlSeconds: 300 });
    expect(await cache!.getOrSet('user:9', async () => undefined)).toBeUndefined();
    expect(await cache!.invalidate('user:9', { ifValue: () => true })).toBe(false);
    expect(await cache!.getOrSet('user:9', async () => ({ created: true }))).toBeUndefined(); // still the cached "not found"
    expect(await cache!.invalidate('user:9')).toBe(true);
    expect(await cache!.getOrSet('user:9', async () => ({ created: true }))).toEqual({ created: true });
  });

  it('ends a value for good: never answered again, not even stale, and the next getOrSet refreshes it', async () => {
    const [cache, other] = await fleet(2, { staleWhileRevalidateSeconds: 60, staleIfErrorSeconds: 60 });
    await cache!.set('config', { version: 1 });
    expect(await other!.get('config')).toEqual({ version: 1 });
    expect(await cache!.invalidate('config')).toBe(true);
    expect(await cache!.get('config')).toBeUndefined();
    // No stale value stands in while a refresh runs, or when it fails.
    await expect(
      cache!.getOrSet('config', async () => {
        throw new Error('upstream down');
      }),
    ).rejects.toThrow('upstream down');
    expect(await cache!.getOrSet('config', async () => ({ version: 2 }))).toEqual({ version: 2 });
    expect(await cache!.invalidate('missing')).toBe(false);
  });

  it('the next refresh wins its lease at once, where after a delete it waits for the last refresh\'s lease to run out', async () => {
    const [cache, other] = await fleet(2, { lease: { ttlMs: 30_000, waitMs: 300 } });
    await cache!.getOrSet('a', async () => 'v1'); // its lease item stays until a newer value ends it
    await cache!.getOrSet('b', async () => 'v1');
    expect(await cache!.delete('a')).toBe(true);
    expect(await cache!.invalidate('b')).toBe(true);
    expect(await other!.getOrSet('a', async () => 'v2')).toBe('v2');
    expect(other!.stats()).toMatchObject({ leaseWaits: 1, leaseWaitTimeouts: 1 }); // waited on a lease nobody holds
    expect(await other!.getOrSet('b', async () => 'v2')).toBe('v2');
    expect(other!.stats()).toMatchObject({ leaseWaits: 1, leaseWins: 1 });
  });

  it('with ifValue, ends only the value it accepts: one stored since is kept', async () => {
    const [cache, other] = await fleet(2);
    await cache!.set('token', { accessToken: 'rejected' });
    await other!.set('token', { accessToken: 'new' });
    expect(await cache!.invalidate<{ accessToken: string }>('token', { ifValue: (value) => value.accessToken === 'rejected' })).toBe(false);
    expect(await other!.get('token', {})).toEqual({ accessToken: 'new' });
    expect(await cache!.invalidate<{ accessToken: string }>('token', { ifValue: (value) => value.accessToken === 'new' })).toBe(true);
    expect(await cache!.get('token')).toBeUndefined();
  });

  it('is conditional on the value it read: a value written between its read and its write is kept', async () => {
    const tableName = await db.newTable();
    const { cache: slow } = await db.newCache({ tableName, endpoint: proxy.endpoint });
    const { cache: writer } = await db.newCache({ tableName });
    await writer.set('k', 'v1');
    proxy.setFaults({ latencyMs: 400, operations: ['PutItem'] }); // the invalidation's write arrives late
    const invalidating = slow.invalidate('k');
    await vi.waitFor(() => expect(proxy.count('PutItem')).toBe(1));
    await writer.set('k', 'v2');
    expect(await invalidating).toBe(false);
    expect(await slow.get('k')).toBe('v2');
  });

  it('drops the key from this environment\'s memory tier; the item left reads as a miss for every reader, the original service too', async () => {
    const { cache, tableName } = await db.newCache();
    await cache.set('k', 'value');
    expect(await cache.invalidate('k')).toBe(true);
    expect(await cache.get('k')).toBeUndefined();
    expect(await new OriginalCacheService(db.client, tableName).get('k')).toBeUndefined();
    const item = (await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'k' } } }))).Item!;
    expect(Object.keys(item).sort()).toEqual(['dc_fresh', 'expires_at', 'id']); // no value: the freshness it ended, for the next lease
    expect(cache.stats()).toMatchObject({ deletes: 1, corruptItems: 0 });
    expect((await cache.inspect('k'))!.state).toBe('absent');
  });

  it('fails open: with DynamoDB failing it resolves false, and this environment stops answering the value', async () => {
    const { cache } = await db.newCache({ endpoint: proxy.endpoint, timeoutMs: 200, breaker: false, retry: { maxAttempts: 1 } });
    await cache.set('k', 'value');
    proxy.setFaults({ serverErrorRate: 1 });
    expect(await cache.invalidate('k')).toBe(false);
    expect(await cache.get('k')).toBeUndefined(); // not from memory
    expect(cache.stats().errors).toBeGreaterThan(0);
  });

  it('checks its options', async () => {
    const { cache } = await db.newCache();
    await expect(cache.invalidate('')).rejects.toThrow(/key/);
    await expect(cache.invalidate('k', { ifValue: 'x' as never })).rejects.toThrow(/ifValue must be a function/);
    await expect(cache.invalidate('k', { if: () => true } as never)).rejects.toThrow(/Unknown option "if"/);
  });
});

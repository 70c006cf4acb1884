import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { OriginalCacheService } from '../bench/baselines/original-cache-service.ts';
import { expiresAtSeconds, hasExpired } from '../src/refresh/expiry.ts';
import { useDynalite } from './support/fixtures.ts';

const db = useDynalite();

/**
 * Counterparts of every test in the original `TestCacheService` (moto + unittest), run against dynalite
 * through the real SDK, followed by the drop-in guarantees between the two implementations.
 */
describe('TestCacheService counterparts', () => {
  it('test_set_data: a set string is stored in cached_value', async () => {
    const { cache, tableName } = await db.newCache();
    await expect(cache.set('test-key', 'test-value')).resolves.toBe(true);
    const response = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'test-key' } } }));
    expect(response.Item?.cached_value).toEqual({ S: 'test-value' });
  });

  it('test_set_update_with_expired_ttl: an expired value is a miss, a later set replaces it', async () => {
    const { cache } = await db.newCache({ memory: false });
    await cache.set('test-key', 'test-value', { ttlSeconds: -1 });
    expect(await cache.get('test-key')).toBeUndefined();
    await cache.set('test-key', 'test-value');
    expect(await cache.get('test-key')).toBe('test-value');
  });

  it('test_ttl_data: the default TTL is 3300 seconds from now', async () => {
    const { cache, tableName } = await db.newCache();
    const before = Date.now() / 1000;
    await cache.set('test-key', 'test-value');
    const response = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'test-key' } } }));
    const expiresAt = Number(response.Item?.expires_at?.N);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 3300);
    expect(expiresAt).toBeLessThanOrEqual(before + 3300 + 2);
    expect(expiresAtSeconds(3300, 1_000_000)).toBe(1000 + 3300);
  });

  it('test_has_expired: an expiry computed with the default TTL has not expired', () => {
    expect(hasExpired(expiresAtSeconds(3300))).toBe(false);
  });

  it('test_has_not_expired: an expiry an hour before the default TTL has expired', () => {
    expect(hasExpired(expiresAtSeconds(3300) - 3600)).toBe(true);
  });

  it('test_get_data: a set value is read back', async () => {
    const { cache } = await db.newCache();
    await cache.set('test-key', 'test-value');
    expect(await cache.get('test-key')).toBe('test-value');
  });

  it('test_get_expired: a value set with a negative TTL is None/undefined', async () => {
    const { cache } = await db.newCache();
    await cache.set('test-key', 'test-value', { ttlSeconds: -1 });
    expect(await cache.get('test-key')).toBeUndefined();
  });
});

describe('drop-in on the original table', () => {
  it('reads an item the original service wrote (plain S value, fractional expires_at)', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    const original = new OriginalCacheService(db.client, tableName);
    await original.set('access_token', 'eyJhbGciOi.token');
    const raw = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'access_token' } } }));
    expect(raw.Item?.expires_at?.N).toMatch(/\.\d+$/);
    expect(await cache.get('access_token')).toBe('eyJhbGciOi.token');
  });

  it('reads a hand-written original item with a float expiry, and treats an expired one as a miss', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    const put = (id: string, expiresAt: number) =>
      db.client.send(new PutItemCommand({ TableName: tableName, Item: { id: { S: id }, cached_value: { S: 'v' }, expires_at: { N: String(expiresAt) } } }));
    await put('live', Date.now() / 1000 + 120.5);
    await put('dead', Date.now() / 1000 - 0.5);
    expect(await cache.get('live')).toBe('v');
    expect(await cache.get('dead')).toBeUndefined();
  });

  it('writes plain strings the original service reads unchanged, with no marker attribute', async () => {
    const { cache, tableName } = await db.newCache();
    const original = new OriginalCacheService(db.client, tableName);
    await cache.set('access_token', 'tok-123', { ttlSeconds: 60 });
    expect(await original.get('access_token')).toBe('tok-123');
    const raw = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'access_token' } } }));
    expect(raw.Item?.cached_value).toEqual({ S: 'tok-123' });
    expect(raw.Item?.dc_enc).toBeUndefined();
    // Besides the original's three attributes, only the exact freshness deadline (ms), which it ignores.
    expect(Object.keys(raw.Item ?? {}).filter((name) => name !== 'dc_fresh').sort()).toEqual(['cached_value', 'expires_at', 'id']);
  });

  it('the original service sees an expired dynamo-cache item as expired too', async () => {
    const { cache, tableName } = await db.newCache();
    await cache.set('k', 'v', { ttlSeconds: 0 });
    expect(await new OriginalCacheService(db.client, tableName).get('k')).toBeUndefined();
  });

  it('marks non-string values so they decode exactly, while the original still gets text', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    await cache.set('n', 42);
    await cache.set('s', '42');
    expect(await cache.get('n')).toBe(42);
    expect(await cache.get('s')).toBe('42');
    const raw = await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: 'n' } } }));
    expect(raw.Item?.dc_enc).toEqual({ S: 'json' });
    expect(await new OriginalCacheService(db.client, tableName).get('n')).toBe('42');
  });
});

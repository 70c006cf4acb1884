import { GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { useDynalite } from './support/fixtures.ts';

const db = useDynalite();

async function rawItem(tableName: string, id: string): Promise<Record<string, AttributeValue>> {
  return (await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: id } } }))).Item!;
}

const rows = (n: number) => ({ rows: Array.from({ length: n }, (_, i) => ({ id: i, name: `customer ${i}`, plan: i % 3 ? 'basic' : 'pro' })) });

describe('compression', () => {
  it('compresses JSON of 1 KiB or more with brotli, transparently', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    const value = rows(200);
    await cache.set('big', value);
    const item = await rawItem(tableName, 'big');
    expect(item.dc_enc?.S).toBe('json+br');
    expect(item.cached_value!.B!.byteLength).toBeLessThan(JSON.stringify(value).length / 4);
    expect(await cache.get('big')).toEqual(value);
  });

  it('leaves small values, incompressible values and (by default) plain strings as they are', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    await cache.set('small', { a: 1 });
    await cache.set('random', randomBytes(4096));
    await cache.set('text', 'x'.repeat(10_000));
    expect((await rawItem(tableName, 'small')).dc_enc?.S).toBe('json');
    expect((await rawItem(tableName, 'random')).dc_enc?.S).toBe('buffer');
    expect((await rawItem(tableName, 'text')).cached_value?.S).toBe('x'.repeat(10_000)); // still readable by the original service
  });

  it('by default compresses only when that saves read units; write units and any saving are options', async () => {
    const small = { text: 'abc'.repeat(250) }; // 767 bytes: compressible, one read and one write unit either way
    const overOneKb = { text: 'abc'.repeat(400) }; // 1,217 bytes: one read unit either way, two write units plain
    const overFourKb = { text: 'abc'.repeat(1500) }; // 4,517 bytes: two read units plain, one compressed
    const stored = async (saving: 'read-units' | 'write-units' | 'bytes' | undefined) => {
      const { cache, tableName } = await db.newCache({ memory: false, ...(saving === undefined ? {} : { compression: { saving } }) });
      const markers: Array<string | undefined> = [];
      for (const [key, value] of Object.entries({ small, overOneKb, overFourKb })) {
        await cache.set(key, value);
        markers.push((await rawItem(tableName, key)).dc_enc?.S);
        expect(await cache.get(key)).toEqual(value);
      }
      return markers;
    };
    expect(await stored(undefined)).toEqual(['json', 'json', 'json+br']);
    expect(await stored('read-units')).toEqual(['json', 'json', 'json+br']);
    expect(await stored('write-units')).toEqual(['json', 'json+br', 'json+br']);
    expect(await stored('bytes')).toEqual(['json+br', 'json+br', 'json+br']);
  });

  it('gzip, strings included, and a custom threshold are options', async () => {
    const { cache, tableName } = await db.newCache({ memory: false, compression: { algorithm: 'gzip', strings: true, thresholdBytes: 100, saving: 'bytes' } });
    await cache.set('text', 'abc'.repeat(100));
    expect((await rawItem(tableName, 'text')).dc_enc?.S).toBe('string+gzip');
    expect(await cache.get('text')).toBe('abc'.repeat(100));
  });

  it('compression: false stores JSON as text', async () => {
    const { cache, tableName } = await db.newCache({ memory: false, compression: false });
    await cache.set('big', rows(200));
    expect((await rawItem(tableName, 'big')).cached_value?.S).toBe(JSON.stringify(rows(200)));
  });

  it.each([
    ['truncated compressed data', (data: Uint8Array) => data.subarray(0, data.byteLength - 10)],
    ['garbage under a compression marker', () => randomBytes(200)],
  ])('%s is a miss and a warning', async (_name, damage) => {
    const { cache, tableName, logger } = await db.newCache({ memory: false });
    await cache.set('big', rows(200));
    const item = await rawItem(tableName, 'big');
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { ...item, cached_value: { B: damage(item.cached_value!.B!) } } }));
    expect(await cache.get('big')).toBeUndefined();
    expect(cache.stats().corruptItems).toBe(1);
    expect(logger.warnings).toHaveLength(1);
  });

  it('reads a gzip item written with another threshold or algorithm setting', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    await db.client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { id: { S: 'g' }, cached_value: { B: gzipSync('{"from":"elsewhere"}') }, dc_enc: { S: 'json+gzip' }, expires_at: { N: String(Math.floor(Date.now() / 1000) + 60) } },
      }),
    );
    expect(await cache.get('g')).toEqual({ from: 'elsewhere' });
  });
});

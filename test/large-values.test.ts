import { DeleteItemCommand, GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { dynamoCache } from '../src/middleware/dynamo-cache-middleware.ts';
import { localClientConfig, scanAll as scanTable } from './support/dynalite.ts';
import { useDynalite } from './support/fixtures.ts';
import { httpApiEvent, lambdaContext } from './support/http-events.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const db = useDynalite();

async function rawItem(tableName: string, id: string): Promise<Record<string, AttributeValue>> {
  return (await db.client.send(new GetItemCommand({ TableName: tableName, Key: { id: { S: id } } }))).Item!;
}

const scanAll = (tableName: string) => scanTable(db.client, tableName);

describe('large values', () => {
  it('a 2 MB incompressible value round-trips and is stored as several items', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    const value = randomBytes(2 * 1024 * 1024);
    expect(await cache.set('blob', value)).toBe(true);
    const got = await cache.get<Buffer>('blob');
    expect(Buffer.isBuffer(got) && got.equals(value)).toBe(true);
    const items = await scanAll(tableName);
    const chunks = items.filter((item) => item.dc_enc?.S === 'chunk');
    expect(chunks.length).toBeGreaterThanOrEqual(6);
    for (const chunk of chunks) expect(chunk.cached_value!.B!.byteLength).toBeLessThanOrEqual(390_000);
    const head = await rawItem(tableName, 'blob');
    expect(head.cached_value).toBeUndefined();
    expect(head).toMatchObject({ dc_chunks: { N: String(chunks.length) }, dc_size: { N: String(value.byteLength) } });
  });

  it('a large text value and a large encrypted JSON value round-trip too', async () => {
    const encryption = { keys: { k: randomBytes(32) }, writeKeyId: 'k' };
    const { cache } = await db.newCache({ memory: false, compression: false, encryption });
    const text = 'é'.repeat(600_000); // 1.2 MB of UTF-8
    const json = { data: randomBytes(900_000).toString('base64') };
    await cache.set('text', text);
    await cache.set('json', json);
    expect(await cache.get('text')).toBe(text);
    expect(await cache.get('json')).toEqual(json);
    const { cache: plain } = await db.newCache({ memory: false, compression: false });
    await plain.set('text', text);
    expect(await plain.get('text')).toBe(text);
  });

  it('a reader during the replacement of a chunked value gets the old or the new value, whole', async () => {
    const { cache: writer, tableName } = await db.newCache({ memory: false });
    const { cache: reader } = await db.newCache({ tableName, memory: false });
    const versions = [randomBytes(900_000), randomBytes(900_000)];
    await writer.set('doc', versions[0]);
    let writing = true;
    const writes = (async () => {
      for (let i = 1; i <= 6; i++) await writer.set('doc', versions[i % 2]);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const got = await reader.get<Buffer>('doc');
      expect(got === undefined ? 'missing' : versions.findIndex((v) => v.equals(got))).not.toBe(-1);
      expect(got).toBeDefined();
      reads += 1;
    }
    await writes;
    expect(reads).toBeGreaterThan(0);
    expect(reader.stats().corruptItems).toBe(0);
  });

  it('a value over maxValueBytes is not cached: set resolves false with a clear log line', async () => {
    const { cache, logger, tableName } = await db.newCache({ maxValueBytes: 1024 * 1024 });
    expect(await cache.set('huge', randomBytes(1024 * 1024 + 1))).toBe(false);
    expect(logger.warnings[0]).toMatchObject({ message: expect.stringMatching(/too large/), fields: { bytes: 1024 * 1024 + 1, maxValueBytes: 1024 * 1024 } });
    expect(cache.stats()).toMatchObject({ oversized: 1, memoryEntries: 0 });
    expect(await cache.get('huge')).toBeUndefined();
    expect(await scanAll(tableName)).toEqual([]);
  });

  it('the middleware simply does not cache a response over the maximum', async () => {
    const tableName = await db.newTable();
    const handlerSpy = vi.fn(async () => ({ statusCode: 200, body: randomBytes(2 * 1024 * 1024).toString('base64'), isBase64Encoded: true }));
    const handler = middy(handlerSpy).use(
      dynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger(), maxValueBytes: 1024 * 1024, response: { ttlSeconds: 60 } }),
    );
    const invoke = handler as unknown as (event: unknown, context: Context) => Promise<any>;
    const first = await invoke(httpApiEvent({ path: '/big' }), lambdaContext());
    const started = performance.now();
    await invoke(httpApiEvent({ path: '/big' }), lambdaContext());
    expect(first.statusCode).toBe(200);
    expect(handlerSpy).toHaveBeenCalledTimes(2);
    // The first request gave its refresh lease back, so the second did not wait for it to expire (3 s).
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('a missing chunk, or a chunk that does not match the checksum, is a miss and one warning', async () => {
    const { cache, tableName, logger } = await db.newCache({ memory: false });
    await cache.set('a', randomBytes(800_000));
    await cache.set('b', randomBytes(800_000));
    const chunkKey = async (head: string, index: number) => `#dc:c:${(await rawItem(tableName, head)).dc_gen!.S}:${index}`;
    await db.client.send(new DeleteItemCommand({ TableName: tableName, Key: { id: { S: await chunkKey('a', 1) } } }));
    const chunkOfB = await rawItem(tableName, await chunkKey('b', 0));
    const altered = Buffer.from(chunkOfB.cached_value!.B!);
    altered[100]! ^= 0xff;
    await db.client.send(new PutItemCommand({ TableName: tableName, Item: { ...chunkOfB, cached_value: { B: altered } } }));
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.get('b')).toBeUndefined();
    expect(logger.warnings.map((w) => w.fields.errorMessage)).toEqual([expect.stringMatching(/chunk 2 of 3 is missing/), expect.stringMatching(/checksum/)]);
  });

  it('a chunked value works with the lease, stale windows and the memory tier', async () => {
    const { cache } = await db.newCache({ staleIfErrorSeconds: 60 });
    const big = randomBytes(1_000_000);
    const first = await cache.getOrSet('big', async () => big, { ttlSeconds: 60 });
    expect(Buffer.from(first).equals(big)).toBe(true);
    const again = await cache.getOrSet('big', async () => randomBytes(10), { ttlSeconds: 60 });
    expect(Buffer.from(again).equals(big)).toBe(true);
    expect(cache.stats().memoryHits).toBe(1);
  });
});

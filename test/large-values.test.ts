import { DeleteItemCommand, GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { dynamoCache } from '../src/middleware/dynamo-cache-middleware.ts';
import { localClientConfig, scanAll as scanTable } from './support/dynalite.ts';
import { FaultProxy } from './support/fault-proxy.ts';
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

describe('spread values: a large value a fleet shares is spread over partitions', () => {
  const value = () => ({ rows: randomBytes(30 * 1024).toString('base64') }); // about 40 KB, 30 KB compressed

  it('a refresh stores a value over spreadValueBytes as pieces of one read unit each, behind a small head; a plain set keeps it whole', async () => {
    const { cache, tableName } = await db.newCache({ memory: false });
    const shared = value();
    expect(await cache.getOrSet('shared', async () => shared, { ttlSeconds: 60 })).toEqual(shared);
    expect(await cache.get('shared')).toEqual(shared);
    const head = await rawItem(tableName, 'shared');
    expect(head.cached_value).toBeUndefined();
    const pieces = (await scanAll(tableName)).filter((item) => item.dc_enc?.S === 'chunk');
    expect(pieces.length).toBe(Number(head.dc_chunks!.N));
    expect(pieces.length).toBeGreaterThanOrEqual(7);
    for (const piece of pieces) expect(itemBytes(piece)).toBeLessThanOrEqual(4096); // each a single read unit
    expect(itemBytes(head)).toBeLessThan(1024); // what every reader reads, and a refresh's waiters poll

    const plain = value();
    expect(await cache.set('plain', plain)).toBe(true);
    expect((await rawItem(tableName, 'plain')).cached_value?.B).toBeDefined();
    expect(await cache.get('plain')).toEqual(plain);
  });

  it('pieces that DynamoDB throttles are waited for, not fetched around', async () => {
    const proxy = await FaultProxy.start(db.endpoint);
    try {
      const { cache: writer, tableName } = await db.newCache({ memory: false });
      const shared = value();
      await writer.getOrSet('shared', async () => shared, { ttlSeconds: 60 });
      const { cache: reader } = await db.newCache({ tableName, endpoint: proxy.endpoint, memory: false, timeoutMs: 200, largeValueTimeoutMs: 200, lease: { waitMs: 10_000 } });
      await reader.get('warm-up'); // it knows the namespace generation
      proxy.setFaults({ throttleRate: 1, operations: ['BatchGetItem'] }); // the head reads, its pieces are throttled
      setTimeout(() => proxy.setFaults({}), 600);
      const fetcher = vi.fn(async () => 'fetched');
      expect(await reader.getOrSet('shared', fetcher, { ttlSeconds: 60 })).toEqual(shared);
      expect(fetcher).not.toHaveBeenCalled();
      expect(reader.stats().throttles).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it('spreadValueBytes: false keeps a refresh in one item; a spread value is read by a cache that does not spread', async () => {
    const tableName = await db.newTable();
    const { cache: whole } = await db.newCache({ tableName, memory: false, spreadValueBytes: false });
    const { cache: spreading } = await db.newCache({ tableName, memory: false });
    const shared = value();
    await whole.getOrSet('one', async () => shared, { ttlSeconds: 60 });
    expect((await rawItem(tableName, 'one')).cached_value?.B).toBeDefined();
    await spreading.getOrSet('two', async () => shared, { ttlSeconds: 60 });
    expect(await whole.get('two')).toEqual(shared);
    expect(await spreading.get('one')).toEqual(shared);
  });
});

/** An item's size as DynamoDB counts it (names and values; numbers as their text, a slight overestimate). */
function itemBytes(item: Record<string, AttributeValue>): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) bytes += name.length + (value.S?.length ?? value.N?.length ?? value.B?.byteLength ?? 1);
  return bytes;
}

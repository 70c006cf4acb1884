import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { randomBytes } from 'node:crypto';
import { DynamoCache, type DynamoCacheOptions } from '../../src/index.ts';
import { rawSdk } from '../contenders.ts';
import { measureInterleaved } from '../support/measure.ts';
import { count, ms, type BenchContext, type Section } from '../support/report.ts';
import { RequestMeter } from '../support/request-meter.ts';

const quiet = new Logger({ serviceName: 'bench', logLevel: 'SILENT' });

/** A JSON value of about `bytes` bytes, shaped like an API response (repetitive, so compressible). */
export function jsonOfSize(bytes: number): { rows: Array<{ id: number; name: string; email: string; plan: string; score: number }> } {
  const rows: Array<{ id: number; name: string; email: string; plan: string; score: number }> = [];
  let size = 10;
  for (let id = 0; size < bytes; id++) {
    const row = { id, name: `Customer ${id}`, email: `customer${id}@example.com`, plan: id % 3 ? 'basic' : 'pro', score: (id * 7919) % 1000 };
    rows.push(row);
    size += JSON.stringify(row).length + 1;
  }
  return { rows };
}

/** Hit latency and stored size by value size, with and without compression (no memory tier: every read goes to DynamoDB). */
export async function valueSizes(ctx: BenchContext): Promise<Section> {
  const sizes = ctx.quick ? [1024, 100 * 1024, 350 * 1024] : [1024, 10 * 1024, 100 * 1024, 350 * 1024];
  const rows: Array<Array<string | number>> = [];
  const data: Array<Record<string, unknown>> = [];
  for (const size of sizes) {
    const value = jsonOfSize(size);
    const jsonBytes = Buffer.byteLength(JSON.stringify(value));
    const floor = rawSdk.create(ctx.target, new RequestMeter());
    const variants: Array<{ name: string; options: DynamoCacheOptions }> = [
      { name: 'dynamo-cache, compression (default)', options: {} },
      { name: 'dynamo-cache, compression off', options: { compression: false } },
    ];
    const caches = variants.map(({ name, options }, variant) => {
      const client = new DynamoDBClient(ctx.target.clientConfig);
      // Each variant in its own namespace, so one does not overwrite the other's item.
      const namespace = `size${size}-${variant}`;
      return { name, client, cache: new DynamoCache({ tableName: ctx.target.tableName, client, namespace, memory: false, logger: quiet, timeoutMs: 5000, ...options }) };
    });
    await floor.set(`size-${size}`, value, 3600);
    for (const { cache } of caches) await cache.set(`size-${size}`, value, { ttlSeconds: 3600 });
    const stored = await Promise.all(caches.map(async ({ cache }) => (await cache.inspect(`size-${size}`))?.storedBytes ?? Number.NaN));
    ctx.log(`value size ${size}`);
    const results = await measureInterleaved(
      [{ name: rawSdk.name, fn: () => floor.get(`size-${size}`) }, ...caches.map(({ name, cache }) => ({ name, fn: () => cache.get(`size-${size}`) }))],
      { ...ctx.measure, timeMs: Math.min(ctx.measure.timeMs, 600) },
    );
    floor.close();
    caches.forEach(({ client }) => client.destroy());
    const storedBytes = [jsonBytes, ...stored];
    results.forEach((r, i) => {
      rows.push([`${size / 1024} KiB`, r.name, count(storedBytes[i]!), ms(r.p50), ms(r.p99)]);
      data.push({ valueBytes: jsonBytes, contender: r.name, storedBytes: storedBytes[i], p50: r.p50, p99: r.p99 });
    });
  }
  return {
    id: 'value-size',
    title: 'Value size 1 KiB to 350 KiB',
    summary:
      'Hit latency (every read from DynamoDB) and stored size by value size, for API-response-like JSON. Compression (brotli, quality 5) shrinks what is stored and read, which is what DynamoDB bills (4 KB read units, 1 KB write units), at the cost of decompressing on each read.',
    tables: [{ columns: ['value (JSON)', 'contender', 'stored bytes', 'hit p50 ms', 'hit p99 ms'], rows }],
    data,
  };
}

/**
 * 10 to 1,000,000 distinct keys written through one cache: the memory tier stays within its bounds
 * (1,000 entries and 16 MiB by default). DynamoDB is replaced by a stub client that answers at once, since
 * the point is the process's memory, not a million network writes.
 */
export async function distinctKeys(ctx: BenchContext): Promise<Section> {
  const counts = ctx.quick ? [10, 1_000, 100_000] : [10, 1_000, 100_000, 1_000_000];
  const rows: Array<Array<string | number>> = [];
  const data: Array<Record<string, unknown>> = [];
  const value = randomBytes(150).toString('base64'); // 200 bytes of text
  for (const keys of counts) {
    ctx.log(`distinct keys ${keys}`);
    // A client that answers every request at once and keeps nothing (a mocking library would record each call).
    const client = { send: async () => ({}), destroy: () => {} } as unknown as DynamoDBClient;
    const cache = new DynamoCache({ tableName: 'stubbed', client, logger: quiet });
    collectGarbage();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    for (let i = 0; i < keys; i++) await cache.set(`key-${i}`, value, { ttlSeconds: 3600 });
    const elapsed = performance.now() - started;
    collectGarbage();
    const heapAfter = process.memoryUsage().heapUsed;
    const stats = cache.stats();
    rows.push([count(keys), count(stats.memoryEntries), `${(stats.memoryBytes / 1024).toFixed(0)} KiB`, `${((heapAfter - heapBefore) / 1024 / 1024).toFixed(1)} MiB`, ms((elapsed * 1000) / keys)]);
    data.push({ keys, memoryEntries: stats.memoryEntries, memoryBytes: stats.memoryBytes, heapGrowthBytes: heapAfter - heapBefore, microsecondsPerSet: (elapsed * 1000) / keys });
    client.destroy();
  }
  return {
    id: 'distinct-keys',
    title: '10 to 1,000,000 distinct keys: the memory tier stays bounded',
    summary: `Sets of 200-byte values under N distinct keys through one DynamoCache with default options (memory tier: 1,000 entries, 16 MiB), DynamoDB stubbed out. Heap growth is measured after a forced garbage collection${typeof globalThis.gc === 'function' ? '' : ' (not available in this run: start Node with --expose-gc)'}.`,
    tables: [{ columns: ['distinct keys', 'memory-tier entries', 'memory-tier bytes', 'heap growth', 'µs per set (stubbed DynamoDB)'], rows }],
    data,
  };
}

function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { compress, decompress } from '../../src/codec/compression.ts';
import { DynamoCache } from '../../src/index.ts';
import { count, type BenchContext, type Section } from '../support/report.ts';
import { RequestMeter } from '../support/request-meter.ts';
import { jsonOfSize } from './scaling.ts';

const quiet = new Logger({ serviceName: 'bench', logLevel: 'SILENT' });

/**
 * Prices the break-even is computed with (us-east-1, on-demand; assumptions, not measurements): DynamoDB
 * bills $0.625 per million write request units and $0.125 per million read request units, and a Lambda
 * function with one full vCPU (1,769 MB, x86) costs $0.0000166667 per GB-second.
 */
const PRICE = { writeUnit: 0.625e-6, readUnit: 0.125e-6, cpuMicrosecond: (1769 / 1024) * 0.0000166667 * 1e-6 };

/** CPU time (us) of `fn`, per call, over `n` calls after a warm-up. */
function cpuMicroseconds(fn: () => unknown, n: number): number {
  for (let i = 0; i < Math.min(200, n); i++) fn();
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

/**
 * Both sides of compressing a value: what DynamoDB bills for its item (measured, ReturnConsumedCapacity)
 * plain and compressed, against the CPU it costs to compress each write and decompress each DynamoDB read.
 */
export async function compressionTradeOff(ctx: BenchContext): Promise<Section> {
  const sizes = ctx.quick ? [1024, 4 * 1024, 32 * 1024] : [512, 1024, 2 * 1024, 4 * 1024, 8 * 1024, 32 * 1024, 128 * 1024];
  const rows: Array<Array<string | number>> = [];
  const data: Array<Record<string, number | string>> = [];
  for (const size of sizes) {
    ctx.log(`compression trade-off ${size}`);
    const value = jsonOfSize(size);
    const raw = Buffer.from(JSON.stringify(value));
    const units: Record<'plain' | 'compressed', { write: number; read: number; marker: string }> = { plain: { write: 0, read: 0, marker: '' }, compressed: { write: 0, read: 0, marker: '' } };
    for (const variant of ['plain', 'compressed'] as const) {
      const meter = new RequestMeter();
      const client = new DynamoDBClient(ctx.target.clientConfig);
      meter.attach(client);
      const cache = new DynamoCache({
        tableName: ctx.target.tableName,
        client,
        namespace: `ct-${variant}-${size}`,
        memory: false,
        logger: quiet,
        compression: variant === 'plain' ? false : { saving: 'bytes' },
      });
      await cache.get('warm-up'); // reads the namespace generation
      meter.reset();
      await cache.set('v', value, { ttlSeconds: 3600 });
      const write = meter.writeUnits;
      meter.reset();
      await cache.get('v');
      units[variant] = { write, read: meter.readUnits, marker: (await cache.inspect('v'))?.encoding ?? '' };
      client.destroy();
    }
    const compressed = compress(raw, 'br');
    const n = Math.max(50, Math.round(2_000_000 / raw.byteLength));
    const compressUs = cpuMicroseconds(() => compress(raw, 'br'), Math.ceil(n / 4));
    const decompressUs = cpuMicroseconds(() => decompress(compressed, 'br', 64 * 1024 * 1024), n);
    const savedWrite = units.plain.write - units.compressed.write;
    const savedRead = units.plain.read - units.compressed.read;
    // Reads per write up to which compressing still pays when reads save nothing: the write units saved, less
    // the CPU of compressing, over the CPU each read spends decompressing.
    const breakEven =
      savedRead > 0 ? Number.POSITIVE_INFINITY : (savedWrite * PRICE.writeUnit - compressUs * PRICE.cpuMicrosecond) / (decompressUs * PRICE.cpuMicrosecond);
    const defaultCompresses = units.plain.read > units.compressed.read;
    rows.push([
      `${count(raw.byteLength)} B`,
      `${count(compressed.byteLength)} B`,
      `${units.plain.write} / ${units.compressed.write}`,
      `${units.plain.read} / ${units.compressed.read}`,
      compressUs.toFixed(0),
      decompressUs.toFixed(1),
      savedRead > 0 ? 'always (every read saves units)' : breakEven <= 0 ? 'never' : `up to ${count(breakEven)} reads per write`,
      defaultCompresses ? 'compressed' : 'plain',
    ]);
    data.push({ valueBytes: raw.byteLength, compressedBytes: compressed.byteLength, writeUnitsPlain: units.plain.write, writeUnitsCompressed: units.compressed.write, readUnitsPlain: units.plain.read, readUnitsCompressed: units.compressed.read, compressUs, decompressUs, breakEvenReadsPerWrite: breakEven, defaultCompresses: String(defaultCompresses) });
  }
  return {
    id: 'compression',
    title: 'Compression: both sides',
    summary: [
      'API-response-like JSON, stored plain and compressed (brotli, quality 5). Capacity units are what DynamoDB (here dynalite) reports for one write and one eventually consistent read of the item (read units bill per started 4 KB, write units per started 1 KB); CPU is this machine\'s, per call. A value that saves read units when compressed pays on every read; one that saves only write units pays for its decompression only while reads per write stay under the break-even, computed with on-demand prices (us-east-1: $0.625 per million write units, $0.125 per million read units) and a one-vCPU Lambda function ($0.0000166667 per GB-second at 1,769 MB).',
      'A cache is read far more often than written, and every read of a compressed value from DynamoDB pays its decompression, so by default (`compression.saving: \'read-units\'`) a value is stored compressed only when that saves read units; `\'write-units\'` suits write-heavy keys, `\'bytes\'` any saving. The memory tier holds decompressed values: memory-tier hits never decompress.',
    ].join('\n\n'),
    tables: [{ columns: ['value', 'compressed', 'write units plain / compressed', 'read units plain / compressed', 'compress us (per write)', 'decompress us (per read)', 'compressing pays', 'default'], rows }],
    data,
  };
}

import { KEY_VALUE_CONTENDERS, POWERTOOLS_NOTE, dynamoCacheNoMemory, rawSdk, type CacheContender, type ContenderKind } from '../contenders.ts';
import { barChart } from '../support/charts.ts';
import { measureInterleaved, percentile, type Latency } from '../support/measure.ts';
import { count, ms, ratio, type BenchContext, type Section } from '../support/report.ts';
import { RequestMeter } from '../support/request-meter.ts';

/** A 1 KB JSON value, the size of a typical token or user record. */
export const VALUE_1KB = { user: { id: 'u-42', name: 'Ada Lovelace', roles: ['admin', 'writer'] }, token: 'x'.repeat(900) };

function latencyRows(results: Latency[], floorName: string) {
  const floor = results.find((r) => r.name === floorName)!;
  return results.map((r) => [r.name, ms(r.p50), ms(r.p99), count(r.opsPerSecond), ratio(r.p50, floor.p50), ratio(r.p99, floor.p99)]);
}

const LATENCY_COLUMNS = ['contender', 'p50 ms', 'p99 ms', 'ops/s (one at a time)', 'p50 vs floor', 'p99 vs floor'];

/** Hit latency: reading a key that is cached (in memory where the contender has a memory tier). */
export async function hitLatency(ctx: BenchContext): Promise<Section> {
  const envs = KEY_VALUE_CONTENDERS.map((kind) => ({ kind, cache: kind.create(ctx.target, new RequestMeter()) }));
  for (const { cache } of envs) {
    await cache.set('hit-key', VALUE_1KB, 3600);
    await cache.get('hit-key');
  }
  ctx.log('hit latency');
  const results = await measureInterleaved(
    envs.map(({ kind, cache }) => ({ name: kind.name, fn: () => cache.get('hit-key') })),
    ctx.measure,
  );
  envs.forEach(({ cache }) => cache.close());
  const byName = new Map(results.map((r) => [r.name, r]));
  const floor = byName.get(rawSdk.name)!;
  const withMemory = byName.get('dynamo-cache')!;
  const noMemory = byName.get(dynamoCacheNoMemory.name)!;
  return {
    id: 'hit-latency',
    title: 'Hit latency and throughput',
    summary:
      'Reading a 1 KB JSON value that is cached, one read at a time. Contenders with a memory tier answer from it after the first read; the others make one DynamoDB request per read.',
    tables: [{ columns: LATENCY_COLUMNS, rows: [...latencyRows(results, rawSdk.name), ['Powertools idempotency', 'cannot run', '', '', '', POWERTOOLS_NOTE]] }],
    charts: [
      {
        file: 'hit-latency.svg',
        alt: 'Hit latency by contender, p50 and p99',
        svg: barChart('Hit latency by contender (1 KB value)', 'milliseconds per read', results.map((r) => ({ label: r.name, values: [r.p50, r.p99] })), ['p50', 'p99'], { log: true }),
      },
    ],
    data: results,
    headlines: [
      `a memory-tier hit takes ${ms(withMemory.p50)} ms at p50, ${ratio(floor.p50, withMemory.p50)} faster than a raw GetItem (${ms(floor.p50)} ms)`,
      `without its memory tier, a dynamo-cache hit costs ${ratio(noMemory.p50, floor.p50)} a raw GetItem at p50 (decoding, expiry and integrity checks)`,
    ],
  };
}

/** Miss then set: a key nobody has, read and then stored, as on the first call for a key. */
export async function missThenSet(ctx: BenchContext): Promise<Section> {
  const envs = KEY_VALUE_CONTENDERS.map((kind) => ({ kind, cache: kind.create(ctx.target, new RequestMeter()) }));
  let n = 0;
  ctx.log('miss then set');
  const results = await measureInterleaved(
    envs.map(({ kind, cache }) => ({
      name: kind.name,
      fn: async () => {
        const key = `miss-${++n}`;
        if ((await cache.get(key)) === undefined) await cache.set(key, VALUE_1KB, 3600);
      },
    })),
    ctx.measure,
  );
  envs.forEach(({ cache }) => cache.close());
  return {
    id: 'miss-then-set',
    title: 'Miss, then set',
    summary: 'A get that misses followed by a set of a 1 KB JSON value, each time on a new key. dynamo-cache compresses values of 512 bytes or more (brotli) before writing.',
    tables: [{ columns: LATENCY_COLUMNS, rows: [...latencyRows(results, rawSdk.name), ['Powertools idempotency', 'cannot run', '', '', '', POWERTOOLS_NOTE]] }],
    data: results,
  };
}

/** Throughput and tail latency when one environment reads concurrently (Lambda Managed Instances, Promise.all). */
export async function concurrency(ctx: BenchContext): Promise<Section> {
  const levels = ctx.quick ? [1, 8, 64] : [1, 4, 16, 64];
  const kinds: ContenderKind[] = [rawSdk, dynamoCacheNoMemory];
  const durationMs = ctx.quick ? 600 : 2000;
  const rows: Array<Array<string | number>> = [];
  const data: Array<{ contender: string; concurrency: number; opsPerSecond: number; p50: number; p99: number }> = [];
  for (const level of levels) {
    // Interleaved: each level runs every contender, alternately, twice.
    for (let round = 0; round < 2; round++) {
      for (const kind of round === 0 ? kinds : [...kinds].reverse()) {
        ctx.log(`concurrency ${level}: ${kind.name}`);
        const cache = kind.create(ctx.target, new RequestMeter());
        await cache.set('conc-key', VALUE_1KB, 3600);
        const result = await saturate(cache, level, durationMs);
        cache.close();
        const existing = data.find((d) => d.contender === kind.name && d.concurrency === level);
        if (existing === undefined) data.push({ contender: kind.name, concurrency: level, ...result });
        else Object.assign(existing, { opsPerSecond: (existing.opsPerSecond + result.opsPerSecond) / 2, p50: (existing.p50 + result.p50) / 2, p99: (existing.p99 + result.p99) / 2 });
      }
    }
  }
  for (const d of data) rows.push([d.contender, d.concurrency, count(d.opsPerSecond), ms(d.p50), ms(d.p99)]);
  return {
    id: 'concurrency',
    title: 'Concurrency 1 to 64 (DynamoDB reads)',
    summary: `Reads of one cached key by N concurrent callers in one process for ${durationMs} ms (averaged over two interleaved runs), without a memory tier so that every read reaches DynamoDB. Against a local dynalite the server, not the client, sets the ceiling.`,
    tables: [{ columns: ['contender', 'concurrency', 'ops/s', 'p50 ms', 'p99 ms'], rows }],
    data,
  };
}

/** Runs `workers` concurrent readers of one key for `durationMs`: throughput and latency. */
export async function saturate(cache: CacheContender, workers: number, durationMs: number): Promise<{ opsPerSecond: number; p50: number; p99: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        await cache.get('conc-key');
        latencies.push(performance.now() - t);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { opsPerSecond: latencies.length / ((performance.now() - started) / 1000), p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

import { DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { randomBytes, randomUUID } from 'node:crypto';
import { DynamoCache } from '../../src/index.ts';
import { resolveOptions } from '../../src/options.ts';
import { LEASE_CONDITION } from '../../src/storage/dynamo-store.ts';
import { rawSdk, type CacheContender } from '../contenders.ts';
import { BUDGETS, LOAD_MODES, measureLayer } from '../size.ts';
import { measureAlternating } from '../support/measure.ts';
import { count, ms, type BenchContext, type Section } from '../support/report.ts';
import { RequestMeter, UNMETERED as unmetered } from '../support/request-meter.ts';
import { StubTransport } from '../support/stub-transport.ts';
import { VALUE_1KB, saturate } from './latency.ts';

const quietLogger = new Logger({ serviceName: 'bench', logLevel: 'SILENT' });

/**
 * dynamo-cache with its default options (memory tier off), as the targets mean it: a client of its own made
 * from the target's settings, not one handed in (which the floor's metered contenders are).
 */
function defaultCache(ctx: BenchContext, namespace: string): CacheContender {
  const cache = new DynamoCache({ tableName: ctx.target.tableName, clientConfig: ctx.target.clientConfig, namespace, memory: false, logger: quietLogger });
  return { get: (key) => cache.get(key), set: (key, value, ttlSeconds) => cache.set(key, value, { ttlSeconds }), getOrSet: (key, load, ttlSeconds) => cache.getOrSet(key, load, { ttlSeconds }), close: () => {} };
}

/** One performance target: what it measures, the figure this run measured, and the bound it must keep. */
interface Target {
  readonly figure: string;
  readonly measured: number;
  readonly unit: 'x' | 'us' | 'WRU' | 'KiB' | 'ms' | '%';
  /** `<=` or `>=` the bound. */
  readonly bound: number;
  readonly atMost: boolean;
  readonly detail: string;
}

const met = (t: Target) => (t.atMost ? t.measured <= t.bound : t.measured >= t.bound);
const show = (value: number, unit: Target['unit']) => (unit === 'x' ? `${value.toFixed(2)}x` : unit === 'us' ? `${value.toFixed(1)} us` : unit === 'KiB' ? `${count(value)} KiB` : unit === 'ms' ? `${value.toFixed(2)} ms` : unit === '%' ? `${value.toFixed(1)} %` : `${value} WRU`);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** DynamoDB-tier hit (memory tier off, 1 KB JSON, default options): p50 against a raw GetItem, interleaved. */
async function hitRatio(ctx: BenchContext): Promise<Target> {
  const raw = rawSdk.create(ctx.target, unmetered);
  const cache = defaultCache(ctx, 'target-hit');
  await raw.set('target-hit', VALUE_1KB, 3600);
  await cache.set('target-hit', VALUE_1KB, 3600);
  const turns = ctx.quick ? 1500 : 6000;
  const [floor, ours] = await measureAlternating(
    [
      { name: 'raw', fn: () => raw.get('target-hit') },
      { name: 'dynamo-cache', fn: () => cache.get('target-hit') },
    ],
    turns,
  );
  raw.close();
  cache.close();
  return {
    figure: 'DynamoDB-tier hit p50 vs raw GetItem (memory tier off, 1 KB JSON, default options)',
    measured: ours!.p50 / floor!.p50,
    unit: 'x',
    bound: 1.1,
    atMost: true,
    detail: `${ms(ours!.p50)} ms against ${ms(floor!.p50)} ms; ${count(turns)} calls of each, alternating; the raw side is a default client, the cache's own caches its middleware (the miss target shows both)`,
  };
}

/**
 * Client CPU per DynamoDB-tier hit above the raw SDK, with a stubbed transport (no network, no server): what
 * is left is the SDK's own work and the library's. The raw side is a GetItem plus the JSON.parse a
 * hand-written cache needs; medians of interleaved rounds of process CPU time.
 */
async function cpuPerHit(ctx: BenchContext): Promise<Target> {
  const stub = new StubTransport();
  const config = { region: 'us-east-1', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' }, requestHandler: stub.requestHandler as never };
  const raw = new DynamoDBClient(config);
  const cache = new DynamoCache({ tableName: 'bench-stub', memory: false, client: new DynamoDBClient(config), logger: quietLogger });
  await raw.send(new PutItemCommand({ TableName: 'bench-stub', Item: { id: { S: 'raw' }, v: { S: JSON.stringify(VALUE_1KB) }, expires_at: { N: String(Math.ceil(Date.now() / 1000) + 3600) } } }));
  await cache.set('hit', VALUE_1KB);
  const rawGet = async () => JSON.parse((await raw.send(new GetItemCommand({ TableName: 'bench-stub', Key: { id: { S: 'raw' } } }))).Item!.v!.S!);
  const cacheGet = () => cache.get('hit');
  const perOp = async (fn: () => Promise<unknown>, n: number) => {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) await fn();
    const used = process.cpuUsage(start);
    return (used.user + used.system) / n;
  };
  const n = ctx.quick ? 2000 : 5000;
  for (const fn of [rawGet, cacheGet]) await perOp(fn, n); // warm-up
  const differences: number[] = [];
  const rawUs: number[] = [];
  for (let round = 0; round < (ctx.quick ? 3 : 9); round++) {
    const [first, second] = round % 2 === 0 ? [rawGet, cacheGet] : [cacheGet, rawGet];
    const a = await perOp(first, n);
    const b = await perOp(second, n);
    const [rawCpu, cacheCpu] = round % 2 === 0 ? [a, b] : [b, a];
    differences.push(cacheCpu - rawCpu);
    rawUs.push(rawCpu);
  }
  raw.destroy();
  return {
    figure: 'client CPU per DynamoDB-tier hit over the raw SDK (stubbed transport)',
    measured: median(differences),
    unit: 'us',
    bound: 25,
    atMost: true,
    detail: `raw GetItem + JSON.parse ${median(rawUs).toFixed(0)} us of CPU; median of ${differences.length} interleaved rounds of ${n}`,
  };
}

/** Throughput of 16 concurrent readers of one key, memory tier off, against raw GetItem, interleaved. */
async function concurrency16(ctx: BenchContext): Promise<Target> {
  const durationMs = ctx.quick ? 600 : 1500;
  const ratios: number[] = [];
  const details: string[] = [];
  const runs = ctx.quick ? 3 : 5;
  for (let round = 0; round < runs; round++) {
    const raw = rawSdk.create(ctx.target, unmetered);
    const cache = defaultCache(ctx, 'target-conc');
    await raw.set('target-conc', VALUE_1KB, 3600);
    await cache.set('target-conc', VALUE_1KB, 3600);
    if (round === 0) for (const warm of [raw, cache]) await saturate(warm, 16, 500); // the server's JIT and the clients' connections, before any figure
    const first = round % 2 === 0 ? raw : cache;
    const a = await saturate(first, 16, durationMs);
    const b = await saturate(first === raw ? cache : raw, 16, durationMs);
    const [floor, ours] = first === raw ? [a, b] : [b, a];
    ratios.push(ours.opsPerSecond / floor.opsPerSecond);
    details.push(`${count(ours.opsPerSecond)} vs ${count(floor.opsPerSecond)} ops/s`);
    raw.close();
    cache.close();
  }
  return { figure: 'throughput at concurrency 16 vs raw GetItem (memory tier off)', measured: median(ratios), unit: 'x', bound: 0.9, atMost: false, detail: `median of ${runs} interleaved runs of ${durationMs} ms after a warm-up (${details.join('; ')})` };
}

/**
 * `getOrSet` on a key nobody has, against the same three requests sent by hand: the read, the conditional
 * write of a small lease item, the conditional write of the value.
 */
async function missPath(ctx: BenchContext): Promise<Target> {
  const client = new DynamoDBClient(ctx.target.clientConfig);
  // Not the floor, shown beside it: the client the cache makes for itself from these settings (see `clientConfig` in docs/api-and-options.md).
  const likeTheCache = resolveOptions({ tableName: ctx.target.tableName, clientConfig: ctx.target.clientConfig, logger: quietLogger }).client;
  const cache = new DynamoCache({ tableName: ctx.target.tableName, clientConfig: ctx.target.clientConfig, namespace: 'miss', logger: quietLogger });
  const table = ctx.target.tableName;
  const text = JSON.stringify(VALUE_1KB);
  let n = 0;
  const byHand = (sdk: DynamoDBClient) => async () => {
    const key = `hand:${++n}:${randomUUID()}`;
    const now = Date.now();
    await sdk.send(new GetItemCommand({ TableName: table, Key: { id: { S: key } } }));
    await sdk.send(
      new PutItemCommand({
        TableName: table,
        Item: { id: { S: `hand:#dc:l:${key}` }, expires_at: { N: String(Math.ceil(now / 1000) + 3) }, dc_enc: { S: 'lease' }, dc_lease: { N: String(now + 3000) }, dc_owner: { S: 'me' }, dc_for: { N: '0' } },
        // The library's own condition: a by-hand lease that drifted from it would measure another request.
        ConditionExpression: LEASE_CONDITION,
        ExpressionAttributeNames: { '#for': 'dc_for', '#lease': 'dc_lease' },
        ExpressionAttributeValues: { ':for': { N: '0' }, ':now': { N: String(now) } },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    const value = JSON.parse(JSON.stringify(VALUE_1KB));
    await sdk.send(
      new PutItemCommand({
        TableName: table,
        Item: { id: { S: key }, cached_value: { S: text }, expires_at: { N: String(Math.ceil(now / 1000) + 3600) }, dc_enc: { S: 'json' }, dc_fresh: { N: String(now + 3_600_000) } },
        ConditionExpression: 'attribute_not_exists(#fresh) OR #fresh <= :seen',
        ExpressionAttributeNames: { '#fresh': 'dc_fresh' },
        ExpressionAttributeValues: { ':seen': { N: '0' } },
      }),
    );
    return value;
  };
  const viaCache = () => cache.getOrSet(`k:${++n}:${randomUUID()}`, async () => VALUE_1KB, { ttlSeconds: 3600 });
  await viaCache(); // reads the namespace generation once, as any warm environment has
  const tasks = [
    { name: 'by hand', fn: byHand(client) },
    { name: 'getOrSet', fn: viaCache },
    { name: "by hand, the cache's client settings", fn: byHand(likeTheCache) },
  ];
  const turns = ctx.quick ? 600 : 2500;
  // A miss calls most of the library's functions once, and V8 optimizes a function fully (TurboFan) only after
  // OPTIMIZED_AFTER_CALLS calls, while the SDK's functions, called by both sides for every request, are optimized
  // long before. The first turns measure that warm-up; the target is the steady state that follows it.
  const [coldHand, coldOurs] = await measureAlternating(tasks, turns);
  const warmed = Math.ceil(turns / 10) + turns;
  if (warmed < OPTIMIZED_AFTER_CALLS) await measureAlternating(tasks, 0, OPTIMIZED_AFTER_CALLS - warmed);
  // Rounds of interleaved turns, each giving a ratio of medians: the two sides share whatever the machine and
  // the server do during a round, and the median of the rounds is steadier than one long run's.
  const rounds: Array<{ hand: number; ours: number; alike: number }> = [];
  for (let round = 0; round < (ctx.quick ? 3 : 5); round++) {
    const [hand, ours, alike] = await measureAlternating(tasks, turns / 2, 50);
    rounds.push({ hand: hand!.p50, ours: ours!.p50, alike: alike!.p50 });
  }
  client.destroy();
  likeTheCache.destroy();
  const byRatio = [...rounds].sort((a, b) => a.ours / a.hand - b.ours / b.hand);
  const middle = byRatio[Math.floor(byRatio.length / 2)]!;
  return {
    figure: '`getOrSet` miss vs the same three requests sent by hand (p50)',
    measured: middle.ours / middle.hand,
    unit: 'x',
    bound: 1.05,
    atMost: true,
    detail:
      `median of ${rounds.length} rounds of ${count(turns / 2)} of each, alternating, after ${count(Math.max(warmed, OPTIMIZED_AFTER_CALLS))} of each (GetItem, lease PutItem, value PutItem): ` +
      `${rounds.map((r) => `${(r.ours / r.hand).toFixed(3)}x`).join(', ')}; the median round ${ms(middle.ours)} ms against ${ms(middle.hand)} ms; ` +
      `the first ${count(turns)} (JIT warm-up): ${ms(coldOurs!.p50)} ms against ${ms(coldHand!.p50)} ms (${(coldOurs!.p50 / coldHand!.p50).toFixed(2)}x). ` +
      `Not the target, for what the library itself adds: against the same requests by hand through a client set up as the cache's own (maxAttempts 1, its middleware cached, no options per request), ` +
      `${median(rounds.map((r) => r.ours / r.alike)).toFixed(3)}x (median round; ${ms(middle.alike)} ms in the median round of the target)`,
  };
}

/** V8's `--invocation-count-for-turbofan` (Node 22 and 24): calls of a function before its optimized compilation. */
const OPTIMIZED_AFTER_CALLS = 3000;

/**
 * The write units of the lease taken to refresh a stale 40 KB value, as DynamoDB reports them
 * (`ReturnConsumedCapacity`), with the write of the value itself and what a lease kept on the value's own
 * item (dynamo-cache 0.1) costs, for comparison.
 */
async function leaseWriteUnits(ctx: BenchContext): Promise<{ target: Target; data: Record<string, number> }> {
  const meter = new RequestMeter();
  const client = new DynamoDBClient({ ...ctx.target.clientConfig, maxAttempts: 1 });
  meter.attach(client);
  // The value's item keeps the whole 40 KB (not spread over pieces by the refresh), as the 0.1 comparison needs.
  const cache = new DynamoCache({ tableName: ctx.target.tableName, client, namespace: 'lease40k', memory: false, compression: false, spreadValueBytes: false, logger: quietLogger });
  const key = `big-${randomUUID()}`;
  await cache.set(key, randomBytes(40 * 1024), { ttlSeconds: 0.05 });
  await new Promise((resolve) => setTimeout(resolve, 120));
  meter.reset();
  await cache.getOrSet(key, async () => randomBytes(40 * 1024), { ttlSeconds: 60 });
  const lease = meter.writes.find((w) => w.key?.includes('#dc:l:'));
  const value = meter.writes.find((w) => w.key === `lease40k:${key}`);
  // The 0.1 lease: an UpdateItem on the value's own item, billed by the larger of the item before and after.
  meter.reset();
  await client.send(
    new UpdateItemCommand({
      TableName: ctx.target.tableName,
      Key: { id: { S: `lease40k:${key}` } },
      UpdateExpression: 'SET dc_lease = :until, dc_owner = :owner',
      ExpressionAttributeValues: { ':until': { N: String(Date.now() + 3000) }, ':owner': { S: 'comparison' } },
    }),
  );
  const onValueItem = meter.writes[0]?.units ?? Number.NaN;
  client.destroy();
  const data = { leaseWriteUnits: lease?.units ?? Number.NaN, valueWriteUnits: value?.units ?? Number.NaN, leaseOnValueItemWriteUnits: onValueItem };
  return {
    target: {
      figure: 'lease write on a stale refresh of a 40 KB value',
      measured: data.leaseWriteUnits,
      unit: 'WRU',
      bound: 1,
      atMost: true,
      detail: `the value's own write: ${data.valueWriteUnits} WRU; a lease on the value's item (0.1): ${data.leaseOnValueItemWriteUnits} WRU`,
    },
    data,
  };
}

/** Every performance target of the project (issue 16), measured in this run. */
export async function performanceTargets(ctx: BenchContext): Promise<Section> {
  ctx.log('targets: DynamoDB-tier hit');
  const hit = await hitRatio(ctx);
  ctx.log('targets: CPU per hit (stubbed transport)');
  const cpu = await cpuPerHit(ctx);
  ctx.log('targets: concurrency 16');
  const conc = await concurrency16(ctx);
  ctx.log('targets: miss path');
  const miss = await missPath(ctx);
  ctx.log('targets: lease write units');
  const lease = await leaseWriteUnits(ctx);
  ctx.log('targets: layer');
  const layer = await measureLayer(ctx.quick ? 7 : 11);
  const targets: Target[] = [
    hit,
    cpu,
    conc,
    miss,
    lease.target,
    { figure: 'layer zip', measured: layer.layerZipBytes / 1024, unit: 'KiB', bound: BUDGETS.layerZipBytes / 1024, atMost: true, detail: `minified: the entry (${count(layer.entryBytes / 1024)} KiB), the parts it loads on first use (${count(layer.libraryBytes / 1024)} KiB in all) and @middy/core` },
    ...LOAD_MODES.map(
      (mode): Target => ({
        figure: `the layer entry's own ${mode}, share of @aws-sdk/client-dynamodb's ${mode}`,
        measured: layer.loads[mode].share.median * 100,
        unit: '%',
        bound: BUDGETS.ownLoadShare * 100,
        atMost: true,
        detail: `interleaved pairs of fresh processes: ${layer.loads[mode].own.median.toFixed(2)} ms against ${layer.loads[mode].sdk.median.toFixed(0)} ms, quartiles of the share ${(layer.loads[mode].share.p25 * 100).toFixed(2)}-${(layer.loads[mode].share.p75 * 100).toFixed(2)} %; then ${layer.loads[mode].cacheOnFirstUse.median.toFixed(1)} ms for the cache's implementation on first use`,
      }),
    ),
  ];
  const failing = targets.filter((t) => !met(t));
  return {
    id: 'targets',
    title: 'Performance targets',
    summary:
      'The budgets the hot paths carry, each measured by this run (interleaved against its floor where it has one). The DynamoDB figures are against the local dynalite; with a real table (DYNAMO_CACHE_TABLE) the same table is produced on real DynamoDB.',
    tables: [{ columns: ['figure', 'measured', 'target', 'met', 'how'], rows: targets.map((t) => [t.figure, show(t.measured, t.unit), `${t.atMost ? '<=' : '>='} ${show(t.bound, t.unit)}`, met(t) ? 'yes' : '**no**', t.detail]) }],
    data: { targets: targets.map((t) => ({ ...t, met: met(t) })), lease: lease.data, layer },
    headlines: [
      failing.length === 0
        ? `all ${targets.length} performance targets hold: a DynamoDB-tier hit is ${show(hit.measured, 'x')} a raw GetItem (+${show(cpu.measured, 'us')} CPU), a miss ${show(miss.measured, 'x')} the same requests by hand, the layer ${count(layer.layerZipBytes / 1024)} KiB and its entry ${(layer.loads.import.share.median * 100).toFixed(1)} % of the SDK client's import (${(layer.loads.require.share.median * 100).toFixed(1)} % of its require)`
        : `${targets.length - failing.length} of ${targets.length} performance targets hold; missed: ${failing.map((t) => `${t.figure} (${show(t.measured, t.unit)})`).join('; ')}`,
    ],
  };
}

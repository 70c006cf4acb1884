import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoCache, type DynamoCacheOptions } from '../../src/index.ts';
import { dynamoCacheKind, rawSdk } from '../contenders.ts';
import { measureAlternating, measureInterleaved } from '../support/measure.ts';
import { count, ms, type BenchContext, type Section } from '../support/report.ts';
import { RequestMeter, UNMETERED } from '../support/request-meter.ts';
import { fleetRequests } from './capacity.ts';
import { VALUE_1KB } from './latency.ts';

const quietLogger = new Logger({ serviceName: 'bench', logLevel: 'SILENT' });

/** `n` tags, as many values share them (a tenant, a collection, an owner...). */
const tags = (n: number) => Array.from({ length: n }, (_, i) => `group-${i}`);

/** One row of the section's table: a figure, what this run measured, and its bound when it has one. */
interface Row {
  readonly figure: string;
  readonly measured: string;
  readonly target?: { readonly bound: string; readonly met: boolean };
  readonly how: string;
}

/** A cache of the fleet's kind, in its own namespace, holding `VALUE_1KB` under `k` with `n` tags, read once (its tags' states known). */
async function taggedValue(ctx: BenchContext, n: number, options: DynamoCacheOptions): Promise<DynamoCache> {
  const cache = new DynamoCache({ tableName: ctx.target.tableName, clientConfig: ctx.target.clientConfig, namespace: `tags-${n}-${options.memory === false ? 'dynamo' : 'memory'}`, logger: quietLogger, ...options });
  await cache.set('k', VALUE_1KB, { ttlSeconds: 3600, tags: tags(n) });
  await cache.get('k');
  return cache;
}

/** DynamoDB-tier hits (memory tier off, 1 KB JSON) with 0, 1, 3 and 10 tags against a raw GetItem, call by call in turn. */
async function dynamoHits(ctx: BenchContext): Promise<{ rows: Row[]; ratios: Record<number, number> }> {
  const counts = [0, 1, 3, 10];
  const raw = rawSdk.create(ctx.target, UNMETERED);
  await raw.set('tags-hit', VALUE_1KB, 3600);
  const caches = await Promise.all(counts.map((n) => taggedValue(ctx, n, { memory: false })));
  const turns = ctx.quick ? 1500 : 5000;
  const [floor, ...ours] = await measureAlternating([{ name: 'raw', fn: () => raw.get('tags-hit') }, ...caches.map((cache, i) => ({ name: `${counts[i]} tags`, fn: () => cache.get('k') }))], turns);
  raw.close();
  const ratios: Record<number, number> = {};
  const rows = counts.map((n, i): Row => {
    const ratio = ours[i]!.p50 / floor!.p50;
    ratios[n] = ratio;
    return {
      figure: `DynamoDB-tier hit with ${n} tag${n === 1 ? '' : 's'} vs raw GetItem (p50)`,
      measured: `${ratio.toFixed(2)}x`,
      ...(n === 3 ? { target: { bound: '<= 1.15x', met: ratio <= 1.15 } } : {}),
      how: `${ms(ours[i]!.p50)} ms against ${ms(floor!.p50)} ms; ${count(turns)} calls of each, in turn; the tags' states known (read once per memory.ttlSeconds)`,
    };
  });
  return { rows, ratios };
}

/** Memory-tier hits with 3 and 10 tags against one without tags, interleaved. */
async function memoryHits(ctx: BenchContext): Promise<{ rows: Row[]; ratio3: number }> {
  const counts = [0, 3, 10];
  const caches = await Promise.all(counts.map((n) => taggedValue(ctx, n, {})));
  const [none, ...tagged] = await measureInterleaved(
    caches.map((cache, i) => ({ name: `${counts[i]} tags`, fn: () => cache.get('k') })),
    ctx.measure,
  );
  const rows = tagged.map((latency, i): Row => {
    const ratio = latency.p50 / none!.p50;
    return {
      figure: `memory-tier hit with ${counts[i + 1]} tags vs without (p50)`,
      measured: `${ratio.toFixed(2)}x`,
      ...(counts[i + 1] === 3 ? { target: { bound: '<= 1.5x', met: ratio <= 1.5 } } : {}),
      how: `${ms(latency.p50)} ms against ${ms(none!.p50)} ms`,
    };
  });
  return { rows, ratio3: tagged[0]!.p50 / none!.p50 };
}

/** DynamoDB requests per 1,000 get-or-sets at a 90 % hit ratio over 10 environments, with 3 tags per value, against none. */
async function fleetCost(ctx: BenchContext): Promise<{ rows: Row[]; ratio: number }> {
  const invocations = ctx.quick ? 400 : 1000;
  const none = await fleetRequests(ctx, dynamoCacheKind('no tags', 'tagfleet0', {}), 90, invocations);
  const shared = await fleetRequests(ctx, dynamoCacheKind('3 shared tags', 'tagfleet3', {}, () => ['tenant:acme', 'catalog', 'region:eu']), 90, invocations);
  const own = await fleetRequests(ctx, dynamoCacheKind('3 tags, one per value', 'tagfleet3k', {}, (key) => ['tenant:acme', 'catalog', `item:${key}`]), 90, invocations);
  const ratio = shared.requests / none.requests;
  return {
    ratio,
    rows: [
      {
        figure: 'DynamoDB requests per 1,000 invocations at a 90 % hit ratio, 3 tags shared by the values, vs no tags',
        measured: `${ratio.toFixed(2)}x`,
        target: { bound: '<= 1.2x', met: ratio <= 1.2 },
        how: `${count(shared.requests)} against ${count(none.requests)} (write units ${shared.writeUnits.toFixed(0)} against ${none.writeUnits.toFixed(0)}): each environment reads the three states once per memory.ttlSeconds, each tag's item is written once`,
      },
      {
        figure: 'the same with one of the 3 tags per value (item:<key>)',
        measured: `${(own.requests / none.requests).toFixed(2)}x`,
        how: `${count(own.requests)} requests: a tag new to an environment costs it a read, a new tag one write to create its state`,
      },
    ],
  };
}

/** `invalidateTags` of 1 and 10 tags: latency against one raw PutItem of a small item, and the requests each sends. */
async function invalidations(ctx: BenchContext): Promise<{ rows: Row[]; tenMs: number }> {
  const client = new DynamoDBClient(ctx.target.clientConfig);
  const meter = new RequestMeter();
  const meteredClient = new DynamoDBClient(ctx.target.clientConfig);
  meter.attach(meteredClient);
  const cache = new DynamoCache({ tableName: ctx.target.tableName, clientConfig: ctx.target.clientConfig, namespace: 'tags-invalidate', memory: false, logger: quietLogger });
  const metered = new DynamoCache({ tableName: ctx.target.tableName, client: meteredClient, namespace: 'tags-invalidate-metered', memory: false, logger: quietLogger });
  const putItem = () => client.send(new PutItemCommand({ TableName: ctx.target.tableName, Item: { id: { S: 'tags-floor' }, v: { S: 'x'.repeat(60) }, expires_at: { N: String(Math.ceil(Date.now() / 1000) + 3600) } } }));
  const turns = ctx.quick ? 300 : 1000;
  const [floor, one, ten] = await measureAlternating(
    [
      { name: 'PutItem', fn: putItem },
      { name: '1 tag', fn: () => cache.invalidateTags(tags(1)) },
      { name: '10 tags', fn: () => cache.invalidateTags(tags(10)) },
    ],
    turns,
  );
  const perCall = async (n: number) => {
    await metered.invalidateTags(tags(n)); // the first invalidation in this environment
    meter.reset();
    await metered.invalidateTags(tags(n));
    return { requests: meter.requests, writeUnits: meter.writeUnits };
  };
  const [costOne, costTen] = [await perCall(1), await perCall(10)];
  client.destroy();
  meteredClient.destroy();
  const row = (n: number, latency: typeof one, cost: { requests: number; writeUnits: number }): Row => ({
    figure: `invalidateTags of ${n} tag${n === 1 ? '' : 's'} (p50)`,
    measured: `${ms(latency!.p50)} ms`,
    how: `${(latency!.p50 / floor!.p50).toFixed(2)}x a raw PutItem (${ms(floor!.p50)} ms); ${cost.requests} request${cost.requests === 1 ? '' : 's'} (conditional PutItem, in parallel), ${cost.writeUnits} write units; ${count(turns)} calls of each, in turn`,
  });
  return { rows: [row(1, one, costOne), row(10, ten, costTen)], tenMs: ten!.p50 };
}

/** Tags (issue 21): what carrying tags costs a hit and a fleet, and what an invalidation costs. */
export async function tagCosts(ctx: BenchContext): Promise<Section> {
  ctx.log('tags: DynamoDB-tier hits');
  const dynamo = await dynamoHits(ctx);
  ctx.log('tags: memory-tier hits');
  const memory = await memoryHits(ctx);
  ctx.log('tags: requests of a fleet');
  const fleet = await fleetCost(ctx);
  ctx.log('tags: invalidateTags');
  const invalidate = await invalidations(ctx);
  const rows = [...dynamo.rows, ...memory.rows, ...fleet.rows, ...invalidate.rows];
  const targets = rows.filter((row) => row.target !== undefined);
  const held = targets.filter((row) => row.target!.met).length;
  return {
    id: 'tags',
    title: 'Tags and invalidation',
    summary:
      "What tags cost: a hit on a tagged value checks its tags' states, known in memory for memory.ttlSeconds (no request of its own once known); a value's tags add bytes to its item; invalidateTags writes one small item per tag. Ratios are against a raw GetItem, or the same cache without tags, measured in turn in one run.",
    tables: [{ columns: ['figure', 'measured', 'target', 'met', 'how'], rows: rows.map((row) => [row.figure, row.measured, row.target?.bound ?? '', row.target === undefined ? '' : row.target.met ? 'yes' : '**no**', row.how]) }],
    data: { rows, dynamoHitRatios: dynamo.ratios, memoryHitRatio3: memory.ratio3, fleetRequestRatio3: fleet.ratio, invalidate10Ms: invalidate.tenMs },
    headlines: [
      `tags: ${held} of ${targets.length} targets hold; a DynamoDB-tier hit with 3 tags is ${dynamo.ratios[3]!.toFixed(2)}x a raw GetItem, a memory-tier hit ${memory.ratio3.toFixed(2)}x one without tags, a fleet at 90% hits sends ${fleet.ratio.toFixed(2)}x the requests; invalidateTags of 10 tags takes ${ms(invalidate.tenMs)} ms`,
    ],
  };
}

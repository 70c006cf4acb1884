import { KEY_VALUE_CONTENDERS, POWERTOOLS_NOTE, type ContenderKind } from '../contenders.ts';
import { groupedColumns } from '../support/charts.ts';
import { count, type BenchContext, type Section } from '../support/report.ts';
import { RequestMeter } from '../support/request-meter.ts';
import { VALUE_1KB } from './latency.ts';

const HIT_RATIOS = [0, 50, 90, 99];
const ENVIRONMENTS = 10;
const HOT_KEYS = 20;

/** What one contender's fleet sent DynamoDB, per 1,000 invocations, at one hit ratio. */
export interface FleetRequests {
  readonly contender: string;
  readonly hitRatio: number;
  readonly requests: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly measuredHitRatio: number;
}

/**
 * `invocations` get-or-sets by a fleet of 10 environments of `kind` (one meter for all), taking turns: hits
 * on 20 hot keys written beforehand (not counted), misses on new keys; scaled to 1,000 invocations.
 */
export async function fleetRequests(ctx: BenchContext, kind: ContenderKind, hitRatio: number, invocations: number): Promise<FleetRequests> {
  const seeder = kind.create(ctx.target, new RequestMeter());
  for (let k = 0; k < HOT_KEYS; k++) await seeder.set(`hot-${hitRatio}-${k}`, VALUE_1KB, 3600);
  seeder.close();
  const meter = new RequestMeter();
  const fleet = Array.from({ length: ENVIRONMENTS }, () => kind.create(ctx.target, meter));
  let loads = 0;
  for (let i = 0; i < invocations; i++) {
    const hit = i % 100 < hitRatio;
    const key = hit ? `hot-${hitRatio}-${i % HOT_KEYS}` : `cold-${hitRatio}-${i}`;
    await fleet[i % ENVIRONMENTS]!.getOrSet(
      key,
      async () => {
        loads += 1;
        return VALUE_1KB;
      },
      3600,
    );
  }
  fleet.forEach((env) => env.close());
  const per1000 = 1000 / invocations;
  return {
    contender: kind.name,
    hitRatio,
    requests: meter.requests * per1000,
    readUnits: meter.readUnits * per1000,
    writeUnits: meter.writeUnits * per1000,
    measuredHitRatio: 100 * (1 - loads / invocations),
  };
}

/**
 * DynamoDB requests and capacity units per 1,000 invocations at a given hit ratio, counted by an SDK
 * middleware on every contender's clients (DynamoDB's own ConsumedCapacity, not an estimate). A fleet of 10
 * execution environments, each with its own instance, serves the invocations in turn; each invocation
 * does a get-or-set. Hits go to 20 hot keys written beforehand (not counted); misses go to new keys.
 */
export async function capacity(ctx: BenchContext): Promise<Section> {
  const invocations = ctx.quick ? 400 : 1000;
  const data: FleetRequests[] = [];
  for (const hitRatio of HIT_RATIOS) {
    for (const kind of KEY_VALUE_CONTENDERS) {
      ctx.log(`capacity ${hitRatio}%: ${kind.name}`);
      data.push(await fleetRequests(ctx, kind, hitRatio, invocations));
    }
  }
  const rows = data.map((d) => [d.contender, `${d.hitRatio}%`, count(d.requests), d.readUnits.toFixed(1), d.writeUnits.toFixed(1), `${d.measuredHitRatio.toFixed(0)}%`]);
  rows.push(['Powertools idempotency', 'all', 'cannot run', '', '', POWERTOOLS_NOTE]);
  const names = KEY_VALUE_CONTENDERS.map((kind) => kind.name);
  const at = (name: string, ratioValue: number) => data.find((d) => d.contender === name && d.hitRatio === ratioValue)!;
  const floor90 = at(names[0]!, 90);
  const dc90 = at('dynamo-cache', 90);
  const original90 = at('original CacheService (port)', 90);
  return {
    id: 'capacity',
    title: 'DynamoDB requests and capacity units per 1,000 invocations',
    summary: `Per 1,000 invocations of a get-or-set (${invocations} simulated, scaled to 1,000), spread over ${ENVIRONMENTS} execution environments, at four hit ratios. Requests and read/write capacity units are counted on each contender's clients by an SDK middleware, from the ConsumedCapacity DynamoDB (here dynalite) reports. dynamo-cache's figures include its refresh lease (one conditional write per miss) and one namespace-generation read per environment.`,
    tables: [{ columns: ['contender', 'hit ratio', 'DynamoDB requests', 'read units', 'write units', 'measured hit ratio'], rows }],
    charts: [
      {
        file: 'dynamodb-requests-by-hit-ratio.svg',
        alt: 'DynamoDB requests per 1,000 invocations by hit ratio and contender',
        svg: groupedColumns(
          'DynamoDB requests per 1,000 invocations, by hit ratio',
          `get-or-set over ${ENVIRONMENTS} execution environments; lower is better`,
          HIT_RATIOS.map((r) => `${r}% hits`),
          names.map((name) => ({ name, values: HIT_RATIOS.map((r) => at(name, r).requests) })),
        ),
      },
    ],
    data,
    headlines: [
      `at a 90% hit ratio dynamo-cache sends ${count(dc90.requests)} DynamoDB requests per 1,000 invocations, against ${count(original90.requests)} for the original CacheService and ${count(floor90.requests)} for raw GetItem/PutItem`,
    ],
  };
}

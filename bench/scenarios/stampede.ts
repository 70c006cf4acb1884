import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { cacheableTiered, dynamoCacheDefault, dynamoCacheNoLease, keyvDynamo, originalService, rawSdk, type ContenderKind } from '../contenders.ts';
import { percentile } from '../support/measure.ts';
import { count, ms, type BenchContext, type Section } from '../support/report.ts';
import { RequestMeter } from '../support/request-meter.ts';

const ENVIRONMENTS = 50;
const UPSTREAM_MS = 50;

interface Outcome {
  contender: string;
  upstreamCalls: number;
  failedCallers: number;
  p50: number;
  p99: number;
  requests: number;
}

/**
 * A cold fleet: 50 execution environments (separate instances, clients and memory) miss one key at the same
 * moment; fetching it takes 50 ms. How many times does the upstream get called, how many callers fail, and
 * how long do callers wait?
 */
export async function stampede(ctx: BenchContext): Promise<Section> {
  const runs = ctx.quick ? 1 : 3;
  const kinds: ContenderKind[] = [rawSdk, originalService, keyvDynamo, cacheableTiered, dynamoCacheNoLease, dynamoCacheDefault];
  const outcomes: Outcome[] = [];
  for (let run = 0; run < runs; run++) {
    for (const kind of kinds) {
      ctx.log(`stampede run ${run + 1}: ${kind.name}`);
      const meter = new RequestMeter();
      const fleet = Array.from({ length: ENVIRONMENTS }, () => kind.create(ctx.target, meter));
      const key = `stampede-${run}`;
      let calls = 0;
      const upstream = async () => {
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, UPSTREAM_MS));
        return { token: 'abc', at: Date.now() };
      };
      outcomes.push(await callAll(kind.name, fleet.map((env) => () => env.getOrSet(key, upstream, 3600)), () => calls, meter));
      fleet.forEach((env) => env.close());
    }
    ctx.log(`stampede run ${run + 1}: Powertools idempotency`);
    outcomes.push(await powertoolsStampede(ctx, run));
  }
  const names = [...new Set(outcomes.map((o) => o.contender))];
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const merged = names.map((name) => {
    const own = outcomes.filter((o) => o.contender === name);
    return {
      contender: name,
      upstreamCalls: mean(own.map((o) => o.upstreamCalls)),
      failedCallers: mean(own.map((o) => o.failedCallers)),
      p50: mean(own.map((o) => o.p50)),
      p99: mean(own.map((o) => o.p99)),
      requests: mean(own.map((o) => o.requests)),
    };
  });
  const leased = merged.find((m) => m.contender === dynamoCacheDefault.name)!;
  const original = merged.find((m) => m.contender === originalService.name)!;
  return {
    id: 'stampede',
    title: 'Stampede: 50 environments miss one key at once',
    summary: `${ENVIRONMENTS} execution environments call get-or-set on one missing key at the same moment; the upstream takes ${UPSTREAM_MS} ms. Mean of ${runs} run(s). Powertools idempotency wraps the fetch with makeIdempotent (DynamoDB persistence): concurrent duplicates are rejected while the first is in progress, by design.`,
    tables: [
      {
        columns: ['contender', 'upstream calls', 'callers that failed', 'caller p50 ms', 'caller p99 ms', 'DynamoDB requests'],
        rows: merged.map((m) => [m.contender, m.upstreamCalls.toFixed(1), m.failedCallers.toFixed(1), ms(m.p50), ms(m.p99), count(m.requests)]),
      },
    ],
    data: { runs: outcomes, mean: merged },
    headlines: [
      `when 50 environments miss one key at once, dynamo-cache calls the upstream ${leased.upstreamCalls.toFixed(0)} time(s) (the original CacheService: ${original.upstreamCalls.toFixed(0)})`,
    ],
  };
}

async function callAll(name: string, callers: Array<() => Promise<unknown>>, upstreamCalls: () => number, meter: RequestMeter): Promise<Outcome> {
  const latencies: number[] = [];
  let failed = 0;
  await Promise.all(
    callers.map(async (call) => {
      const start = performance.now();
      try {
        await call();
      } catch {
        failed += 1;
      }
      latencies.push(performance.now() - start);
    }),
  );
  latencies.sort((a, b) => a - b);
  return { contender: name, upstreamCalls: upstreamCalls(), failedCallers: failed, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), requests: meter.requests };
}

async function powertoolsStampede(ctx: BenchContext, run: number): Promise<Outcome> {
  const meter = new RequestMeter();
  const clients: DynamoDBClient[] = [];
  let calls = 0;
  // All 50 environments receive the same request: one payload, so one idempotency key.
  const request = { key: `stampede-powertools-${run}-${Date.now()}` };
  const callers = Array.from({ length: ENVIRONMENTS }, () => {
    const client = new DynamoDBClient(ctx.target.clientConfig);
    meter.attach(client);
    clients.push(client);
    const fetchToken = makeIdempotent(
      async (_request: { key: string }) => {
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, UPSTREAM_MS));
        return { token: 'abc' };
      },
      {
        persistenceStore: new DynamoDBPersistenceLayer({ tableName: ctx.target.tableName, awsSdkV3Client: client }),
        config: new IdempotencyConfig({ eventKeyJmesPath: 'key', expiresAfterSeconds: 3600 }),
      },
    );
    return () => fetchToken(request);
  });
  const outcome = await callAll('Powertools idempotency', callers, () => calls, meter);
  clients.forEach((client) => client.destroy());
  return outcome;
}

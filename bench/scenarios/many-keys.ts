import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoCache } from '../../src/index.ts';
import { percentile } from '../support/measure.ts';
import { count, ms, type BenchContext, type Section } from '../support/report.ts';
import { RequestMeter } from '../support/request-meter.ts';

const KEYS = 100;
const MISSES = 40;
/** The upstream's answer time, for one key or for a batch of them alike (one round trip). */
const UPSTREAM_MS = 20;

interface Round {
  readonly contender: string;
  readonly wallMs: number;
  readonly requests: number;
  readonly byOperation: Record<string, number>;
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly upstreamCalls: number;
  /** Cache failures absorbed (`stats().errors`): none is expected. */
  readonly errors: number;
}

const quiet = new Logger({ serviceName: 'bench', logLevel: 'SILENT' });

/**
 * A Lambda batch handler (SQS, Kinesis) needs 100 keys at once, 60 of them cached in DynamoDB and 40 missing; a
 * fetch takes 20 ms, for one key or a batch. `getOrSetMany` against the same 100 keys as 100 `getOrSet` calls
 * in parallel, from a fresh execution environment (empty memory tier): DynamoDB requests (counted by an SDK
 * middleware, with DynamoDB's own consumed capacity), upstream calls and wall time. Rounds alternate the two.
 */
export async function manyKeys(ctx: BenchContext): Promise<Section> {
  const rounds = ctx.quick ? 3 : 15;
  const clients: DynamoDBClient[] = [];
  /** One execution environment: its own client (metered), cache and memory tier. */
  const environment = (meter?: RequestMeter) => {
    const client = new DynamoDBClient({ ...ctx.target.clientConfig, maxAttempts: 1 });
    meter?.attach(client);
    clients.push(client);
    // A budget no request here outlasts: 100 requests at once queue on the local server, and a timeout (a miss, a
    // fetch) would measure that server, not the number of requests each way takes.
    return new DynamoCache({ tableName: ctx.target.tableName, client, namespace: 'manykeys', logger: quiet, timeoutMs: 5000 });
  };
  const writer = environment();
  const results: Round[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['getOrSetMany', 'getOrSet'] as const) : (['getOrSet', 'getOrSetMany'] as const);
      for (const contender of order) {
        ctx.log(`get-or-set-many round ${round + 1}: ${contender}`);
        const keys = Array.from({ length: KEYS }, (_, i) => `r${round}-${contender}-${i}`);
        await writer.setMany(new Map(keys.slice(MISSES).map((key) => [key, { key, cached: true }])), { ttlSeconds: 3600 });
        const meter = new RequestMeter();
        const cache = environment(meter);
        await cache.get('warm-up'); // the namespace generation and the connection, outside the measure
        meter.reset();
        let upstreamCalls = 0;
        const upstream = async <T>(answer: T): Promise<T> => {
          upstreamCalls += 1;
          await new Promise((resolve) => setTimeout(resolve, UPSTREAM_MS));
          return answer;
        };
        const started = performance.now();
        if (contender === 'getOrSetMany') {
          const found = await cache.getOrSetMany(keys, (missing) => upstream(new Map(missing.map((key) => [key, { key, cached: false }]))), { ttlSeconds: 3600 });
          if (found.size !== KEYS) throw new Error(`getOrSetMany answered ${found.size} keys`);
        } else {
          await Promise.all(keys.map((key) => cache.getOrSet(key, () => upstream({ key, cached: false }), { ttlSeconds: 3600 })));
        }
        const wallMs = performance.now() - started;
        results.push({
          contender,
          wallMs,
          requests: meter.requests,
          byOperation: Object.fromEntries([...meter.byOperation].map(([name, n]) => [name.replace(/Command$/, ''), n])),
          writeUnits: meter.writeUnits,
          readUnits: meter.readUnits,
          upstreamCalls,
          errors: cache.stats().errors,
        });
      }
    }
  } finally {
    for (const client of clients) client.destroy();
  }
  const summary = (['getOrSetMany', 'getOrSet'] as const).map((contender) => {
    const own = results.filter((r) => r.contender === contender);
    const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 0.5);
    const operations = [...new Set(own.flatMap((r) => Object.keys(r.byOperation)))].sort();
    return {
      contender,
      wallMs: median(own.map((r) => r.wallMs)),
      requests: median(own.map((r) => r.requests)),
      byOperation: Object.fromEntries(operations.map((name) => [name, median(own.map((r) => r.byOperation[name] ?? 0))])),
      readUnits: median(own.map((r) => r.readUnits)),
      writeUnits: median(own.map((r) => r.writeUnits)),
      upstreamCalls: median(own.map((r) => r.upstreamCalls)),
      errors: own.reduce((sum, r) => sum + r.errors, 0),
    };
  });
  const [many, single] = summary as [(typeof summary)[number], (typeof summary)[number]];
  const label = { getOrSetMany: `getOrSetMany(${KEYS} keys)`, getOrSet: `${KEYS} × getOrSet in parallel` };
  return {
    id: 'get-or-set-many',
    title: `Many keys at once: getOrSetMany against ${KEYS} getOrSet calls`,
    summary: `A batch handler needs ${KEYS} keys, ${KEYS - MISSES} of them cached in DynamoDB and ${MISSES} missing, from a fresh execution environment (empty memory tier); a fetch takes ${UPSTREAM_MS} ms, for one key or a batch. getOrSetMany reads the ${KEYS} keys in one BatchGetItem, takes a lease per missing key (one small conditional write each) and fetches the ${MISSES} in one call; ${KEYS} getOrSet calls read each key with GetItem and fetch each missing one. Medians of ${rounds} rounds each, the two alternating. Requests and capacity units counted by an SDK middleware (DynamoDB's own ConsumedCapacity).`,
    tables: [
      {
        columns: ['contender', 'wall time ms', 'DynamoDB requests', 'by operation', 'read units', 'write units', 'upstream calls', 'cache errors (all rounds)'],
        rows: summary.map((s) => [
          label[s.contender],
          ms(s.wallMs),
          count(s.requests),
          Object.entries(s.byOperation)
            .map(([name, n]) => `${name} ${count(n)}`)
            .join(', '),
          s.readUnits.toFixed(1),
          s.writeUnits.toFixed(1),
          count(s.upstreamCalls),
          count(s.errors),
        ]),
      },
    ],
    data: { rounds: results, median: summary },
    headlines: [
      `getOrSetMany of ${KEYS} keys (${MISSES} missing) makes ${count(many.requests)} DynamoDB requests and ${count(many.upstreamCalls)} upstream call in ${ms(many.wallMs)} ms; ${KEYS} getOrSet calls in parallel make ${count(single.requests)} and ${count(single.upstreamCalls)} in ${ms(single.wallMs)} ms`,
    ],
  };
}

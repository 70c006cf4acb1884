import { FaultProxy } from '../../test/support/fault-proxy.ts';
import { KEY_VALUE_CONTENDERS } from '../contenders.ts';
import { percentile } from '../support/measure.ts';
import { ms, type BenchContext, type Section } from '../support/report.ts';
import { RequestMeter } from '../support/request-meter.ts';
import { VALUE_1KB } from './latency.ts';

/**
 * Fail open: every DynamoDB request is throttled (400 ProvisionedThroughputExceededException from a fault
 * proxy in front of the server, so each SDK runs its own retry code). A get of a cached key: how long does
 * the caller wait, and does it get a miss or an exception? Each contender keeps its own (default) SDK
 * retry settings; dynamo-cache retries within its 300 ms budget, then its circuit breaker opens.
 */
export async function faults(ctx: BenchContext): Promise<Section> {
  if (ctx.target.endpoint === undefined || process.env.DYNAMO_CACHE_TABLE) {
    return { id: 'faults', title: 'Fail open under throttling', summary: 'Skipped: needs the local dynalite (the fault proxy sits in front of it).', tables: [], data: null };
  }
  const calls = ctx.quick ? 2 : 6;
  const proxy = await FaultProxy.start(ctx.target.endpoint);
  const behindProxy = { ...ctx.target, clientConfig: { ...ctx.target.clientConfig, endpoint: proxy.endpoint } };
  const rows: Array<Array<string | number>> = [];
  const data: Array<Record<string, unknown>> = [];
  try {
    for (const kind of KEY_VALUE_CONTENDERS) {
      ctx.log(`faults: ${kind.name}`);
      proxy.setFaults({});
      // A fresh environment that has reached DynamoDB once and cached nothing in memory yet.
      const cache = kind.create(behindProxy, new RequestMeter());
      await cache.set('fault-key', VALUE_1KB, 3600);
      const warm = kind.create(behindProxy, new RequestMeter());
      await warm.get('warm-up-other-key');
      proxy.setFaults({ throttleRate: 1 });
      const latencies: number[] = [];
      const outcomes = new Map<string, number>();
      for (let i = 0; i < calls; i++) {
        const start = performance.now();
        let outcome: string;
        try {
          const value = await warm.get('fault-key');
          outcome = value === undefined || value === null ? 'miss' : 'value';
        } catch (error) {
          outcome = `exception ${(error as Error).name}`;
        }
        latencies.push(performance.now() - start);
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }
      cache.close();
      warm.close();
      const first = latencies[0]!;
      const sorted = [...latencies].sort((a, b) => a - b);
      const summary = [...outcomes].map(([outcome, n]) => `${n} ${outcome}`).join(', ');
      rows.push([kind.name, ms(first), ms(percentile(sorted, 0.5)), ms(sorted.at(-1)!), summary]);
      data.push({ contender: kind.name, latencies, outcomes: Object.fromEntries(outcomes) });
    }
  } finally {
    await proxy.close();
  }
  return {
    id: 'faults',
    title: 'Fail open under throttling',
    summary: `${calls} gets of a cached key while the proxy throttles every DynamoDB request. A cache that fails open answers a miss quickly; one that does not throws after its SDK's retries. (cacheable answers from its memory primary when it has the key; here the environment had not read it yet.)`,
    tables: [{ columns: ['contender', 'first call ms', 'p50 ms', 'max ms', 'outcomes'], rows }],
    data,
  };
}

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { setTimeout as sleep } from 'node:timers/promises';
import { dynamoCache } from '../../src/index.ts';
import { httpApiEvent, lambdaContext } from '../../test/support/http-events.ts';
import { percentile } from '../support/measure.ts';
import { count, ms, type BenchContext, type Section } from '../support/report.ts';

/** Time left in the invocation when it starts, in ms: below, at and above SAM's default 3 s timeout's worth. */
const REMAINING_MS = [1000, 1500, 3000];
const UPSTREAM_MS = 20;

type Invoke = (event: unknown, context: Context) => Promise<unknown>;

interface Outcome {
  readonly remainingMs: number;
  readonly invocations: number;
  /** Settled with a response while time was left. */
  readonly beforeDeadline: number;
  /** Rejected with Middy's TimeoutError (Lambda's "Task timed out"). */
  readonly timeouts: number;
  readonly p50: number;
  readonly p99: number;
}

/**
 * Another environment won the refresh lease of a memoized GET and never finishes (crashed, frozen, or
 * stuck on its upstream; its lease outlives the run). Execution environments then receive the same GET
 * through the real @middy/core with N ms left: how many answer before the deadline, and how long they take.
 * Each waits on the lease until the deadline less `deadlineMarginMs` (500 ms), then runs its handler.
 */
export async function deadline(ctx: BenchContext): Promise<Section> {
  process.env.AWS_LAMBDA_FUNCTION_NAME ??= 'bench-function';
  const environments = ctx.quick ? 5 : 20;
  const rounds = ctx.quick ? 1 : 3;
  const quiet = new Logger({ serviceName: 'bench', logLevel: 'SILENT' });
  const clients: DynamoDBClient[] = [];
  /** One execution environment: its own client, cache and Middy handler. */
  const environment = (handler: (event: unknown, context: Context, options: { signal: AbortSignal }) => Promise<unknown>, leaseTtlMs?: number): Invoke => {
    const client = new DynamoDBClient(ctx.target.clientConfig);
    clients.push(client);
    const lease = leaseTtlMs === undefined ? {} : { lease: { ttlMs: leaseTtlMs } };
    return middy(handler).use(
      dynamoCache({ tableName: ctx.target.tableName, client, namespace: 'deadline', logger: quiet, ...lease, response: { ttlSeconds: 3600 } }),
    ) as unknown as Invoke;
  };
  const answer = async (_event: unknown, _context: Context, { signal }: { signal: AbortSignal }) => {
    await sleep(UPSTREAM_MS, undefined, { signal });
    return { statusCode: 200, body: 'fetched by the waiter' };
  };

  const outcomes: Outcome[] = [];
  for (const remainingMs of REMAINING_MS) {
    const latencies: number[] = [];
    let beforeDeadline = 0;
    let timeouts = 0;
    for (let round = 0; round < rounds; round++) {
      ctx.log(`deadline: ${remainingMs} ms left, round ${round + 1}`);
      const event = httpApiEvent({ path: `/deadline/${remainingMs}/${round}/${Date.now()}` });
      let release!: () => void;
      let holding!: () => void;
      const held = new Promise<void>((resolve) => (holding = resolve));
      const holder = environment(async () => {
        holding();
        await new Promise<void>((resolve) => (release = resolve));
        return { statusCode: 200, body: 'from the holder' };
      }, 600_000);
      const holderDone = holder(event, lambdaContext('bench-function', 600_000));
      await held;
      const waiters = Array.from({ length: environments }, () => environment(answer));
      await Promise.all(
        waiters.map(async (invoke) => {
          const context = lambdaContext('bench-function', remainingMs);
          const started = performance.now();
          try {
            const response = (await invoke(event, context)) as { statusCode?: number };
            if (response?.statusCode === 200 && context.getRemainingTimeInMillis() > 0) beforeDeadline += 1;
          } catch (error) {
            if ((error as Error)?.name === 'TimeoutError') timeouts += 1;
          }
          latencies.push(performance.now() - started);
        }),
      );
      release();
      await holderDone;
      clients.splice(0).forEach((client) => client.destroy());
    }
    latencies.sort((a, b) => a - b);
    outcomes.push({ remainingMs, invocations: latencies.length, beforeDeadline, timeouts, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) });
  }

  const share = (outcome: Outcome) => (100 * outcome.beforeDeadline) / outcome.invocations;
  const at1500 = outcomes.find((outcome) => outcome.remainingMs === 1500)!;
  return {
    id: 'deadline',
    title: 'Deadline: a stuck lease holder and N ms left',
    summary: `Another environment holds the lease of a memoized GET and never finishes. ${environments} execution environments receive the same GET through @middy/core (default timeoutEarlyInMillis) with N ms left, ${rounds} round(s) each; their handler takes ${UPSTREAM_MS} ms. An invocation counts as completed when it answers 200 with time left. The middleware waits on the lease until the deadline less deadlineMarginMs (500 ms), then runs the handler itself.`,
    tables: [
      {
        columns: ['ms left', 'invocations', 'completed before the deadline', 'Middy TimeoutError', 'p50 ms', 'p99 ms'],
        rows: outcomes.map((o) => [count(o.remainingMs), count(o.invocations), `${share(o).toFixed(0)}%`, count(o.timeouts), ms(o.p50), ms(o.p99)]),
      },
    ],
    data: outcomes,
    headlines: [
      `stuck lease holder, 1,500 ms left: ${share(at1500).toFixed(0)}% of middleware invocations answer in time (p99 ${ms(at1500.p99)} ms)`,
    ],
  };
}

import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { DynamoCache } from '../src/cache.ts';
import { dynamoCache, type DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';
import { httpApiEvent, lambdaContext } from './support/http-events.ts';
import { asLambda, header, json, type Response } from './support/middy-harness.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

const event = httpApiEvent({ path: '/users/42', route: '/users/{id}' });

/** What one invocation came to: its response or error, and the time it had left when it settled. */
interface Outcome {
  readonly response?: Response;
  readonly error?: Error;
  readonly remainingMs: number;
}

type Handler = (event: unknown, context: Context, options: { signal: AbortSignal }) => Promise<unknown>;

/**
 * One execution environment: the real @middy/core (with its default `timeoutEarlyInMillis`, or the one
 * given) around `handler`, with `dynamoCache` memoizing responses.
 */
function environment(handler: Handler, options: DynamoCacheMiddlewareOptions, timeoutEarlyInMillis?: number) {
  const logger = new RecordingLogger();
  const wrapped = middy(handler, timeoutEarlyInMillis === undefined ? {} : { timeoutEarlyInMillis }).use(
    dynamoCache({ clientConfig: localClientConfig(db.endpoint), logger, timeoutMs: 5000, response: { ttlSeconds: 60 }, ...options }),
  );
  const invoke = async (request: unknown, context: Context): Promise<Outcome> => {
    try {
      const response = (await asLambda(wrapped)(request, context)) as Response;
      return { response, remainingMs: context.getRemainingTimeInMillis() };
    } catch (error) {
      return { error: error as Error, remainingMs: context.getRemainingTimeInMillis() };
    }
  };
  return { invoke, logger };
}

/** A handler that calls a 20 ms upstream, honouring Middy's abort signal as a handler should. */
const upstreamHandler =
  (from: string): Handler =>
  async (_event, _context, { signal }) => {
    await sleep(20, undefined, { signal });
    return json(200, { from });
  };

/**
 * Another environment that won the memo key's lease and never finishes: its handler hangs until released,
 * and its lease outlives the test (`lease.ttlMs` of ten minutes).
 */
async function stuckLeaseHolder(tableName: string) {
  let release!: () => void;
  let entered!: (cache: DynamoCache) => void;
  const holding = new Promise<DynamoCache>((resolve) => (entered = resolve));
  const holder = environment(
    async (_event, context) => {
      entered((context as unknown as { cache: DynamoCache }).cache);
      await new Promise<void>((resolve) => (release = resolve));
      return json(200, { from: 'holder' });
    },
    { tableName, lease: { ttlMs: 600_000 } },
  );
  const done = holder.invoke(event, lambdaContext('users-api', 600_000));
  const cache = await holding;
  expect(cache.stats().leaseWins).toBe(1);
  return {
    release: async () => {
      release();
      await done;
    },
  };
}

describe('the invocation deadline bounds the middleware', () => {
  it.each([
    ['Middy defaults', undefined],
    ['timeoutEarlyInMillis: 250', 250],
  ])('with a stuck lease holder on the memo key and 1,500 ms left, every invocation completes before the deadline (%s)', async (_name, timeoutEarlyInMillis) => {
    const tableName = await db.newTable();
    const holder = await stuckLeaseHolder(tableName);
    try {
      // Eight other environments receive the same GET, each with 1,500 ms left.
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, () => environment(upstreamHandler('waiter'), { tableName }, timeoutEarlyInMillis).invoke(event, lambdaContext('users-api', 1500))),
      );
      for (const outcome of outcomes) {
        expect(outcome.error?.name).toBeUndefined(); // no Middy TimeoutError
        expect(outcome.response?.statusCode).toBe(200);
        expect(JSON.parse(outcome.response!.body!)).toEqual({ from: 'waiter' }); // the wait ended, and the handler ran itself
        expect(header(outcome.response!, 'X-Cache')).toBe('Miss');
        expect(outcome.remainingMs).toBeGreaterThan(0);
      }
    } finally {
      await holder.release();
    }
  });

  it('every DynamoDB request of the middleware ends before the deadline: a slow table delays neither a GET nor an invalidating POST past it', async () => {
    const tableName = await db.newTable();
    proxy.setFaults({ latencyMs: 2000 });
    const { invoke, logger } = environment(upstreamHandler('handler'), { tableName, clientConfig: localClientConfig(proxy.endpoint) });
    const get = await invoke(event, lambdaContext('users-api', 1500));
    const post = await invoke(httpApiEvent({ method: 'POST', path: '/users/42', route: '/users/{id}' }), lambdaContext('users-api', 1500));
    for (const outcome of [get, post]) {
      expect(outcome.error).toBeUndefined();
      expect(outcome.response?.statusCode).toBe(200);
      expect(outcome.remainingMs).toBeGreaterThan(0);
    }
    expect(logger.entries.filter((entry) => entry.level === 'error')).toEqual([]);
  });

  it('an invocation with less than the margin left calls no DynamoDB and stores nothing; the next ones memoize the path as usual', async () => {
    const tableName = await db.newTable();
    const { invoke } = environment(upstreamHandler('handler'), { tableName, clientConfig: localClientConfig(proxy.endpoint) });
    const late = await invoke(event, lambdaContext('users-api', 300)); // less than the 500 ms margin
    expect(late.response?.statusCode).toBe(200);
    expect(proxy.count()).toBe(0);
    // Its reads (the namespace generation, its tags' states) were cut by the deadline, which says nothing about DynamoDB: they are read again at once.
    const first = await invoke(event, lambdaContext());
    const second = await invoke(event, lambdaContext());
    expect(header(first.response!, 'X-Cache')).toBe('Miss');
    expect(header(second.response!, 'X-Cache')).toBe('Hit');
  });

  it("a handler passing { deadline: context, signal } to context.cache gets its answer before the deadline despite a stuck lease", async () => {
    const tableName = await db.newTable();
    const { cache: other } = await db.newCache({ tableName, lease: { ttlMs: 600_000 } });
    void other.getOrSet('config', () => new Promise<never>(() => {}));
    await expect.poll(() => other.stats().leaseWins).toBe(1);
    const { invoke } = environment(
      async (_event, context, { signal }) => {
        const cache = (context as unknown as { cache: DynamoCache }).cache;
        const config = await cache.getOrSet('config', async () => 'loaded in time', { deadline: context, signal });
        return json(200, { config });
      },
      { tableName, response: false },
    );
    const outcome = await invoke(event, lambdaContext('users-api', 1500));
    expect(outcome.error).toBeUndefined();
    expect(JSON.parse(outcome.response!.body!)).toEqual({ config: 'loaded in time' });
    expect(outcome.remainingMs).toBeGreaterThan(0);
  });
});

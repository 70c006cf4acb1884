import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { dynamoCache, type DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite } from './support/fixtures.ts';
import { httpApiEvent, lambdaContext } from './support/http-events.ts';
import { asLambda, header, json, type Response } from './support/middy-harness.ts';
import { emfMetrics, logEntries, usePowertoolsOutput } from './support/powertools-output.ts';

const db = useDynalite();
const output = usePowertoolsOutput();

// As in Lambda: Powertools reports a cold start only for on-demand environments.
beforeAll(() => {
  vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
});
afterAll(() => {
  vi.unstubAllEnvs();
});

const me = (principal?: string) => httpApiEvent({ path: '/me', route: '/me', ...(principal === undefined ? {} : { principal }) });

/**
 * One execution environment as a team using Powertools builds it, in the recommended order: Powertools'
 * middlewares first (a middleware that adds the caller to every log line between them and the cache),
 * then `dynamoCache`, which shares the application's `Metrics` and `Logger`. Its handler throws while
 * `upstream.failing` is set.
 */
function poweredEnvironment(tableName: string, options: DynamoCacheMiddlewareOptions = {}) {
  const logger = new Logger({ serviceName: 'users-api' });
  const metrics = new Metrics({ namespace: 'app', serviceName: 'users-api' });
  const upstream = { failing: false };
  const handler = vi.fn(async (event: { rawPath: string }) => {
    logger.info('handler ran');
    metrics.addMetric('HandlerRan', MetricUnit.Count, 1);
    if (upstream.failing) throw new Error('upstream 429');
    return json(200, { path: event.rawPath });
  });
  const wrapped = middy(handler)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .use({
      before: (request) => {
        const user = (request.event as { requestContext?: { authorizer?: { jwt?: { claims?: { sub?: string } } } } }).requestContext?.authorizer?.jwt?.claims?.sub;
        if (user !== undefined) logger.appendKeys({ user });
      },
    })
    .use(dynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint), timeoutMs: 5000, logger, metrics, response: { ttlSeconds: 60 }, ...options }));
  const invoke = async (event: unknown, context: Context = lambdaContext()) => {
    const response = (await asLambda(wrapped)(event, context)) as Response;
    return { response, lines: output.take() };
  };
  return { invoke, handler, logger, upstream };
}

describe('Powertools middlewares registered before dynamoCache', () => {
  it('on a hit, the EMF metrics of the invocation are flushed with it, and none leaks into the next one', async () => {
    const { invoke } = poweredEnvironment(await db.newTable());
    const miss = await invoke(me('alice'));
    const hit = await invoke(me('alice'));
    const next = await invoke(me('bob'));
    expect(header(hit.response, 'X-Cache')).toBe('Hit');
    const blobs = (lines: typeof hit.lines) => emfMetrics(lines).filter((blob) => !('ColdStart' in blob));
    expect(blobs(miss.lines)).toEqual([{ CacheMiss: 1, CacheFetch: 1, HandlerRan: 1 }]);
    expect(blobs(hit.lines)).toEqual([{ CacheHit: 1 }]);
    expect(blobs(next.lines)).toHaveLength(1);
    expect(blobs(next.lines)[0]).not.toHaveProperty('CacheHit');
  });

  it("the ColdStart metric is emitted when an environment's first invocation is a hit", async () => {
    const tableName = await db.newTable();
    await poweredEnvironment(tableName).invoke(me('alice')); // another environment stores the response
    const { invoke, handler } = poweredEnvironment(tableName);
    const first = await invoke(me('alice'));
    expect(handler).not.toHaveBeenCalled();
    expect(emfMetrics(first.lines)).toEqual(expect.arrayContaining([{ ColdStart: 1 }, { CacheHit: 1 }]));
  });

  it('on a hit, logs carry the request id, and keys appended during it do not leak into the next invocation', async () => {
    const { invoke, logger } = poweredEnvironment(await db.newTable(), {
      onResult: (result) => logger.info('response settled', { fromCache: result.fromCache }),
    });
    await invoke(me('alice'));
    const context = lambdaContext();
    const hit = await invoke(me('alice'), context);
    const [settled] = logEntries(hit.lines);
    expect(settled).toMatchObject({ message: 'response settled', fromCache: true, function_request_id: context.awsRequestId, user: 'alice' });
    const anonymous = await invoke(httpApiEvent({ path: '/public', route: '/public' }));
    const handlerLog = logEntries(anonymous.lines).find((entry) => entry.message === 'handler ran');
    expect(handlerLog).toBeDefined();
    expect(handlerLog).not.toHaveProperty('user'); // alice's key was reset at the end of her hit
  });

  it('a stale response answering a failed handler ends the invocation the same way: metrics flushed, keys reset', async () => {
    const env = poweredEnvironment(await db.newTable(), { memory: false, response: { ttlSeconds: 1, staleIfErrorSeconds: 600 } });
    await env.invoke(me('alice'));
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 5_000);
      env.upstream.failing = true;
      const stale = await env.invoke(me('alice'));
      expect(JSON.parse(stale.response.body!)).toEqual({ path: '/me' });
      // The handler ran (a fetch) and failed: the stale response answered instead is a stale-if-error.
      expect(emfMetrics(stale.lines).filter((blob) => !('ColdStart' in blob))).toEqual([{ CacheMiss: 1, CacheFetch: 1, CacheStaleIfError: 1, HandlerRan: 1 }]);
      env.upstream.failing = false;
      const next = await env.invoke(httpApiEvent({ path: '/public', route: '/public' }));
      expect(logEntries(next.lines).find((entry) => entry.message === 'handler ran')).not.toHaveProperty('user');
      expect(emfMetrics(next.lines)).toEqual([{ CacheMiss: 1, CacheFetch: 1, HandlerRan: 1 }]); // its own metrics only
    } finally {
      vi.useRealTimers();
    }
  });

  it('registered after dynamoCache, a Powertools middleware gets a one-time warning: on a hit it would not run', async () => {
    const tableName = await db.newTable();
    const logger = new Logger({ serviceName: 'users-api' });
    const metrics = new Metrics({ namespace: 'app', serviceName: 'users-api' });
    const wrapped = middy(async () => json(200, { ok: true }))
      .use(dynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint), timeoutMs: 5000, logger, metrics, response: { ttlSeconds: 60 } }))
      .use(logMetrics(metrics));
    for (const path of ['/a', '/b', '/a']) await asLambda(wrapped)(httpApiEvent({ path }), lambdaContext());
    const warnings = logEntries(output.take()).filter((entry) => entry.level === 'WARN' && /registered after dynamoCache/.test(entry.message));
    expect(warnings).toHaveLength(1);
  });

  it('the cache-created metrics option: every invocation publishes its own cache metrics, hits included', async () => {
    const tableName = await db.newTable();
    const { invoke } = poweredEnvironment(tableName);
    const counts = [];
    for (let i = 0; i < 3; i++) counts.push(emfMetrics((await invoke(me('alice'))).lines).filter((blob) => !('ColdStart' in blob)));
    expect(counts).toEqual([[expect.objectContaining({ CacheMiss: 1 })], [{ CacheHit: 1 }], [{ CacheHit: 1 }]]);
  });
});

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { makeHandlerIdempotent } from '@aws-lambda-powertools/idempotency/middleware';
import { Logger } from '@aws-lambda-powertools/logger';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { dynamoCache } from '../../src/index.ts';
import { httpApiEvent, lambdaContext } from '../../test/support/http-events.ts';
import { measureInterleaved } from '../support/measure.ts';
import { ms, ratio, type BenchContext, type Section } from '../support/report.ts';
import { VALUE_1KB } from './latency.ts';

type Invoke = (event: unknown, context: Context) => Promise<unknown>;

/**
 * The cost of one invocation through each middleware, against the same HTTP API handler: plain Middy,
 * dynamo-cache's response memoization (hit from memory, hit from DynamoDB, miss), and Powertools
 * idempotency's makeHandlerIdempotent with DynamoDB persistence (hit with and without its local cache, miss).
 */
export async function middleware(ctx: BenchContext): Promise<Section> {
  process.env.AWS_LAMBDA_FUNCTION_NAME ??= 'bench-function';
  const clients: DynamoDBClient[] = [];
  const client = () => {
    const c = new DynamoDBClient(ctx.target.clientConfig);
    clients.push(c);
    return c;
  };
  const base = async (event: { rawPath: string }) => ({
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: event.rawPath, user: VALUE_1KB.user }),
  });
  const quiet = new Logger({ serviceName: 'bench', logLevel: 'SILENT' });
  const withDynamoCache = (memory: boolean) =>
    middy(base).use(
      dynamoCache({ tableName: ctx.target.tableName, client: client(), namespace: memory ? 'mw' : 'mwnomem', logger: quiet, memory: memory ? {} : false, response: { ttlSeconds: 3600 } }),
    ) as unknown as Invoke;
  const withPowertools = (useLocalCache: boolean) =>
    middy(base).use(
      makeHandlerIdempotent({
        persistenceStore: new DynamoDBPersistenceLayer({ tableName: ctx.target.tableName, awsSdkV3Client: client() }),
        config: new IdempotencyConfig({ eventKeyJmesPath: 'rawPath', useLocalCache, expiresAfterSeconds: 3600 }),
      }),
    ) as unknown as Invoke;

  const plain = middy(base) as unknown as Invoke;
  const dcMemory = withDynamoCache(true);
  const dcNoMemory = withDynamoCache(false);
  const ptLocal = withPowertools(true);
  const ptNoLocal = withPowertools(false);
  const hitEvent = (tag: string) => httpApiEvent({ path: `/users/hit-${tag}`, route: '/users/{id}' });
  const events = { dcm: hitEvent('dcm'), dcn: hitEvent('dcn'), ptl: hitEvent('ptl'), ptn: hitEvent('ptn') };
  // Warm every hit case once (the first call is the miss that stores).
  await dcMemory(events.dcm, lambdaContext());
  await dcNoMemory(events.dcn, lambdaContext());
  await ptLocal(events.ptl, lambdaContext());
  await ptNoLocal(events.ptn, lambdaContext());
  let n = 0;
  const unique = () => httpApiEvent({ path: `/users/miss-${++n}`, route: '/users/{id}' });
  ctx.log('middleware');
  const results = await measureInterleaved(
    [
      { name: 'plain Middy handler (no cache)', fn: () => plain(unique(), lambdaContext()) },
      { name: 'dynamo-cache middleware, hit (memory tier)', fn: () => dcMemory(events.dcm, lambdaContext()) },
      { name: 'dynamo-cache middleware, hit (DynamoDB)', fn: () => dcNoMemory(events.dcn, lambdaContext()) },
      { name: 'dynamo-cache middleware, miss', fn: () => dcMemory(unique(), lambdaContext()) },
      { name: 'Powertools idempotency, hit (local cache)', fn: () => ptLocal(events.ptl, lambdaContext()) },
      { name: 'Powertools idempotency, hit (DynamoDB)', fn: () => ptNoLocal(events.ptn, lambdaContext()) },
      { name: 'Powertools idempotency, miss', fn: () => ptLocal(unique(), lambdaContext()) },
    ],
    ctx.measure,
  );
  clients.forEach((c) => c.destroy());
  const plainResult = results[0]!;
  const at = (name: string) => results.find((r) => r.name === name)!;
  return {
    id: 'middleware',
    title: 'Middleware per invocation',
    summary:
      'One invocation of the same HTTP API handler through Middy: without a cache, with dynamo-cache response memoization, and with Powertools idempotency (its DynamoDB persistence layer, with and without its local cache). A miss runs the handler and stores its response; a hit returns the stored one. Powertools idempotency is built for a different contract (exactly-once side effects), so its miss writes twice (in progress, then completed).',
    tables: [
      {
        columns: ['handler', 'p50 ms', 'p99 ms', 'p50 vs plain Middy'],
        rows: results.map((r) => [r.name, ms(r.p50), ms(r.p99), ratio(r.p50, plainResult.p50)]),
      },
    ],
    data: results,
    headlines: [
      `a memoized response served by the middleware from memory costs ${ms(at('dynamo-cache middleware, hit (memory tier)').p50)} ms per invocation at p50 (Powertools idempotency with its local cache: ${ms(at('Powertools idempotency, hit (local cache)').p50)} ms); a miss costs ${ms(at('dynamo-cache middleware, miss').p50)} ms against ${ms(at('Powertools idempotency, miss').p50)} ms`,
    ],
  };
}

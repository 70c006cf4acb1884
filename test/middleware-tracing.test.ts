import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Tracer as TracerType } from '@aws-lambda-powertools/tracer';
import middy from '@middy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoCache } from '../src/middleware/dynamo-cache-middleware.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite } from './support/fixtures.ts';
import { httpApiEvent, lambdaContext } from './support/http-events.ts';
import { asLambda, header, json, type Response } from './support/middy-harness.ts';
import { XRayDaemon, type TraceDocument } from './support/xray-daemon.ts';

const db = useDynalite();

/** The trace header Lambda sets for a sampled invocation; its `Parent` is the function's segment. */
const LAMBDA_SEGMENT_ID = '53995c3f42cd8ad8';

let daemon: XRayDaemon;
let tracer: TracerType;
let captureLambdaHandler: typeof import('@aws-lambda-powertools/tracer/middleware').captureLambdaHandler;
const saved = { ...process.env };

// The X-Ray SDK reads its environment when it loads: Lambda's, with the daemon on a loopback port.
beforeAll(async () => {
  daemon = await XRayDaemon.start();
  Object.assign(process.env, {
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    LAMBDA_TASK_ROOT: '/var/task',
    AWS_LAMBDA_FUNCTION_NAME: 'users-api',
    _HANDLER: 'index.handler',
    _X_AMZN_TRACE_ID: `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=${LAMBDA_SEGMENT_ID};Sampled=1`,
    AWS_XRAY_DAEMON_ADDRESS: daemon.address,
    AWS_XRAY_CONTEXT_MISSING: 'IGNORE_ERROR',
    AWS_XRAY_LOG_LEVEL: 'silent',
  });
  const { Tracer } = await import('@aws-lambda-powertools/tracer');
  ({ captureLambdaHandler } = await import('@aws-lambda-powertools/tracer/middleware'));
  tracer = new Tracer({ serviceName: 'users-api' });
});

afterAll(async () => {
  process.env = saved;
  await daemon?.close();
});

/**
 * The documents of one invocation: those received until its handler subsegment, the last one closed
 * (UDP is asynchronous, so it is waited for).
 */
async function invocationDocuments(): Promise<{ handler: TraceDocument; dynamodb: TraceDocument[] }> {
  const isHandler = (document: TraceDocument) => document.name === '## index.handler';
  await expect.poll(() => daemon.documents.some(isHandler)).toBe(true);
  const documents = daemon.take();
  return { handler: documents.find(isHandler)!, dynamodb: documents.filter((document) => document.name === 'DynamoDB') };
}

describe('tracing with Powertools Tracer', () => {
  it('a client wrapped by tracer.captureAWSv3Client works as the cache client: each DynamoDB call is a subsegment; a hit closes the handler subsegment', async () => {
    expect(tracer.isTracingEnabled()).toBe(true);
    const client = tracer.captureAWSv3Client(new DynamoDBClient(localClientConfig(db.endpoint)));
    const handler = middy(async () => json(200, { user: 42 }))
      .use(captureLambdaHandler(tracer))
      .use(dynamoCache({ tableName: await db.newTable(), client, timeoutMs: 5000, response: { ttlSeconds: 60 } }));
    const invoke = async () => (await asLambda(handler)(httpApiEvent({ path: '/users/42' }), lambdaContext())) as Response;
    daemon.take();

    const miss = await invoke();
    expect(header(miss, 'X-Cache')).toBe('Miss');
    const missTrace = await invocationDocuments();
    expect(missTrace.dynamodb.map((document) => document.aws.operation)).toEqual(expect.arrayContaining(['GetItem', 'PutItem']));
    expect(missTrace.handler.parent_id).toBe(LAMBDA_SEGMENT_ID);

    const hit = await invoke();
    expect(header(hit, 'X-Cache')).toBe('Hit');
    const hitTrace = await invocationDocuments(); // closed and sent, though no `after` ran
    expect(hitTrace.dynamodb).toEqual([]); // a memory-tier hit
    expect(hitTrace.handler.parent_id).toBe(LAMBDA_SEGMENT_ID);
    expect(hitTrace.handler.end_time).toBeGreaterThanOrEqual(hitTrace.handler.start_time);

    await invoke();
    const next = await invocationDocuments();
    expect(next.handler.parent_id).toBe(LAMBDA_SEGMENT_ID); // not nested in the hit's subsegment: nothing leaked
  });
});

import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { AwsInstrumentation } from '@opentelemetry/instrumentation-aws-sdk';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DynamoCache as DynamoCacheType } from '../src/cache.ts';
import type { LocalDynamo } from './support/dynalite.ts';

// OpenTelemetry's AWS SDK instrumentation patches the SDK as it loads: everything that loads the SDK is
// imported after it is registered (below), never at the top of this file.
const exporter = new InMemorySpanExporter();
let unregister: () => void;
let local: LocalDynamo;
/** A cache with its own client (memory tier off), `clientConfig` added to the local endpoint's settings. */
let newCache: (clientConfig?: Record<string, unknown>) => DynamoCacheType;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  unregister = registerInstrumentations({ instrumentations: [new AwsInstrumentation()] });
  const { DynamoCache } = await import('../src/cache.ts');
  const { startDynalite, localClientConfig, rawClient, createCacheTable } = await import('./support/dynalite.ts');
  const { RecordingLogger } = await import('./support/recording-logger.ts');
  local = await startDynalite();
  const tableName = await createCacheTable(rawClient(local.endpoint));
  newCache = (clientConfig = {}) => new DynamoCache({ tableName, clientConfig: { ...localClientConfig(local.endpoint), ...clientConfig }, memory: false, logger: new RecordingLogger() });
});

afterAll(async () => {
  unregister();
  trace.disable();
  context.disable();
  await local.close();
});

/** The SDK's DynamoDB spans under each cache span named `dynamo-cache <operation>`, as `Command key` strings in the order they ended. */
function sdkSpansByOperation(operation: string): string[][] {
  const spans = exporter.getFinishedSpans();
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
  const sdk = spans.filter((span) => span.name.startsWith('DynamoDB.'));
  // Every SDK span has a cache span for parent: none is left at the root or under another request's span.
  expect(sdk.filter((span) => !spans.some((other) => other.name.startsWith('dynamo-cache ') && other.spanContext().spanId === parentOf(span)))).toEqual([]);
  return spans
    .filter((span) => span.name === `dynamo-cache ${operation}`)
    .map((parent) => sdk.filter((span) => parentOf(span) === parent.spanContext().spanId).map((span) => span.name));
}

describe("with OpenTelemetry's AWS SDK instrumentation, each DynamoDB request is a span under the cache operation that made it", () => {
  it.each([
    ['the client the cache creates (its middleware resolved once per command)', {}],
    ['the same client with cacheMiddleware: false', { cacheMiddleware: false }],
  ])('%s: concurrent getOrSet misses, then gets', async (_name, config) => {
    const cache = newCache(config);
    await cache.get('warm-up');
    exporter.reset();
    const keys = Array.from({ length: 8 }, (_, i) => `key-${i}-${Math.random()}`);
    expect(await Promise.all(keys.map((key) => cache.getOrSet(key, async () => `value of ${key}`)))).toEqual(keys.map((key) => `value of ${key}`));
    // The read, the lease's conditional write, the value's conditional write: under each miss, none under another's.
    expect(sdkSpansByOperation('getOrSet')).toEqual(keys.map(() => ['DynamoDB.GetItem', 'DynamoDB.PutItem', 'DynamoDB.PutItem']));
    exporter.reset();
    expect(await Promise.all(keys.map((key) => cache.get(key)))).toEqual(keys.map((key) => `value of ${key}`));
    expect(sdkSpansByOperation('get')).toEqual(keys.map(() => ['DynamoDB.GetItem']));
  });
});

import { context, trace, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AlwaysOffSampler, BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import middy from '@middy/core';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dynamoCache } from '../src/middleware/dynamo-cache-middleware.ts';
import type { CacheResult } from '../src/resilience/call-options.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';
import { lambdaContext } from './support/http-events.ts';
import { asLambda } from './support/middy-harness.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);
const exporter = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager();
const run = promisify(execFile);

/** Registers a tracer provider (the in-memory exporter, or none for `sampled: false`), as the ADOT layer or the Node SDK would. */
function register(sampled = true): void {
  trace.disable();
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)], ...(sampled ? {} : { sampler: new AlwaysOffSampler() }) }));
}

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
beforeEach(() => register());
afterEach(() => exporter.reset());
afterAll(() => {
  trace.disable();
  context.disable();
});

/** The finished spans named `dynamo-cache <operation>`, in the order they ended. */
const spans = (operation: string): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.name === `dynamo-cache ${operation}`);
const only = (operation: string): ReadableSpan => {
  const found = spans(operation);
  expect(found.map((span) => span.name)).toEqual([`dynamo-cache ${operation}`]);
  return found[0]!;
};

describe('OpenTelemetry spans for cache operations', () => {
  it('get, set and getOrSet: where the answer came from, the lease, and the DynamoDB requests each made', async () => {
    const { cache, tableName } = await db.newCache({ namespace: 'tracing' });
    expect(await cache.get('user:1')).toBeUndefined();
    const miss = only('get');
    expect(miss.attributes).toMatchObject({
      'db.system.name': 'aws.dynamodb',
      'aws.dynamodb.table_names': [tableName],
      'dynamo_cache.operation': 'get',
      'dynamo_cache.namespace': 'tracing',
      'dynamo_cache.source': 'none',
      'dynamo_cache.hit': false,
    });
    // The namespace generation's read, then the key's.
    expect(miss.attributes['dynamo_cache.dynamodb.requests']).toBe(2);
    expect(miss.attributes).not.toHaveProperty('dynamo_cache.failures');
    exporter.reset();

    expect(await cache.set('user:1', { name: 'Ada' })).toBe(true);
    expect(only('set').attributes).toMatchObject({ 'dynamo_cache.operation': 'set', 'dynamo_cache.dynamodb.requests': 1 });
    exporter.reset();

    expect(await cache.get('user:1')).toEqual({ name: 'Ada' });
    expect(only('get').attributes).toMatchObject({ 'dynamo_cache.source': 'memory', 'dynamo_cache.hit': true, 'dynamo_cache.stale': false, 'dynamo_cache.dynamodb.requests': 0 });
    exporter.reset();

    // A miss of getOrSet wins the lease and fetches: read, lease write, value write.
    expect(await cache.getOrSet('user:2', async () => ({ name: 'Grace' }))).toEqual({ name: 'Grace' });
    expect(only('getOrSet').attributes).toMatchObject({ 'dynamo_cache.source': 'fetcher', 'dynamo_cache.hit': false, 'dynamo_cache.lease': 'won', 'dynamo_cache.dynamodb.requests': 3 });
    exporter.reset();

    // Another execution environment reads it from DynamoDB.
    const { cache: other } = await db.newCache({ tableName, namespace: 'tracing' });
    expect(await other.getOrSet('user:2', async () => ({ name: 'never' }))).toEqual({ name: 'Grace' });
    expect(only('getOrSet').attributes).toMatchObject({ 'dynamo_cache.source': 'dynamodb', 'dynamo_cache.hit': true, 'dynamo_cache.dynamodb.requests': 2 });
    expect(only('getOrSet').attributes).not.toHaveProperty('dynamo_cache.lease');
  });

  it('a caller that waits for another environment’s refresh: lease waited; a caller that joins one in flight: coalesced', async () => {
    const { cache: holder, tableName } = await db.newCache();
    const { cache: waiter } = await db.newCache({ tableName });
    let release!: () => void;
    const fetched = new Promise<void>((resolve) => (release = resolve));
    const first = holder.getOrSet('report', async () => {
      await fetched;
      return 'fresh';
    });
    const joiner = holder.getOrSet('report', async () => 'never');
    await expect.poll(() => holder.stats().leaseWins).toBe(1);
    const waiting = waiter.getOrSet('report', async () => 'never', { lease: { waitMs: 5000 } });
    await expect.poll(() => waiter.stats().leaseWaits).toBe(1);
    release();
    expect(await Promise.all([first, joiner, waiting])).toEqual(['fresh', 'fresh', 'fresh']);
    const attributes = spans('getOrSet').map((span) => span.attributes);
    expect(attributes).toHaveLength(3);
    expect(attributes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ 'dynamo_cache.source': 'fetcher', 'dynamo_cache.lease': 'won' }),
        expect.objectContaining({ 'dynamo_cache.source': 'fetcher', 'dynamo_cache.coalesced': true, 'dynamo_cache.dynamodb.requests': 0 }),
        expect.objectContaining({ 'dynamo_cache.source': 'dynamodb', 'dynamo_cache.lease': 'waited', 'dynamo_cache.hit': true }),
      ]),
    );
  });

  it('failures the cache absorbed are named by kind; the operation itself did not fail', async () => {
    const { cache } = await db.newCache({ endpoint: proxy.endpoint, memory: false, timeoutMs: 500, breaker: false });
    await cache.get('warm'); // the namespace generation, read once
    exporter.reset();
    proxy.setFaults({ throttleRate: 1, operations: ['GetItem'] });
    expect(await cache.get('k')).toBeUndefined();
    const span = only('get');
    expect(span.attributes).toMatchObject({ 'dynamo_cache.failures': ['throttle'], 'dynamo_cache.source': 'none', 'dynamo_cache.dynamodb.requests': 3 }); // the first try and two retries
    expect(span.status.code).toBe(0); // UNSET: a miss, not an error
    exporter.reset();

    const { cache: noTable } = await db.newCache({ tableName: 'no-such-table', memory: false, breaker: false });
    expect(await noTable.set('k', 1)).toBe(false);
    expect(only('set').attributes).toMatchObject({ 'dynamo_cache.failures': ['error'] });
  });

  it('an operation that throws ends its span with an error: bad input, or the fetcher’s own error', async () => {
    const { cache } = await db.newCache();
    await expect(cache.get('')).rejects.toThrow();
    expect(only('get')).toMatchObject({ status: { code: 2 }, attributes: expect.objectContaining({ 'error.type': 'InvalidKeyError' }) });
    exporter.reset();
    class UpstreamDown extends Error {
      override name = 'UpstreamDown';
    }
    await expect(cache.getOrSet('k', async () => Promise.reject(new UpstreamDown('503')))).rejects.toThrow('503');
    const span = only('getOrSet');
    expect(span).toMatchObject({ status: { code: 2, message: '503' }, attributes: expect.objectContaining({ 'error.type': 'UpstreamDown' }) });
    expect(span.attributes).not.toHaveProperty('dynamo_cache.source'); // no answer
    expect(span.events.map((event) => event.name)).toEqual(['exception']);
  });

  it('the span is the active one while the operation runs: the fetcher’s spans are its children; the caller’s onResult still runs', async () => {
    const { cache } = await db.newCache();
    const tracer = trace.getTracer('app');
    let inner: Span | undefined;
    const results: CacheResult[] = [];
    await tracer.startActiveSpan('handler', async (handler) => {
      await cache.getOrSet('k', async () => tracer.startActiveSpan('load from upstream', async (span) => ((inner = span), span.end(), 'value')), { onResult: (result) => results.push(result) });
      handler.end();
    });
    const [getOrSet] = spans('getOrSet');
    const handler = exporter.getFinishedSpans().find((span) => span.name === 'handler')!;
    const upstream = exporter.getFinishedSpans().find((span) => span.name === 'load from upstream')!;
    expect(getOrSet!.parentSpanContext?.spanId).toBe(handler.spanContext().spanId);
    expect(upstream.parentSpanContext?.spanId).toBe(getOrSet!.spanContext().spanId);
    expect(inner).toBeDefined();
    expect(results).toEqual([{ key: 'k', source: 'fetcher', fromCache: false }]);
  });

  it('the middleware lookup is a span, with the cache operation under it: the handler ran, then a hit from memory', async () => {
    const { tableName } = await db.newCache();
    const handler = middy(async (event: { id: string }) => ({ id: event.id })).use(dynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint), timeoutMs: 5000, response: { key: 'id' } }));
    await asLambda(handler)({ id: 'a' }, lambdaContext());
    await asLambda(handler)({ id: 'a' }, lambdaContext());
    const lookups = spans('middleware lookup');
    expect(lookups.map((span) => [span.attributes['dynamo_cache.source'], span.attributes['dynamo_cache.hit']])).toEqual([
      ['handler', false],
      ['memory', true],
    ]);
    const acquires = spans('acquire');
    expect(acquires.map((span) => span.parentSpanContext?.spanId)).toEqual(lookups.map((span) => span.spanContext().spanId));
  });

  it('a sampled-out operation records nothing and works as usual', async () => {
    register(false);
    const { cache } = await db.newCache();
    expect(await cache.getOrSet('k', async () => 1)).toBe(1);
    expect(await cache.get('k')).toBe(1);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('without a tracer provider, @opentelemetry/api is never loaded; once one is registered, it is', async () => {
    // A fresh process with the built package, where a module hook records who resolves @opentelemetry/*.
    const script = [
      "import { registerHooks } from 'node:module';",
      'const resolved = [];',
      "registerHooks({ resolve(specifier, context, next) { if (specifier.startsWith('@opentelemetry/')) resolved.push({ specifier, from: context.parentURL?.split('/').slice(-2).join('/') }); return next(specifier, context); } });",
      "const { DynamoCache } = await import('./dist/index.js');",
      `const cache = new DynamoCache({ tableName: ${JSON.stringify(await db.newTable())}, timeoutMs: 5000, clientConfig: ${JSON.stringify(localClientConfig(db.endpoint))} });`,
      "await cache.set('k', 1);",
      "const hit = await cache.get('k');",
      'const before = resolved.splice(0);',
      "const { trace } = await import('@opentelemetry/api');",
      "const { BasicTracerProvider } = await import('@opentelemetry/sdk-trace-base');",
      'trace.setGlobalTracerProvider(new BasicTracerProvider());',
      "await cache.get('k');",
      "const byLibrary = resolved.filter((r) => r.from === 'dist/index.js').map((r) => r.specifier);",
      'console.log(JSON.stringify({ hit, before, byLibrary }));',
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: join(import.meta.dirname, '..') });
    expect(JSON.parse(stdout)).toEqual({ hit: 1, before: [], byLibrary: ['@opentelemetry/api'] });
  });
});

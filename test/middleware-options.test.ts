import middy from '@middy/core';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { dynamoCache, type DynamoCacheContext } from '../src/middleware/dynamo-cache-middleware.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite } from './support/fixtures.ts';
import { httpApiEvent, lambdaContext } from './support/http-events.ts';
import { asLambda, header, json, type Response } from './support/middy-harness.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const db = useDynalite();

/** The error `run` throws. */
function errorOf(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('misspelled middleware options are errors with a suggestion, not silently ignored', () => {
  it.each<[string, () => unknown, RegExp]>([
    ['dynamoCache({ cacheExpiry })', () => dynamoCache({ tableName: 'tbl', cacheExpiry: 60 } as never), /Unknown option "cacheExpiry" in dynamoCache\(\) options; did you mean "defaultTtlSeconds"\?/],
    ['dynamoCache({ contextkey })', () => dynamoCache({ tableName: 'tbl', contextkey: 'c' } as never), /"contextkey".*did you mean "contextKey"/],
    ['dynamoCache({ responses })', () => dynamoCache({ tableName: 'tbl', responses: {} } as never), /"responses".*did you mean "response"/],
    ['dynamoCache({ memory: { maxEntry } })', () => dynamoCache({ tableName: 'tbl', memory: { maxEntry: 10 } } as never), /"maxEntry" in memory; did you mean "maxEntries"/],
    ['{ response: { ttl } }', () => dynamoCache({ tableName: 'tbl', response: { ttl: 60 } as never }), /Unknown option "ttl" in response; did you mean "ttlSeconds"/],
    ['{ response: { varyHeaders } }', () => dynamoCache({ tableName: 'tbl', response: { varyHeaders: ['a'] } as never }), /"varyHeaders" in response; did you mean "vary"/],
    [
      "{ routes: { 'GET /x': { ttl } } }",
      () => dynamoCache({ tableName: 'tbl', response: { routes: { 'GET /x': { ttl: 5 } as never } } }),
      /Unknown option "ttl" in response\.routes\["GET \/x"\]; did you mean "ttlSeconds"/,
    ],
    ['{ statusHeaders: { xcache } }', () => dynamoCache({ tableName: 'tbl', response: { statusHeaders: { xcache: false } as never } }), /"xcache" in response\.statusHeaders; did you mean "xCache"/],
  ])('%s', (_name, run, message) => {
    const error = errorOf(run);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as Error).message).toMatch(message);
  });

  it('typed options stay compile errors in TypeScript (tsc checks this file)', () => {
    // @ts-expect-error: not an option of the middleware
    expect(() => dynamoCache({ tableName: 'tbl', cacheExpiry: 60 })).toThrow(InvalidOptionsError);
    // @ts-expect-error: not an option of `response`
    expect(() => dynamoCache({ tableName: 'tbl', response: { ttl: 60 } })).toThrow(InvalidOptionsError);
    // @ts-expect-error: not an option of a route
    expect(() => dynamoCache({ tableName: 'tbl', response: { routes: { 'GET /x': { ttl: 5 } } } })).toThrow(InvalidOptionsError);
  });

  it('DynamoCache options next to an existing cache are an error: they would be ignored', () => {
    const cache = new DynamoCache({ tableName: 'tbl', logger: new RecordingLogger(), clientConfig: { region: 'us-east-1' } });
    expect(() => dynamoCache({ cache, defaultTtlSeconds: 60 })).toThrow(/defaultTtlSeconds is an option of the DynamoCache: with cache, give it to new DynamoCache\(\)/);
    expect(() => dynamoCache({ cache, tableName: undefined, response: { ttlSeconds: 60 } })).not.toThrow(); // an explicit undefined is absent
  });

  it('onResult must be a function', () => {
    expect(() => dynamoCache({ tableName: 'tbl', onResult: 'log' as never })).toThrow(/onResult must be a function/);
  });
});

describe('an existing cache is recognized by its brand, across copies of the package', () => {
  it('a DynamoCache built with require() (the CommonJS build) is accepted by the ES module build’s dynamoCache({ cache }), and memoizes', async () => {
    const require = createRequire(import.meta.url);
    const cjs = require('../dist/index.cjs') as typeof import('../src/index.ts');
    const esm = (await import('../dist/index.js' as string)) as typeof import('../src/index.ts');
    const cache = new cjs.DynamoCache({ tableName: await db.newTable(), clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger(), timeoutMs: 5000 });
    expect(cache instanceof esm.DynamoCache).toBe(false); // what an instanceof check would have refused
    let runs = 0;
    const handler = middy(async () => json(200, { run: ++runs })).use(esm.dynamoCache({ cache, response: { ttlSeconds: 60 } }));
    const invoke = async () => (await asLambda(handler)(httpApiEvent({ path: '/users/1' }), lambdaContext())) as Response;
    await invoke();
    const second = await invoke();
    expect(header(second, 'X-Cache')).toBe('Hit');
    expect(runs).toBe(1);
  });

  it('anything else is refused', () => {
    expect(() => dynamoCache({ cache: { get() {}, set() {} } as never })).toThrow(/cache must be a DynamoCache/);
  });
});

describe('the cache the middleware creates takes every DynamoCache option', () => {
  it('prefetch: listed keys are read into the memory tier as the middleware is created (INIT), so the first invocation reads them from memory', async () => {
    const { cache: writer, tableName } = await db.newCache();
    await writer.set('feature-flags', { beta: true }, { ttlSeconds: 300 });
    let reads = 0;
    const handler = middy(async (_event: unknown, context: DynamoCacheContext) => {
      await context.cache.ready;
      const before = context.cache.stats().dynamoHits;
      const flags = await context.cache.get('feature-flags');
      reads = context.cache.stats().dynamoHits - before;
      return { flags, memoryHits: context.cache.stats().memoryHits };
    }).use(dynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger(), timeoutMs: 5000, prefetch: ['feature-flags'] }));
    expect(await asLambda(handler)({}, lambdaContext())).toEqual({ flags: { beta: true }, memoryHits: 1 });
    expect(reads).toBe(0);
  });
});

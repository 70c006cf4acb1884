import middy from '@middy/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dynamoCache, type DynamoCacheContext, type DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite, useFaultProxy } from './support/fixtures.ts';
import { httpApiEvent, lambdaContext } from './support/http-events.ts';
import { asLambda, json } from './support/middy-harness.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const db = useDynalite();
const proxy = useFaultProxy(db);

afterEach(() => {
  vi.unstubAllEnvs();
});

/** A function as its unit tests build it: no table configured, DynamoDB behind a proxy that counts requests. */
function unitUnderTest(options: DynamoCacheMiddlewareOptions = {}) {
  const onResult = vi.fn();
  const handler = vi.fn(async (event: { rawPath: string }, context: DynamoCacheContext) => {
    const cached = await context.cache.getOrSet('profile', async () => 'fetched', { deadline: context });
    return json(200, { path: event.rawPath, cached, disabled: context.cache.disabled });
  });
  const wrapped = middy(handler).use(
    dynamoCache({ clientConfig: localClientConfig(proxy.endpoint), logger: new RecordingLogger(), onResult, response: { ttlSeconds: 60 }, ...options }),
  );
  const invoke = (event: unknown) => asLambda(wrapped)(event, lambdaContext());
  return { invoke, handler, onResult };
}

describe.each([
  ['disabled: true', () => unitUnderTest({ disabled: true })],
  ['DYNAMO_CACHE_DISABLED=true', () => (vi.stubEnv('DYNAMO_CACHE_DISABLED', 'true'), unitUnderTest())],
])('the kill switch (%s)', (_name, build) => {
  it('passes every request through: the handler always runs, its response goes out untouched, DynamoDB is never called', async () => {
    const { invoke, handler, onResult } = build();
    const get = httpApiEvent({ path: '/users/1' });
    const responses = [await invoke(get), await invoke(get), await invoke(httpApiEvent({ method: 'POST', path: '/users/1' })), await invoke(get)];
    expect(handler).toHaveBeenCalledTimes(4);
    for (const response of responses) {
      // Exactly the handler's response: no X-Cache, Age or ETag added, no 304.
      expect(response).toEqual(json(200, { path: '/users/1', cached: 'fetched', disabled: true }));
    }
    expect(proxy.count()).toBe(0);
    expect(onResult).not.toHaveBeenCalled();
  });

  it('still refuses bad options, so unit tests catch them', () => {
    expect(() => unitUnderTest({ disabled: true, response: { ttl: 5 } as never })).toThrow(/did you mean "ttlSeconds"/);
  });
});

import type middy from '@middy/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import type { ResponseResult } from '../src/middleware/response-memo.ts';
import { useDynalite } from './support/fixtures.ts';
import { httpApiEvent } from './support/http-events.ts';
import { header, json, setupMiddy, type Handler } from './support/middy-harness.ts';

const db = useDynalite();

afterEach(() => {
  vi.useRealTimers();
});

/** An environment whose `onResult` calls are recorded, with the request each was given. */
async function observed(body: Handler, options: DynamoCacheMiddlewareOptions = {}) {
  const results: Array<{ result: ResponseResult; request: middy.Request }> = [];
  const env = await setupMiddy(db, body, { ...options, onResult: (result, request) => results.push({ result, request }) });
  /** The sources reported since the last call. */
  const sources = () => results.splice(0).map(({ result }) => result.source);
  return { ...env, results, sources };
}

describe('onResult: where each memoized response came from', () => {
  it('handler on a miss, memory on a warm hit, dynamodb for an environment that did not store it; once per request, with the request and the memo key', async () => {
    const tableName = await db.newTable();
    const options = { tableName, response: { ttlSeconds: 60, keyPrefix: 'users-api' } };
    const first = await observed(async () => json(200, { ok: true }), options);
    const event = httpApiEvent({ path: '/users/1' });
    await first.invoke(event);
    await first.invoke(event);
    expect(first.results.map(({ result }) => result)).toEqual([
      { key: expect.stringMatching(/^users-api:http:[0-9a-f]{64}$/), source: 'handler', fromCache: false },
      { key: first.results[0]!.result.key, source: 'memory', fromCache: true },
    ]);
    expect(first.results[1]!.request.event).toBe(event);
    const other = await observed(async () => json(200, { ok: true }), options);
    await other.invoke(event);
    expect(other.sources()).toEqual(['dynamodb']);
  });

  it('a HEAD answered from its GET’s stored response, and a HEAD that found none', async () => {
    const { invoke, sources } = await observed(async () => json(200, { ok: true }));
    await invoke(httpApiEvent({ method: 'HEAD', path: '/doc' }));
    await invoke(httpApiEvent({ path: '/doc' }));
    await invoke(httpApiEvent({ method: 'HEAD', path: '/doc' }));
    expect(sources()).toEqual(['handler', 'handler', 'memory']);
  });

  it('stale: served while another request revalidates, or standing in for a failed handler', async () => {
    let failing = false;
    const { invoke, sources } = await observed(
      async () => {
        if (failing) throw new Error('upstream 429');
        return json(200, { ok: true });
      },
      { memory: false, response: { ttlSeconds: 10, staleIfErrorSeconds: 600 } },
    );
    await invoke(httpApiEvent({ path: '/data' }));
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 60_000);
    failing = true;
    const stale = await invoke(httpApiEvent({ path: '/data' }));
    expect(header(stale, 'X-Cache')).toBe('Hit');
    vi.setSystemTime(Date.now() + 3_600_000); // past every window: the error goes out
    await expect(invoke(httpApiEvent({ path: '/data' }))).rejects.toThrow('upstream 429');
    expect(sources()).toEqual(['handler', 'stale', 'handler']);
  });

  it('stale-while-revalidate: the stale answer says stale', async () => {
    const tableName = await db.newTable();
    const options = { tableName, memory: false as const, lease: { ttlMs: 60_000 }, response: { ttlSeconds: 10, staleWhileRevalidateSeconds: 600 } };
    let release!: () => void;
    const slow = await observed(async () => {
      await new Promise<void>((resolve) => (release = resolve));
      return json(200, { v: 2 });
    }, options);
    const fast = await observed(async () => json(200, { v: 1 }), options);
    await fast.invoke(httpApiEvent({ path: '/feed' }));
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 30_000);
    const refreshing = slow.invoke(httpApiEvent({ path: '/feed' })); // wins the lease and runs its handler
    await vi.waitFor(() => expect(release).toBeTypeOf('function'));
    const answer = await fast.invoke(httpApiEvent({ path: '/feed' }));
    expect(JSON.parse(answer.body)).toEqual({ v: 1 });
    release();
    await refreshing;
    expect(fast.sources()).toEqual(['handler', 'stale']);
    expect(slow.sources()).toEqual(['handler']);
  });

  it('is not called for requests that are not memoized', async () => {
    const { invoke, results } = await observed(async () => json(200, { ok: true }), { response: { routes: { 'GET /health': false } } });
    await invoke(httpApiEvent({ method: 'POST', path: '/users' }));
    await invoke(httpApiEvent({ path: '/health' }));
    await invoke({ source: 'aws.events' }); // a non-HTTP event without a key
    expect(results).toEqual([]);
  });

  it('a hook that throws is logged and changes nothing', async () => {
    const env = await setupMiddy(db, async () => json(200, { ok: true }), {
      onResult: () => {
        throw new Error('metrics backend down');
      },
    });
    const miss = await env.invoke(httpApiEvent({ path: '/x' }));
    const hit = await env.invoke(httpApiEvent({ path: '/x' }));
    expect([miss.statusCode, header(hit, 'X-Cache')]).toEqual([200, 'Hit']);
    expect(env.logger.warnings.map((entry) => entry.fields.errorMessage)).toEqual(['metrics backend down', 'metrics backend down']);
  });
});

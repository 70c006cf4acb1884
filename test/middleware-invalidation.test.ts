// Invalidation on unsafe methods (issue 11, finding 8; RFC 9111 4.4): a 2xx/3xx answer to POST, PUT, PATCH
// or DELETE through the middleware makes every stored GET/HEAD response of its path unreachable, for every
// identity, query and vary variant, in this environment at once and in the others within memory.ttlSeconds.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { useDynalite } from './support/fixtures.ts';
import { HTTP_SOURCES, httpApiEvent, type HttpSource, type RequestSpec } from './support/http-events.ts';
import { header, json, methodOf, setupMiddy, type Handler } from './support/middy-harness.ts';

const db = useDynalite();
const setup = (body: Handler, options: DynamoCacheMiddlewareOptions = {}) => setupMiddy(db, body, options);

afterEach(() => {
  vi.useRealTimers();
});

/** A handler that answers reads with the current version of the item and bumps it on writes (status from `writeStatus`). */
function itemStore(writeStatus = () => 200) {
  let version = 1;
  return async (e: any) => {
    if (methodOf(e) === 'GET' || methodOf(e) === 'HEAD') return json(200, { version }, { Vary: 'Accept-Language' });
    const status = writeStatus();
    if (status < 400) version += 1;
    return json(status, { version });
  };
}

describe.each(Object.keys(HTTP_SOURCES) as HttpSource[])('%s', (source) => {
  const event = (spec: RequestSpec) => HTTP_SOURCES[source]({ route: '/items/{id}', path: '/items/1', ...spec });
  const options = { response: { vary: ['accept-language'] } };
  const variants: RequestSpec[] = [
    {},
    { headers: { authorization: 'Bearer alice' } },
    { headers: { authorization: 'Bearer bob' } },
    { query: 'fields=name' },
    { headers: { 'accept-language': 'fr' } },
  ];

  it.each(['POST', 'PUT', 'PATCH', 'DELETE'])('a successful %s makes every stored variant of its path a miss, HEAD included', async (method) => {
    const { invoke } = await setup(itemStore(), options);
    for (const variant of variants) {
      await invoke(event(variant));
      expect(header(await invoke(event(variant)), 'X-Cache')).toBe('Hit');
    }
    expect(header(await invoke(event({ method: 'HEAD' })), 'X-Cache')).toBe('Hit');
    await invoke(event({ method, headers: { authorization: 'Bearer alice' } }));
    for (const variant of variants) {
      const after = await invoke(event(variant));
      expect(header(after, 'X-Cache'), JSON.stringify(variant)).toBe('Miss');
      expect(JSON.parse(after.body).version).toBe(2);
    }
    expect(header(await invoke(event({ method: 'HEAD' })), 'X-Cache')).toBe('Hit'); // answered from the new GET response
  });

  it('any spelling of the path invalidates it; other paths keep their responses', async () => {
    const { invoke } = await setup(itemStore(), options);
    await invoke(event({}));
    await invoke(event({ path: '/items/2' }));
    await invoke(event({ method: 'PUT', path: '//Items/1/' }));
    expect(header(await invoke(event({})), 'X-Cache')).toBe('Miss');
    expect(header(await invoke(event({ path: '/items/2' })), 'X-Cache')).toBe('Hit');
  });

  it('a 4xx or 5xx answer, or a handler error, invalidates nothing', async () => {
    let status = 409;
    const store = itemStore(() => status);
    const { invoke } = await setup(async (e) => {
      if (status === 0 && methodOf(e) === 'POST') throw new Error('write failed');
      return store(e);
    }, options);
    await invoke(event({}));
    await invoke(event({ method: 'POST' }));
    status = 503;
    await invoke(event({ method: 'POST' }));
    status = 0;
    await expect(invoke(event({ method: 'POST' }))).rejects.toThrow('write failed');
    expect(header(await invoke(event({})), 'X-Cache')).toBe('Hit');
  });

  it('another environment sees the invalidation within memory.ttlSeconds', async () => {
    const tableName = await db.newTable();
    const envOptions = { tableName, memory: { ttlSeconds: 10 }, ...options };
    const writer = await setup(itemStore(), envOptions);
    const reader = await setup(itemStore(), envOptions);
    vi.useFakeTimers({ toFake: ['Date'] });
    await reader.invoke(event({}));
    expect(header(await reader.invoke(event({})), 'X-Cache')).toBe('Hit');
    await writer.invoke(event({ method: 'POST' }));
    vi.setSystemTime(Date.now() + 10_001);
    expect(header(await reader.invoke(event({})), 'X-Cache')).toBe('Miss');
  });
});

describe('the target URI only (RFC 9111 4.4; an outside review)', () => {
  it("a POST to tenant A's domain leaves tenant B's stored GET of the same path; one to B's domain ends it", async () => {
    const { invoke } = await setupMiddy(db, async (e) => json(200, { method: methodOf(e), tenant: e.requestContext.domainName }), { response: { ttlSeconds: 600, shared: true } });
    const tenantB = () => httpApiEvent({ path: '/dashboard', domain: 'tenant-b.example.com' });
    await invoke(tenantB());
    expect(header(await invoke(tenantB()), 'X-Cache')).toBe('Hit');
    await invoke(httpApiEvent({ method: 'POST', path: '/dashboard', domain: 'tenant-a.example.com' }));
    expect(header(await invoke(tenantB()), 'X-Cache')).toBe('Hit');
    await invoke(httpApiEvent({ method: 'POST', path: '/dashboard', domain: 'TENANT-B.example.com' }));
    expect(header(await invoke(tenantB()), 'X-Cache')).toBe('Miss');
  });

  it('with keyByDomain: false a response answers every domain, so an unsafe request on any domain ends it', async () => {
    const { invoke } = await setupMiddy(db, async (e) => json(200, { method: methodOf(e) }), { response: { ttlSeconds: 600, shared: true, keyByDomain: false } });
    await invoke(httpApiEvent({ path: '/dashboard', domain: 'tenant-b.example.com' }));
    await invoke(httpApiEvent({ method: 'POST', path: '/dashboard', domain: 'tenant-a.example.com' }));
    expect(header(await invoke(httpApiEvent({ path: '/dashboard', domain: 'tenant-b.example.com' })), 'X-Cache')).toBe('Miss');
  });
});

describe('an environment new to an invalidated path', () => {
  it('looks up the current generation’s key, not the initial one it tries first, and stores under it', async () => {
    const tableName = await db.newTable();
    const options = { tableName, memory: false as const };
    let version = 1;
    const handler = async (e: any) => (methodOf(e) === 'GET' ? json(200, { version }) : json(200, { version: ++version }));
    const first = await setup(handler, options);
    await first.invoke(httpApiEvent({ path: '/doc' }));
    await first.invoke(httpApiEvent({ path: '/doc', method: 'DELETE' }));
    const fresh = await setup(handler, options);
    const answer = await fresh.invoke(httpApiEvent({ path: '/doc' }));
    expect(JSON.parse(answer.body).version).toBe(2);
    expect(header(answer, 'X-Cache')).toBe('Miss');
    const again = await fresh.invoke(httpApiEvent({ path: '/doc' }));
    expect(header(again, 'X-Cache')).toBe('Hit');
    expect(fresh.handlerSpy).toHaveBeenCalledTimes(1);
  });
});

describe('invalidation options', () => {
  it('invalidateOnUnsafeMethods: false leaves stored responses alone', async () => {
    const { invoke } = await setup(itemStore(), { response: { invalidateOnUnsafeMethods: false, vary: ['accept-language'] } });
    await invoke(HTTP_SOURCES['HTTP API (v2)']({ path: '/items/1' }));
    await invoke(HTTP_SOURCES['HTTP API (v2)']({ path: '/items/1', method: 'POST' }));
    expect(header(await invoke(HTTP_SOURCES['HTTP API (v2)']({ path: '/items/1' })), 'X-Cache')).toBe('Hit');
  });

  it('with DynamoDB failing to record the invalidation, the request still succeeds and a warning is logged', async () => {
    const { invoke, logger } = await setup(itemStore(), { response: { vary: ['accept-language'] }, tableName: 'no-such-table' });
    const response = await invoke(HTTP_SOURCES['HTTP API (v2)']({ path: '/items/1', method: 'POST' }));
    expect(response.statusCode).toBe(200);
    expect(logger.warnings.some((w) => /invalidation not recorded/.test(w.message))).toBe(true);
  });
});

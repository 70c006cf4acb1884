import { ScanCommand } from '@aws-sdk/client-dynamodb';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { dynamoCache, type DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { FAILED_REFRESH_RETRY_MS } from '../src/refresh/coordinator.ts';
import { localClientConfig } from './support/dynalite.ts';
import { FaultProxy } from './support/fault-proxy.ts';
import { useDynalite } from './support/fixtures.ts';
import { HTTP_SOURCES, albEvent, functionUrlEvent, httpApiEvent, lambdaContext, restApiEvent, type HttpSource, type RequestSpec } from './support/http-events.ts';
import { asLambda, header, headerOf, json, setupMiddy, whoIs, type Handler, type Response } from './support/middy-harness.ts';
import { RecordingLogger } from './support/recording-logger.ts';

const db = useDynalite();

afterEach(() => {
  vi.useRealTimers();
});

const setup = (body: Handler, options: DynamoCacheMiddlewareOptions = {}, endpoint = db.endpoint) => setupMiddy(db, body, options, endpoint);

describe.each(Object.keys(HTTP_SOURCES) as HttpSource[])('%s', (source) => {
  const event = (spec: RequestSpec = {}) => HTTP_SOURCES[source]({ route: '/users/{id}', ...spec });

  it('the second identical GET is a hit: the handler ran once, X-Cache and ETag set', async () => {
    let n = 0;
    const { invoke, handlerSpy } = await setup(async () => json(200, { user: 42, n: ++n }));
    const first = await invoke(event({ path: '/users/42', query: 'a=1&b=2' }));
    const second = await invoke(event({ path: '/users/42', query: 'b=2&a=1' }));
    expect(handlerSpy).toHaveBeenCalledTimes(1);
    expect(JSON.parse(second.body)).toEqual({ user: 42, n: 1 });
    expect(header(first, 'X-Cache')).toBe('Miss');
    expect(header(second, 'X-Cache')).toBe('Hit');
    expect(header(second, 'ETag')).toMatch(/^"[\w-]+"$/);
    expect(header(second, 'ETag')).toBe(header(first, 'ETag'));
    expect(header(second, 'Content-Type')).toBe('application/json');
  });

  it('different paths and different query values are different keys', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { path: e.rawPath ?? e.path }));
    await invoke(event({ path: '/users/1' }));
    await invoke(event({ path: '/users/2' }));
    await invoke(event({ path: '/users/1', query: 'page=2' }));
    expect(handlerSpy).toHaveBeenCalledTimes(3);
  });

  it('POST is never cached', async () => {
    const { invoke, handlerSpy } = await setup(async () => json(200, { created: true }));
    await invoke(event({ method: 'POST', path: '/users' }));
    const second = await invoke(event({ method: 'POST', path: '/users' }));
    expect(handlerSpy).toHaveBeenCalledTimes(2);
    expect(header(second, 'X-Cache')).toBeUndefined();
  });

  it('two principals on the same route never see each other’s body', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { me: whoIs(e) }));
    const alice1 = await invoke(event({ path: '/me', principal: 'alice' }));
    const bob1 = await invoke(event({ path: '/me', principal: 'bob' }));
    const alice2 = await invoke(event({ path: '/me', principal: 'alice' }));
    const bob2 = await invoke(event({ path: '/me', principal: 'bob' }));
    const anonymous = await invoke(event({ path: '/me' }));
    expect(JSON.parse(alice1.body).me).toBe('alice');
    expect(JSON.parse(bob1.body).me).toBe('bob');
    expect(JSON.parse(alice2.body).me).toBe('alice');
    expect(JSON.parse(bob2.body).me).toBe('bob');
    expect(JSON.parse(anonymous.body).me).toBe('anonymous');
    expect(header(alice2, 'X-Cache')).toBe('Hit');
    expect(header(bob2, 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(3);
  });

  it('requests with different Authorization headers are keyed apart', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { auth: headerOf(e, 'authorization') }));
    const a = await invoke(event({ path: '/profile', headers: { Authorization: 'Bearer token-a' } }));
    const b = await invoke(event({ path: '/profile', headers: { Authorization: 'Bearer token-b' } }));
    const a2 = await invoke(event({ path: '/profile', headers: { Authorization: 'Bearer token-a' } }));
    expect(JSON.parse(a.body).auth).toBe('Bearer token-a');
    expect(JSON.parse(b.body).auth).toBe('Bearer token-b');
    expect(JSON.parse(a2.body).auth).toBe('Bearer token-a');
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it.each<[string, Partial<Response>]>([
    ['Cache-Control: no-store', { headers: { 'Cache-Control': 'no-store' } }],
    ['Cache-Control: private', { headers: { 'Cache-Control': 'private, max-age=60' } }],
    ['Cache-Control: no-cache', { headers: { 'Cache-Control': 'no-cache' } }],
    ['Cache-Control: max-age=0', { headers: { 'Cache-Control': 'max-age=0' } }],
    ['Set-Cookie', { headers: { 'Set-Cookie': 'session=abc; HttpOnly' } }],
    ['Set-Cookie in multiValueHeaders', { multiValueHeaders: { 'Set-Cookie': ['a=1', 'b=2'] } }],
    ['Vary: *', { headers: { Vary: '*' } }],
    ['Vary on a header not in the key', { headers: { Vary: 'Accept-Language' } }],
  ])('a response with %s is not stored', async (_name, extra) => {
    const { invoke, handlerSpy } = await setup(async () => ({ ...json(200, { ok: true }), ...extra, headers: { ...json(200, {}).headers, ...extra.headers } }));
    await invoke(event());
    const second = await invoke(event());
    expect(handlerSpy).toHaveBeenCalledTimes(2);
    expect(header(second, 'X-Cache')).toBe('Miss');
  });

  it('a 500 is not stored, and neither is a 404 by default', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => json(whoIs(e) === 'anonymous' && (e.rawPath ?? e.path) === '/boom' ? 500 : 404, {}));
    await invoke(event({ path: '/boom' }));
    await invoke(event({ path: '/boom' }));
    await invoke(event({ path: '/missing' }));
    await invoke(event({ path: '/missing' }));
    expect(handlerSpy).toHaveBeenCalledTimes(4);
  });

  it('If-None-Match with the ETag gives 304 with no body, on a hit and on a miss', async () => {
    const { invoke } = await setup(async () => json(200, { big: 'x'.repeat(100) }, { 'Cache-Control': 'max-age=60' }));
    const first = await invoke(event({ path: '/doc' }));
    const etag = header(first, 'ETag')!;
    const hit = await invoke(event({ path: '/doc', headers: { 'If-None-Match': `"other", ${etag}` } }));
    expect(hit.statusCode).toBe(304);
    expect(hit.body).toBe('');
    expect(header(hit, 'ETag')).toBe(etag);
    expect(header(hit, 'Cache-Control')).toBe('max-age=60');
    expect(header(hit, 'Content-Type')).toBeUndefined();
    expect(header(hit, 'X-Cache')).toBe('Hit');
    const { invoke: fresh } = await setup(async () => json(200, { big: 'x'.repeat(100) }));
    const miss = await fresh(event({ path: '/doc', headers: { 'If-None-Match': etag } }));
    expect(miss.statusCode).toBe(304);
    expect(header(miss, 'X-Cache')).toBe('Miss');
    const mismatch = await invoke(event({ path: '/doc', headers: { 'If-None-Match': '"nope"' } }));
    expect(mismatch.statusCode).toBe(200);
  });

  it('Age grows with the time the response has been stored', async () => {
    const { invoke } = await setup(async () => json(200, { v: 1 }));
    vi.useFakeTimers({ toFake: ['Date'] });
    await invoke(event({ path: '/aging' }));
    vi.setSystemTime(Date.now() + 7_000);
    const later = await invoke(event({ path: '/aging' }));
    vi.setSystemTime(Date.now() + 5_000);
    const evenLater = await invoke(event({ path: '/aging' }));
    expect(header(later, 'X-Cache')).toBe('Hit');
    expect(Number(header(later, 'Age'))).toBeGreaterThanOrEqual(7);
    expect(Number(header(evenLater, 'Age'))).toBeGreaterThanOrEqual(12);
    expect(Number(header(evenLater, 'Age'))).toBeLessThan(14);
  });

  it('a route set to false is never cached', async () => {
    const { invoke, handlerSpy } = await setup(async () => json(200, { healthy: true }), {
      response: { routes: { 'GET /health': false } },
    });
    await invoke(event({ path: '/health', route: '/health' }));
    await invoke(event({ path: '/health', route: '/health' }));
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('a handler error is not cached and propagates unchanged', async () => {
    const failure = new Error('database down');
    const { invoke, handlerSpy } = await setup(async () => {
      throw failure;
    });
    await expect(invoke(event())).rejects.toBe(failure);
    await expect(invoke(event())).rejects.toBe(failure);
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('with DynamoDB unreachable every request still gets the handler’s response', async () => {
    const proxy = await FaultProxy.start(db.endpoint);
    try {
      proxy.setFaults({ dropRate: 1 });
      let n = 0;
      const { invoke, handlerSpy, logger } = await setup(async () => json(200, { n: ++n }), { timeoutMs: 200, memory: false }, proxy.endpoint);
      for (let i = 1; i <= 3; i++) {
        const response = await invoke(event({ path: '/down' }));
        expect(response.statusCode).toBe(200);
        expect(JSON.parse(response.body)).toEqual({ n: i });
      }
      expect(handlerSpy).toHaveBeenCalledTimes(3);
      expect(logger.warnings.length).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });
});

describe('context injection', () => {
  it('context.cache is one DynamoCache per execution environment, shared by warm invocations', async () => {
    const seen: DynamoCache[] = [];
    const { invoke } = await setup(
      async (_e, context) => {
        seen.push((context as unknown as { cache: DynamoCache }).cache);
        return { statusCode: 200, body: 'ok' };
      },
      { response: false },
    );
    await invoke(restApiEvent());
    await invoke(restApiEvent());
    expect(seen[0]).toBeInstanceOf(DynamoCache);
    expect(seen[1]).toBe(seen[0]);
  });

  it('the handler can use the injected cache, under a configurable name', async () => {
    const tableName = await db.newTable();
    const handler = middy(async (_event: unknown, context: Context & { tokens: DynamoCache }) => {
      return context.tokens.getOrSet('token', async () => 'fresh-token', { ttlSeconds: 60 });
    }).use(dynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint), contextKey: 'tokens', logger: new RecordingLogger() }));
    expect(await asLambda(handler)({}, lambdaContext())).toBe('fresh-token');
    const reader = new DynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint), logger: new RecordingLogger() });
    expect(await reader.get('token')).toBe('fresh-token');
  });

  it('accepts an existing cache', async () => {
    const { cache } = await db.newCache();
    let seen: unknown;
    const handler = middy(async (_event: unknown, context: Context) => {
      seen = (context as unknown as { cache: DynamoCache }).cache;
    }).use(dynamoCache({ cache }));
    await asLambda(handler)({}, lambdaContext());
    expect(seen).toBe(cache);
  });

  it('refuses bad options at factory time', () => {
    expect(() => dynamoCache({ tableName: 'tbl', contextKey: '' as never })).toThrow(InvalidOptionsError);
    expect(() => dynamoCache({ cache: {} as never })).toThrow(InvalidOptionsError);
    expect(() => dynamoCache({ tableName: 'tbl', response: { statusCodes: [99] } })).toThrow(/statusCodes/);
    expect(() => dynamoCache({ tableName: 'tbl', response: { vary: [''] } })).toThrow(/vary/);
    expect(() => dynamoCache({ tableName: 'tbl', response: { key: 'a.[' } })).toThrow(/JMESPath/);
    expect(() => dynamoCache({ tableName: 'tbl', response: { routes: { 'GET /x': 'yes' as never } } })).toThrow(/routes/);
    for (const name of ['keyByDomain', 'keyByStage', 'invalidateOnUnsafeMethods', 'requireFreshness']) {
      expect(() => dynamoCache({ tableName: 'tbl', response: { [name]: 'yes' } })).toThrow(InvalidOptionsError);
      expect(() => dynamoCache({ tableName: 'tbl', response: { [name]: 'yes' } })).toThrow(name);
    }
    expect(() => dynamoCache({ tableName: 'tbl', response: { credentialHeaders: ['x token'] } })).toThrow(/credentialHeaders/);
    expect(() => dynamoCache({ tableName: 'tbl', response: { statusHeaders: 'on' as never } })).toThrow(/statusHeaders/);
    expect(() => dynamoCache({ tableName: 'tbl', response: { routes: { 'GET /{a+}/b': false } } })).toThrow(/last segment/);
    // An explicit undefined is the default.
    expect(() => dynamoCache({ tableName: 'tbl', contextKey: undefined, response: undefined })).not.toThrow();
  });
});

describe('response memoization rules', () => {
  it('per-route TTL and a shorter s-maxage from the response bound the stored TTL', async () => {
    let n = 0;
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { n: ++n }, e.rawPath === '/short' ? { 'Cache-Control': 's-maxage=2' } : {}), {
      response: { ttlSeconds: 60, routes: { 'GET /users/{id}': { ttlSeconds: 5 } } },
    });
    vi.useFakeTimers({ toFake: ['Date'] });
    await invoke(httpApiEvent({ path: '/users/1', route: '/users/{id}' }));
    await invoke(httpApiEvent({ path: '/short', route: '/short' }));
    vi.setSystemTime(Date.now() + 3_500);
    await invoke(httpApiEvent({ path: '/users/1', route: '/users/{id}' })); // 5 s route TTL: still a hit
    await invoke(httpApiEvent({ path: '/short', route: '/short' })); // s-maxage=2: expired
    expect(handlerSpy).toHaveBeenCalledTimes(3);
    vi.setSystemTime(Date.now() + 3_000);
    await invoke(httpApiEvent({ path: '/users/1', route: '/users/{id}' })); // past 5 s
    expect(handlerSpy).toHaveBeenCalledTimes(4);
  });

  it('shared: true lets principals share a route that answers everyone the same (a public response: RFC 9111 3.5)', async () => {
    const { invoke, handlerSpy } = await setup(async () => json(200, { catalog: ['a', 'b'] }, { 'Cache-Control': 'public' }), {
      response: { routes: { 'GET /catalog': { shared: true } } },
    });
    await invoke(httpApiEvent({ path: '/catalog', route: '/catalog', principal: 'alice' }));
    const bob = await invoke(httpApiEvent({ path: '/catalog', route: '/catalog', principal: 'bob' }));
    expect(header(bob, 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(1);
  });

  it('a response that varies on a header in the key is stored per header value', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { lang: e.headers['accept-language'] }, { Vary: 'Accept-Language' }), {
      response: { vary: ['Accept-Language'] },
    });
    const fr = await invoke(httpApiEvent({ path: '/greeting', headers: { 'accept-language': 'fr' } }));
    const de = await invoke(httpApiEvent({ path: '/greeting', headers: { 'accept-language': 'de' } }));
    const fr2 = await invoke(httpApiEvent({ path: '/greeting', headers: { 'accept-language': 'fr' } }));
    expect([fr, de, fr2].map((r) => JSON.parse(r.body).lang)).toEqual(['fr', 'de', 'fr']);
    expect(header(fr2, 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('a client Cache-Control: no-cache does not bypass the cache unless enabled', async () => {
    const { invoke, handlerSpy } = await setup(async () => json(200, { v: 1 }));
    await invoke(httpApiEvent({ path: '/x' }));
    const bust = await invoke(httpApiEvent({ path: '/x', headers: { 'cache-control': 'no-cache' } }));
    expect(header(bust, 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(1);
    const honoring = await setup(async () => json(200, { v: 1 }), { response: { honorClientNoCache: true } });
    await honoring.invoke(httpApiEvent({ path: '/x' }));
    const refreshed = await honoring.invoke(httpApiEvent({ path: '/x', headers: { 'cache-control': 'no-cache' } }));
    expect(header(refreshed, 'X-Cache')).toBe('Miss');
    expect(honoring.handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('a HEAD is answered from its GET’s stored response without content, and follows its GET route options', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => ({ statusCode: 200, body: e.httpMethod === 'HEAD' ? '' : 'full body' }), {
      response: { routes: { 'GET /off': false } },
    });
    const get = await invoke(restApiEvent({ path: '/page' }));
    const head = await invoke(restApiEvent({ method: 'HEAD', path: '/page' }));
    expect(get.body).toBe('full body');
    expect(head.body).toBe('');
    expect(header(head, 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(1);
    await invoke(restApiEvent({ method: 'HEAD', path: '/off', route: '/off' }));
    await invoke(restApiEvent({ method: 'GET', path: '/off', route: '/off' }));
    const headOff = await invoke(restApiEvent({ method: 'HEAD', path: '/off', route: '/off' }));
    expect(header(headOff, 'X-Cache')).toBeUndefined();
    expect(handlerSpy).toHaveBeenCalledTimes(4);
  });

  it('an HTTP API handler returning a plain object is memoized as the 200 JSON response API Gateway infers', async () => {
    const { invoke, handlerSpy } = await setup(async () => ({ items: [1, 2, 3] }));
    const first = await invoke(httpApiEvent({ path: '/items' }));
    const second = await invoke(httpApiEvent({ path: '/items' }));
    expect(first).toMatchObject({ statusCode: 200, body: '{"items":[1,2,3]}' });
    expect(header(second, 'content-type')).toBe('application/json');
    expect(header(second, 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(1);
  });

  it('v2 cookies in the response prevent storing', async () => {
    const { invoke, handlerSpy } = await setup(async () => ({ ...json(200, {}), cookies: ['session=1'] }));
    await invoke(httpApiEvent({ path: '/login' }));
    await invoke(httpApiEvent({ path: '/login' }));
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('ALB multi-value mode: headers are added in multiValueHeaders', async () => {
    const { invoke } = await setup(async () => ({ statusCode: 200, multiValueHeaders: { 'content-type': ['text/plain'] }, body: 'hi' }));
    const event = { ...albEvent({ path: '/mv' }), multiValueHeaders: { accept: ['*/*'] } };
    await invoke(event);
    const hit = await invoke(event);
    expect(hit.multiValueHeaders['X-Cache']).toEqual(['Hit']);
    expect(hit.headers).toBeUndefined();
  });

  it('a streamed response passes through unmemoized', async () => {
    const { invoke, handlerSpy } = await setup(async () => ({ statusCode: 200, body: Readable.from(['a', 'b']) }));
    const first = await invoke(httpApiEvent({ path: '/stream' }));
    expect(first.body).toBeInstanceOf(Readable);
    await invoke(httpApiEvent({ path: '/stream' }));
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('a corrupt stored response falls back to running the handler', async () => {
    const { invoke, handlerSpy, tableName, logger } = await setup(async () => json(200, { ok: true }), { memory: false, response: { keyPrefix: 'p' } });
    await invoke(httpApiEvent({ path: '/users/42' }));
    const [stored] = (await db.client.send(new ScanCommand({ TableName: tableName }))).Items!.map((item) => item.id!.S!).filter((key) => key.startsWith('p:http:'));
    const writer = new DynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint), memory: false, logger });
    await writer.set(stored!, { v: 1, kind: 'http', response: { statusCode: 200, headers: 'not-an-object' }, storedAt: 0, age: 0, ttlSeconds: 60 });
    const response = await invoke(httpApiEvent({ path: '/users/42' }));
    expect(JSON.parse(response.body)).toEqual({ ok: true });
    expect(handlerSpy).toHaveBeenCalledTimes(2);
    expect(logger.warnings.some((w) => /unexpected shape/.test(w.message))).toBe(true);
  });

  it('functions sharing a table and namespace never share responses (key prefix = function name)', async () => {
    const tableName = await db.newTable();
    const a = await setup(async () => json(200, { from: 'a' }), { tableName });
    const b = await setup(async () => json(200, { from: 'b' }), { tableName });
    await a.invoke(httpApiEvent({ path: '/same' }), lambdaContext('fn-a'));
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'fn-b';
    try {
      const other = await setup(async () => json(200, { from: 'b' }), { tableName });
      const resp = await other.invoke(httpApiEvent({ path: '/same' }), lambdaContext('fn-b'));
      expect(JSON.parse(resp.body).from).toBe('b');
    } finally {
      delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    }
    expect(b.handlerSpy).not.toHaveBeenCalled();
  });

  it('two concurrent invocations in one environment keep their own keys and responses', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => {
      // The first request finishes last, so its plan must survive the second request's before and after.
      await new Promise((resolve) => setTimeout(resolve, e.rawPath === '/slow' ? 150 : 10));
      return json(200, { path: e.rawPath });
    });
    const [slow, fast] = await Promise.all([invoke(httpApiEvent({ path: '/slow' })), invoke(httpApiEvent({ path: '/fast' }))]);
    expect(JSON.parse(slow.body).path).toBe('/slow');
    expect(JSON.parse(fast.body).path).toBe('/fast');
    const [slow2, fast2] = await Promise.all([invoke(httpApiEvent({ path: '/slow' })), invoke(httpApiEvent({ path: '/fast' }))]);
    expect(JSON.parse(slow2.body).path).toBe('/slow');
    expect(JSON.parse(fast2.body).path).toBe('/fast');
    expect([header(slow2, 'X-Cache'), header(fast2, 'X-Cache')]).toEqual(['Hit', 'Hit']);
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });
});

describe('non-HTTP events', () => {
  const orderEvent = (orderId: string, requestId = `${Math.random()}`) => ({ source: 'orders', detail: { orderId, requestId } });

  it('a JMESPath key memoizes a non-HTTP event', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => ({ priced: e.detail.orderId, at: Math.random() }), {
      response: { key: 'detail.orderId' },
    });
    const first = await invoke(orderEvent('o-1'));
    const second = await invoke(orderEvent('o-1'));
    const other = await invoke(orderEvent('o-2'));
    expect(second).toEqual(first);
    expect(other.priced).toBe('o-2');
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('a key function returning undefined skips memoization for that event', async () => {
    const { invoke, handlerSpy } = await setup(async () => 'done', {
      response: { key: (event) => ((event as { detail?: { orderId?: string } }).detail?.orderId === 'skip' ? undefined : 'fixed') },
    });
    await invoke(orderEvent('skip'));
    await invoke(orderEvent('skip'));
    await invoke(orderEvent('x'));
    await invoke(orderEvent('y'));
    expect(handlerSpy).toHaveBeenCalledTimes(3);
  });

  it('a JMESPath expression that finds nothing skips memoization', async () => {
    const { invoke, handlerSpy } = await setup(async () => 'done', { response: { key: 'detail.missing' } });
    await invoke(orderEvent('a'));
    await invoke(orderEvent('a'));
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('without a key, non-HTTP events are not memoized', async () => {
    const { invoke, handlerSpy } = await setup(async () => 'done');
    await invoke(orderEvent('a'));
    await invoke(orderEvent('a'));
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('a JMESPath key over an HTTP event still keys by principal', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { me: whoIs(e) }), { response: { key: 'pathParameters.id' } });
    await invoke(restApiEvent({ path: '/users/7', principal: 'alice' }));
    const bob = await invoke(restApiEvent({ path: '/users/7', principal: 'bob' }));
    expect(JSON.parse(bob.body).me).toBe('bob');
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });
});

describe('Function URL and ALB query strings: names in another order share a key, other spellings do not', () => {
  it('sorts names, and keeps each spelling as the handler receives it (undecoded there)', async () => {
    const { invoke, handlerSpy } = await setup(async () => json(200, { ok: 1 }));
    await invoke(albEvent({ path: '/search', query: 'q=caf%C3%A9&x=1' }));
    expect(header(await invoke(albEvent({ path: '/search', query: 'x=1&q=caf%C3%A9' })), 'X-Cache')).toBe('Hit');
    // ALB hands the handler the parameters as the client spelled them: a lower-case escape is another request.
    expect(header(await invoke({ ...albEvent({ path: '/search' }), queryStringParameters: { x: '1', q: 'caf%c3%a9' } }), 'X-Cache')).toBe('Miss');
    await invoke(functionUrlEvent({ path: '/search', query: 'q=a%20b' }));
    expect(header(await invoke(functionUrlEvent({ path: '/search', query: 'q=a+b' })), 'X-Cache')).toBe('Miss');
    expect(handlerSpy).toHaveBeenCalledTimes(4);
  });
});

describe('thundering herds and failing handlers', () => {
  it('20 environments receiving the same GET at once run the handler once (the lease)', async () => {
    const tableName = await db.newTable();
    let runs = 0;
    const handlers = await Promise.all(
      Array.from({ length: 20 }, () =>
        setup(async () => {
          runs += 1;
          await new Promise((resolve) => setTimeout(resolve, 100));
          return json(200, { run: runs });
        }, { tableName }),
      ),
    );
    const responses = await Promise.all(handlers.map(({ invoke }) => invoke(httpApiEvent({ path: '/popular' }))));
    expect(runs).toBe(1);
    expect(new Set(responses.map((r) => r.body))).toEqual(new Set(['{"run":1}']));
  });

  it('stale-if-error: a handler that throws, or answers 503, is replaced by the stale response within the window', async () => {
    let mode: 'ok' | 'throw' | '503' = 'ok';
    const { invoke, handlerSpy } = await setup(
      async () => {
        if (mode === 'throw') throw new Error('upstream 429');
        return mode === '503' ? json(503, { error: 'unavailable' }) : json(200, { data: 'good' });
      },
      { memory: false, response: { ttlSeconds: 10, staleIfErrorSeconds: 300 } },
    );
    vi.useFakeTimers({ toFake: ['Date'] });
    await invoke(httpApiEvent({ path: '/data' }));
    vi.setSystemTime(Date.now() + 60_000);
    mode = 'throw';
    const afterThrow = await invoke(httpApiEvent({ path: '/data' }));
    expect(afterThrow.statusCode).toBe(200);
    expect(JSON.parse(afterThrow.body)).toEqual({ data: 'good' });
    expect(Number(header(afterThrow, 'Age'))).toBeGreaterThanOrEqual(60);
    vi.setSystemTime(Date.now() + 2 * FAILED_REFRESH_RETRY_MS); // a failed refresh leaves the upstream alone this long
    mode = '503';
    const after503 = await invoke(httpApiEvent({ path: '/data' }));
    expect(JSON.parse(after503.body)).toEqual({ data: 'good' });
    vi.setSystemTime(Date.now() + 300_000); // past the stale-if-error window
    mode = 'throw';
    await expect(invoke(httpApiEvent({ path: '/data' }))).rejects.toThrow('upstream 429');
    mode = '503';
    expect((await invoke(httpApiEvent({ path: '/data' }))).statusCode).toBe(503);
    expect(handlerSpy).toHaveBeenCalledTimes(5);
  });

  it('stale-while-revalidate: one request refreshes, the others get the stale response at once', async () => {
    const tableName = await db.newTable();
    let version = 1;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const handlers = await Promise.all(
      Array.from({ length: 10 }, () =>
        setup(async () => {
          if (version > 1) await gate;
          return json(200, { version });
        }, { tableName, memory: false, response: { ttlSeconds: 10, staleWhileRevalidateSeconds: 600 } }),
      ),
    );
    vi.useFakeTimers({ toFake: ['Date'] });
    await handlers[0]!.invoke(httpApiEvent({ path: '/feed' }));
    vi.setSystemTime(Date.now() + 30_000);
    version = 2;
    let stale = 0;
    const responses = await Promise.all(
      handlers.map(async ({ invoke }) => {
        const response = await invoke(httpApiEvent({ path: '/feed' }));
        if (JSON.parse(response.body).version === 1 && ++stale === 9) openGate();
        return JSON.parse(response.body).version;
      }),
    );
    expect(responses.filter((v) => v === 1)).toHaveLength(9);
    expect(responses.filter((v) => v === 2)).toHaveLength(1);
    expect(handlers.reduce((n, h) => n + h.handlerSpy.mock.calls.length, 0)).toBe(2);
  });

  it('a must-revalidate response is never served stale', async () => {
    let fail = false;
    const { invoke } = await setup(
      async () => {
        if (fail) throw new Error('down');
        return json(200, { v: 1 }, { 'Cache-Control': 'max-age=10, must-revalidate' });
      },
      { memory: false, response: { ttlSeconds: 10, staleIfErrorSeconds: 300, staleWhileRevalidateSeconds: 300 } },
    );
    vi.useFakeTimers({ toFake: ['Date'] });
    await invoke(httpApiEvent({ path: '/strict' }));
    vi.setSystemTime(Date.now() + 20_000);
    fail = true;
    await expect(invoke(httpApiEvent({ path: '/strict' }))).rejects.toThrow('down');
  });

  it('a response that is not stored (no-store) leaves nothing the next requests read as unreadable (issue 11, finding 12)', async () => {
    const caches = new Set<DynamoCache>();
    const tableName = await db.newTable();
    const environments = await Promise.all(
      [0, 1].map(() =>
        setup(
          async (_e, context) => {
            caches.add((context as unknown as { cache: DynamoCache }).cache);
            return json(200, { at: Math.random() }, { 'Cache-Control': 'no-store' });
          },
          { tableName, memory: false },
        ),
      ),
    );
    // Ten requests within a lease's lifetime (3 s), from two environments, one after another and two at once.
    for (let i = 0; i < 4; i++) {
      for (const { invoke } of environments) await invoke(httpApiEvent({ path: '/live' }));
    }
    await Promise.all(environments.map(({ invoke }) => invoke(httpApiEvent({ path: '/live' }))));
    expect(environments.reduce((runs, { handlerSpy }) => runs + handlerSpy.mock.calls.length, 0)).toBe(10);
    for (const { logger } of environments) expect(logger.warnings.filter((entry) => /unreadable/.test(entry.message))).toEqual([]);
    expect([...caches].map((cache) => cache.stats())).toEqual([expect.objectContaining({ corruptItems: 0, errors: 0 }), expect.objectContaining({ corruptItems: 0, errors: 0 })]);
  });

  it('a handler error gives the lease back at once, so the next request does not wait for it to expire', async () => {
    let fail = true;
    const { invoke } = await setup(
      async () => {
        if (fail) throw new Error('boom');
        return json(200, { ok: true });
      },
      { lease: { ttlMs: 60_000, waitMs: 10_000 } },
    );
    await expect(invoke(httpApiEvent({ path: '/flaky' }))).rejects.toThrow('boom');
    fail = false;
    const started = performance.now();
    const response = await invoke(httpApiEvent({ path: '/flaky' }));
    expect(response.statusCode).toBe(200);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

// Responses invalidated from any function (issue 21): memoized responses carry their path's and route's tags
// (whatever the keyPrefix), the route's own tags and the handler's Cache-Tag / Surrogate-Key; an unsafe request
// invalidates its path and what its `invalidates` rule names; invalidateRoutes and invalidateTags do the same
// from plain code.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DynamoCache } from '../src/cache.ts';
import { InvalidOptionsError } from '../src/errors.ts';
import { dynamoCache, invalidateRoutes, type DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { localClientConfig } from './support/dynalite.ts';
import { useDynalite } from './support/fixtures.ts';
import { HTTP_SOURCES, httpApiEvent, restApiEvent, type HttpSource, type RequestSpec } from './support/http-events.ts';
import { header, json, methodOf, pathOf, setupMiddy, type Handler } from './support/middy-harness.ts';

const db = useDynalite();

afterEach(() => {
  vi.useRealTimers();
});

/** The users API: GET /users, GET /users/{id} (with the user's version), GET /teams/{id} (tagged by its members); PUT bumps a user. */
function usersApi() {
  const versions = new Map<string, number>();
  const handler: Handler = async (e) => {
    const path = pathOf(e);
    const id = path.split('/').pop()!;
    if (methodOf(e) === 'PUT') {
      versions.set(id, (versions.get(id) ?? 1) + 1);
      return json(200, { id, version: versions.get(id) });
    }
    if (path.startsWith('/teams/')) return json(200, { team: id, members: ['42', '7'] }, { 'Cache-Tag': 'user:42, user:7', 'Surrogate-Key': `team:${id}` });
    if (path === '/users') return json(200, { users: [...versions.entries()] });
    return json(200, { id, version: versions.get(id) ?? 1 });
  };
  return handler;
}

/** Two functions on one table and namespace, as in a SAM application: GET (keyPrefix users-get) and PUT (keyPrefix users-put), each its own environment. */
async function twoFunctions(put: DynamoCacheMiddlewareOptions['response'] = {}, get: DynamoCacheMiddlewareOptions['response'] = {}) {
  const tableName = await db.newTable();
  const api = usersApi();
  const reader = await setupMiddy(db, api, { tableName, memory: { ttlSeconds: 10 }, response: { keyPrefix: 'users-get', ttlSeconds: 300, ...get } });
  const writer = await setupMiddy(db, api, { tableName, memory: { ttlSeconds: 10 }, response: { keyPrefix: 'users-put', ...put } });
  return { tableName, reader, writer };
}

const get = (path: string, route = path, spec: RequestSpec = {}) => httpApiEvent({ path, route, ...spec });
const cacheStatus = async (invoke: (event: unknown) => Promise<any>, event: unknown) => header(await invoke(event), 'X-Cache');

/** Warms the reader with `paths` (a miss, then a hit each), then lets the reader's environment see changes made elsewhere. */
async function warm(reader: { invoke: (event: unknown) => Promise<any> }, events: unknown[]) {
  for (const event of events) {
    await reader.invoke(event);
    expect(await cacheStatus(reader.invoke, event)).toBe('Hit');
  }
}

const afterMemoryTtl = () => vi.setSystemTime(Date.now() + 10_001);

describe('a PUT through one function invalidates another function’s GET responses (different keyPrefix)', () => {
  it('by route: its own path, and the routes its invalidates rule names (the same id, and a list)', async () => {
    const { reader, writer } = await twoFunctions({ invalidates: { 'PUT /users/{id}': ['GET /users/{id}', 'GET /users'] } });
    const user42 = get('/users/42', '/users/{id}');
    const user7 = get('/users/7', '/users/{id}');
    const list = get('/users');
    vi.useFakeTimers({ toFake: ['Date'] });
    await warm(reader, [user42, user7, list]);
    await writer.invoke(httpApiEvent({ method: 'PUT', path: '/users/42', route: '/users/{id}' }));
    afterMemoryTtl();
    const after = await reader.invoke(user42);
    expect([header(after, 'X-Cache'), JSON.parse(after.body).version]).toEqual(['Miss', 2]);
    expect(await cacheStatus(reader.invoke, list)).toBe('Miss');
    expect(await cacheStatus(reader.invoke, user7)).toBe('Hit');
  });

  it('on every event source, with no rule at all: the path an unsafe request succeeds on', async () => {
    for (const source of Object.keys(HTTP_SOURCES) as HttpSource[]) {
      const { reader, writer } = await twoFunctions();
      const event = (spec: RequestSpec) => HTTP_SOURCES[source]({ path: '/users/42', route: '/users/{id}', ...spec });
      vi.useFakeTimers({ toFake: ['Date'] });
      await warm(reader, [event({}), event({ headers: { authorization: 'Bearer alice' } })]);
      await writer.invoke(event({ method: 'PUT', path: '/Users/42/' }));
      afterMemoryTtl();
      expect(await cacheStatus(reader.invoke, event({})), source).toBe('Miss');
      expect(await cacheStatus(reader.invoke, event({ headers: { authorization: 'Bearer alice' } })), source).toBe('Miss');
      vi.useRealTimers();
    }
  });

  it('by tag: the route’s tag templates and the handler’s Cache-Tag / Surrogate-Key, named by the PUT’s rule', async () => {
    const { reader, writer } = await twoFunctions(
      { invalidates: { 'PUT /users/{id}': { tags: ['user:{id}'] } }, invalidateOnUnsafeMethods: false },
      { routes: { 'GET /users/{id}': { tags: ['user:{id}'] } } },
    );
    const user42 = get('/users/42', '/users/{id}');
    const user7 = get('/users/7', '/users/{id}');
    const team = get('/teams/1', '/teams/{id}');
    const team2 = get('/teams/2', '/teams/{id}');
    vi.useFakeTimers({ toFake: ['Date'] });
    await warm(reader, [user42, user7, team]);
    await writer.invoke(httpApiEvent({ method: 'PUT', path: '/users/7', route: '/users/{id}' }));
    afterMemoryTtl();
    expect(await cacheStatus(reader.invoke, user7)).toBe('Miss');
    expect(await cacheStatus(reader.invoke, team)).toBe('Miss'); // its Cache-Tag lists user:7
    expect(await cacheStatus(reader.invoke, user42)).toBe('Hit');
    await reader.invoke(team2);
    // The Surrogate-Key tag, from plain code sharing the table and namespace.
    const { cache } = await db.newCache({ tableName: reader.tableName });
    expect(await cache.invalidateTags(['team:2'])).toBe(true);
    afterMemoryTtl();
    expect(await cacheStatus(reader.invoke, team2)).toBe('Miss');
    expect(await cacheStatus(reader.invoke, team)).toBe('Hit');
  });

  it('from plain code: invalidateRoutes by path, and a whole route by its pattern', async () => {
    const { reader } = await twoFunctions();
    const { cache } = await db.newCache({ tableName: reader.tableName });
    const user42 = get('/users/42', '/users/{id}');
    const user7 = get('/users/7', '/users/{id}');
    const list = get('/users');
    vi.useFakeTimers({ toFake: ['Date'] });
    await warm(reader, [user42, user7, list]);
    expect(await invalidateRoutes(cache, ['GET /users/42'])).toBe(true);
    afterMemoryTtl();
    expect(await cacheStatus(reader.invoke, user42)).toBe('Miss');
    expect(await cacheStatus(reader.invoke, user7)).toBe('Hit');
    expect(await invalidateRoutes(cache, ['/users/{userId}'])).toBe(true);
    afterMemoryTtl();
    expect(await cacheStatus(reader.invoke, user7)).toBe('Miss');
    expect(await cacheStatus(reader.invoke, user42)).toBe('Miss');
    expect(await cacheStatus(reader.invoke, list)).toBe('Hit');
  });

  it('a route template reaches responses behind a base path mapping or a stage prefix, and behind a catch-all route', async () => {
    const { reader } = await twoFunctions({}, { routes: { 'GET /users/{id}': {} } });
    const { cache } = await db.newCache({ tableName: reader.tableName });
    const mapped = restApiEvent({ path: '/users/42', route: '/users/{id}', basePath: '/v1' });
    const staged = httpApiEvent({ path: '/prod/users/42', route: '/users/{id}', stage: 'prod' });
    const proxied = httpApiEvent({ path: '/users/42', route: '/{proxy+}' });
    vi.useFakeTimers({ toFake: ['Date'] });
    await warm(reader, [mapped, staged, proxied]);
    expect(await invalidateRoutes(cache, ['GET /users/42'])).toBe(true);
    afterMemoryTtl();
    for (const event of [mapped, staged, proxied]) expect(await cacheStatus(reader.invoke, event)).toBe('Miss');
    await warm(reader, [proxied]);
    expect(await invalidateRoutes(cache, ['GET /users/{id}'])).toBe(true); // the configured route, matched by the path
    afterMemoryTtl();
    expect(await cacheStatus(reader.invoke, proxied)).toBe('Miss');
  });

  it('a failed PUT invalidates nothing', async () => {
    const { reader, tableName } = await twoFunctions();
    const failing = await setupMiddy(db, async () => json(409, { error: 'conflict' }), { tableName, response: { keyPrefix: 'users-put', invalidates: { 'PUT /users/{id}': ['GET /users'] } } });
    vi.useFakeTimers({ toFake: ['Date'] });
    await warm(reader, [get('/users/42', '/users/{id}'), get('/users')]);
    await failing.invoke(httpApiEvent({ method: 'PUT', path: '/users/42', route: '/users/{id}' }));
    afterMemoryTtl();
    expect(await cacheStatus(reader.invoke, get('/users/42', '/users/{id}'))).toBe('Hit');
    expect(await cacheStatus(reader.invoke, get('/users'))).toBe('Hit');
  });
});

describe('from a DynamoDB Streams consumer of the application’s table (examples/stream-invalidation)', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  /** The example as Lambda runs it: configured by the environment, on this file's dynalite. */
  async function streamConsumer(tableName: string) {
    vi.stubEnv('DYNAMO_CACHE_TABLE', tableName);
    vi.stubEnv('AWS_ENDPOINT_URL_DYNAMODB', db.endpoint);
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'local');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'local');
    // @ts-expect-error: plain JavaScript, as deployed with the layer (it imports the built package by its name)
    const { handler } = (await import('../examples/stream-invalidation/index.mjs')) as { handler: (event: unknown) => Promise<void> };
    return handler;
  }

  const change = (pk: string, sequence: string) => ({ eventName: 'MODIFY', eventSource: 'aws:dynamodb', dynamodb: { Keys: { pk: { S: pk }, sk: { S: 'PROFILE' } }, SequenceNumber: sequence } });

  it('a changed user item invalidates its tagged values and its memoized responses in every function', async () => {
    const { reader, tableName } = await twoFunctions();
    const { cache } = await db.newCache({ tableName, memory: { ttlSeconds: 10 } });
    await cache.set('profile:42', { name: 'Ada' }, { tags: ['user:42'] });
    await cache.set('profile:7', { name: 'Grace' }, { tags: ['user:7'] });
    const handler = await streamConsumer(tableName);
    vi.useFakeTimers({ toFake: ['Date'] });
    await warm(reader, [get('/users/42', '/users/{id}'), get('/users/7', '/users/{id}'), get('/users')]);
    await handler({ Records: [change('USER#42', '100'), change('ORDER#9', '101')] });
    afterMemoryTtl();
    expect(await cacheStatus(reader.invoke, get('/users/42', '/users/{id}'))).toBe('Miss');
    expect(await cacheStatus(reader.invoke, get('/users'))).toBe('Miss');
    expect(await cacheStatus(reader.invoke, get('/users/7', '/users/{id}'))).toBe('Hit');
    expect(await cache.get('profile:42')).toBeUndefined();
    expect(await cache.get('profile:7')).toEqual({ name: 'Grace' });
  });

  it('a batch whose invalidation cannot be recorded fails, for Lambda to retry it', async () => {
    const handler = await streamConsumer('no-such-table');
    await expect(handler({ Records: [change('USER#42', '100'), change('ORDER#9', '101')] })).rejects.toThrow('1 of 2 invalidations not recorded; the batch is retried');
  });
});

describe('soft purge of responses', () => {
  it('a rule with mode: stale: the stale response is answered while exactly one environment runs the handler', async () => {
    const tableName = await db.newTable();
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const report: Handler = async () => {
      runs += 1;
      if (runs > 1) await gate;
      return json(200, { run: runs });
    };
    const options = { tableName, memory: false as const, response: { keyPrefix: 'reports', ttlSeconds: 300, staleWhileRevalidateSeconds: 60 } };
    const seeder = await setupMiddy(db, report, options);
    const readers = await Promise.all(Array.from({ length: 8 }, () => setupMiddy(db, report, options)));
    const writer = await setupMiddy(db, async () => json(204, {}), {
      tableName,
      response: { keyPrefix: 'writer', invalidateOnUnsafeMethods: false, invalidates: { 'POST /reports/{id}': { routes: ['GET /reports/{id}'], mode: 'stale' } } },
    });
    const event = httpApiEvent({ path: '/reports/1', route: '/reports/{id}' });
    await seeder.invoke(event);
    await writer.invoke(httpApiEvent({ method: 'POST', path: '/reports/1', route: '/reports/{id}' }));
    let answered = 0;
    const answers = readers.map((env) => env.invoke(event).finally(() => (answered += 1)));
    // Seven are answered while the eighth, the lease winner, is still held in its handler.
    await vi.waitFor(() => expect(answered).toBe(7), { timeout: 30_000, interval: 20 });
    expect(runs).toBe(2);
    release();
    const responses = await Promise.all(answers);
    expect(runs).toBe(2);
    expect(responses.map((r) => JSON.parse(r.body).run).sort()).toEqual([1, 1, 1, 1, 1, 1, 1, 2]);
    expect(responses.filter((r) => header(r, 'X-Cache') === 'Hit')).toHaveLength(7);
  });
});

describe('tag fields in responses', () => {
  it('Cache-Tag and Surrogate-Key are taken out of what clients get (and of the stored copy) by default', async () => {
    const { invoke } = await setupMiddy(db, usersApi());
    const miss = await invoke(get('/teams/1', '/teams/{id}'));
    const hit = await invoke(get('/teams/1', '/teams/{id}'));
    for (const response of [miss, hit]) {
      expect(header(response, 'Cache-Tag')).toBeUndefined();
      expect(header(response, 'Surrogate-Key')).toBeUndefined();
    }
    expect(header(hit, 'X-Cache')).toBe('Hit');
  });

  it('removeTagHeaders: false passes them on (to a CDN in front), and they are still the stored response’s tags', async () => {
    const kept = await setupMiddy(db, usersApi(), { memory: { ttlSeconds: 10 }, response: { removeTagHeaders: false } });
    vi.useFakeTimers({ toFake: ['Date'] });
    expect(header(await kept.invoke(get('/teams/1', '/teams/{id}')), 'Cache-Tag')).toBe('user:42, user:7');
    const hit = await kept.invoke(get('/teams/1', '/teams/{id}'));
    expect([header(hit, 'X-Cache'), header(hit, 'Surrogate-Key')]).toEqual(['Hit', 'team:1']);
    const { cache } = await db.newCache({ tableName: kept.tableName });
    await cache.invalidateTags(['team:1']);
    afterMemoryTtl();
    expect(await cacheStatus(kept.invoke, get('/teams/1', '/teams/{id}'))).toBe('Miss');
  });

  it('a response listing a tag that cannot be stored is not memoized (it could not be invalidated by it)', async () => {
    const { invoke, handlerSpy } = await setupMiddy(db, async () => json(200, { ok: true }, { 'Cache-Tag': `ok, ${'x'.repeat(300)}` }));
    await invoke(get('/x'));
    expect(await cacheStatus(invoke, get('/x'))).toBe('Miss');
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('a tags function of the event; a keyed non-HTTP event carries response.tags too', async () => {
    const tableName = await db.newTable();
    const { invoke } = await setupMiddy(db, async (e) => ({ order: e.orderId }), {
      tableName,
      response: { key: 'orderId', tags: (event) => [`order:${(event as { orderId: string }).orderId}`] },
    });
    await invoke({ orderId: 'o-1' });
    const { cache } = await db.newCache({ tableName });
    await cache.invalidateTags(['order:o-1']);
    const fresh = await setupMiddy(db, async (e) => ({ order: e.orderId, again: true }), { tableName, response: { key: 'orderId', tags: (event) => [`order:${(event as { orderId: string }).orderId}`] } });
    expect(await fresh.invoke({ orderId: 'o-1' })).toEqual({ order: 'o-1', again: true });
  });
});

describe('responses of earlier versions', () => {
  it('a response stored under the previous key layout (with its path generation) is never read: a clean miss', async () => {
    const tableName = await db.newTable();
    const { invoke, handlerSpy } = await setupMiddy(db, async () => json(200, { from: 'handler' }), { tableName, response: { keyPrefix: 'legacy' } });
    const event = httpApiEvent({ path: '/legacy' });
    const { domainName, stage } = event.requestContext;
    const layout2 = ['dynamo-cache/memo/2', 'legacy', 'GET', domainName, stage, '0', ['url', '/legacy', []], [], []];
    const oldKey = `legacy:http:${createHash('sha256').update(JSON.stringify(layout2)).digest('hex')}`;
    const cache = new DynamoCache({ tableName, clientConfig: localClientConfig(db.endpoint) });
    const record = { v: 1, kind: 'http', response: { statusCode: 200, headers: {}, body: '{"from":"layout 2"}' }, storedAt: Date.now(), age: 0, ttlSeconds: 60 };
    await cache.set(oldKey, record);
    const answer = await invoke(event);
    expect([JSON.parse(answer.body), header(answer, 'X-Cache')]).toEqual([{ from: 'handler' }, 'Miss']);
    expect(handlerSpy).toHaveBeenCalledTimes(1);
  });
});

describe('options', () => {
  it('bad invalidates rules, tag templates and route targets are clear errors at factory time', () => {
    const make = (response: NonNullable<DynamoCacheMiddlewareOptions['response']>) => () => dynamoCache({ tableName: 'app-cache', response });
    expect(make({ invalidates: { 'GET /users/{id}': ['GET /users'] } })).toThrow(/a GET changes nothing/);
    expect(make({ invalidates: { 'PUT users': ['GET /users'] } })).toThrow(/must be "METHOD \/path"/);
    expect(make({ invalidates: { 'PUT /users/{id}': ['POST /users'] } })).toThrow(/only GET responses are stored/);
    expect(make({ invalidates: { 'PUT /users/{id}': { tags: ['user:{userId}'] } } })).toThrow(/names \{userId\}, but there are the parameters \{id\}/);
    expect(make({ invalidates: { 'PUT /users/{id}': { mode: 'soft' as never } } })).toThrow(/mode must be 'expire' or 'stale'/);
    expect(make({ invalidates: { 'PUT /users/{id}': { route: [] } as never } })).toThrow(/did you mean "routes"/);
    expect(make({ routes: { 'GET /users/{id}': { tags: ['user:{name}'] } } })).toThrow(/names \{name\}/);
    expect(make({ routes: { 'GET /users/{id}': { tags: [''] } } })).toThrow(/a tag must not be empty/);
    expect(make({ tags: ['user:{id}'] })).toThrow(/names \{id\}, but there are no route parameters/);
    expect(make({ routeTags: 'yes' as never })).toThrow(InvalidOptionsError);
  });

  it('invalidateRoutes checks its routes', async () => {
    const { cache } = await db.newCache();
    expect(() => invalidateRoutes(cache, 'GET /users' as never)).toThrow(/needs an array of routes/);
    expect(() => invalidateRoutes(cache, ['DELETE /users/1'])).toThrow(/only GET responses are stored/);
    expect(() => invalidateRoutes(cache, ['users'])).toThrow(/must be "METHOD \/path"/);
  });
});

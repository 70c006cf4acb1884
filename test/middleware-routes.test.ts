// Route rules that cannot be bypassed (issue 11, finding 7): a disabled route is never memoized under any
// spelling of its path, behind a catch-all route or without route templates (Function URL, ALB), and per-
// route options apply on every event source.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { useDynalite } from './support/fixtures.ts';
import { HTTP_SOURCES, httpApiEvent, restApiEvent, type HttpSource, type RequestSpec } from './support/http-events.ts';
import { header, json, pathOf, setupMiddy, whoIs, type Handler } from './support/middy-harness.ts';

const db = useDynalite();
const setup = (body: Handler, options: DynamoCacheMiddlewareOptions = {}) => setupMiddy(db, body, options);

afterEach(() => {
  vi.useRealTimers();
});

/** How each source reaches one handler for every path: the usual @middy/http-router set-up. */
const CATCH_ALLS: Array<[string, HttpSource, RequestSpec]> = [
  ['REST behind /{proxy+}', 'API Gateway REST (v1)', { route: '/{proxy+}' }],
  ['REST behind /{proxy+} on a custom domain with a base path', 'API Gateway REST (v1)', { route: '/{proxy+}', domain: 'api.example.com', basePath: '/v1' }],
  ['HTTP API behind ANY /{proxy+}', 'HTTP API (v2)', { route: '/{proxy+}' }],
  ['HTTP API $default on a named stage (the stage prefixes rawPath)', 'HTTP API (v2)', { route: '$default', stage: 'prod' }],
  ['Function URL', 'Function URL', {}],
  ['ALB', 'ALB', {}],
];

/** Every spelling of `/private/report` a client can send. */
const SPELLINGS = ['/private/report', '/private/report/', '//private//report', '/Private/Report', '/PRIVATE/REPORT/', '/private/%72eport', '/private/./report', '/x/../private/report'];

describe.each(CATCH_ALLS)('%s', (_name, source, base) => {
  // A named stage on the execute-api domain prefixes the HTTP API rawPath.
  const event = (path: string, spec: RequestSpec = {}) => HTTP_SOURCES[source]({ ...base, path, ...(base.stage === 'prod' ? { basePath: '/prod' } : {}), ...spec });

  it('a route set to false is never memoized, under any spelling of its path', async () => {
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { report: whoIs(e), path: pathOf(e) }), { response: { routes: { 'GET /private/report': false } } });
    for (const spelling of SPELLINGS) {
      await invoke(event(spelling));
      const again = await invoke(event(spelling));
      expect(header(again, 'X-Cache'), spelling).toBeUndefined();
    }
    expect(handlerSpy).toHaveBeenCalledTimes(2 * SPELLINGS.length);
    // A HEAD follows its GET route.
    await invoke(event('/private/report', { method: 'HEAD' }));
    expect(header(await invoke(event('/Private/Report/', { method: 'HEAD' })), 'X-Cache')).toBeUndefined();
  });

  it('per-route options apply by pattern ({param}), not only to an exact route key', async () => {
    const { invoke, handlerSpy } = await setup(async () => json(200, { ok: true }), { response: { ttlSeconds: 600, routes: { 'GET /items/{id}': { ttlSeconds: 5 } } } });
    vi.useFakeTimers({ toFake: ['Date'] });
    await invoke(event('/items/7'));
    vi.setSystemTime(Date.now() + 3_000);
    expect(header(await invoke(event('/items/7')), 'X-Cache')).toBe('Hit');
    vi.setSystemTime(Date.now() + 3_000); // 6 s: past the route's 5 s, well within the default 600 s
    expect(header(await invoke(event('/items/7')), 'X-Cache')).toBe('Miss');
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('a shared route by pattern shares across identities; its neighbours do not', async () => {
    // `public`: a shared route stores a response to a request with credentials only when it says so (RFC 9111 3.5).
    const { invoke, handlerSpy } = await setup(async (e) => json(200, { path: pathOf(e) }, { 'Cache-Control': 'public' }), { response: { routes: { 'GET /catalog/{proxy+}': { shared: true } } } });
    const as = (user: string) => ({ headers: { authorization: `Bearer ${user}` } });
    await invoke(event('/catalog/shoes/red', as('alice')));
    expect(header(await invoke(event('/catalog/shoes/red', as('bob'))), 'X-Cache')).toBe('Hit');
    await invoke(event('/orders/1', as('alice')));
    expect(header(await invoke(event('/orders/1', as('bob'))), 'X-Cache')).toBe('Miss');
    expect(handlerSpy).toHaveBeenCalledTimes(3);
  });
});

describe('route keys API Gateway gives', () => {
  it('REST: the resource template selects the route whatever the path looks like (base path mapping)', async () => {
    const { invoke, handlerSpy } = await setup(async () => json(200, { ok: true }), { response: { routes: { 'GET /health': false } } });
    await invoke(restApiEvent({ path: '/health', basePath: '/api', route: '/health', domain: 'api.example.com' }));
    await invoke(restApiEvent({ path: '/health', basePath: '/api', route: '/health', domain: 'api.example.com' }));
    expect(handlerSpy).toHaveBeenCalledTimes(2);
  });

  it('HTTP API: ANY and a method-specific route; a route for another method does not apply', async () => {
    const { invoke, handlerSpy } = await setup(async () => json(200, { ok: true }), { response: { routes: { 'ANY /live': false, 'POST /feed': false } } });
    await invoke(httpApiEvent({ path: '/live', route: '/live' }));
    await invoke(httpApiEvent({ path: '/live', route: '/live' }));
    await invoke(httpApiEvent({ path: '/feed', route: '/feed' }));
    const feed = await invoke(httpApiEvent({ path: '/feed', route: '/feed' }));
    expect(header(feed, 'X-Cache')).toBe('Hit');
    expect(handlerSpy).toHaveBeenCalledTimes(3);
  });

  it('a malformed route key is an InvalidOptionsError at factory time', async () => {
    await expect(setup(async () => json(200, {}), { response: { routes: { '/no-method': false } } })).rejects.toThrow(/METHOD \/path/);
  });
});

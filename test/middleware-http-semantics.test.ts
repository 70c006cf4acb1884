// RFC 9110/9111 to the letter, on each event source (issue 11, findings 5, 9, 10 and 11): directives are
// case-insensitive, dates and delta-seconds are parsed strictly, hop-by-hop and proxy authentication fields
// are never stored, ETags agree between HEAD and GET and are never generated for a partial response; plus
// the HTTP-proxy mode and the status headers.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DynamoCacheMiddlewareOptions } from '../src/middleware/dynamo-cache-middleware.ts';
import { useDynalite } from './support/fixtures.ts';
import { HTTP_SOURCES, httpApiEvent, type HttpSource, type RequestSpec } from './support/http-events.ts';
import { header, json, methodOf, setupMiddy, type Handler, type Response } from './support/middy-harness.ts';

const db = useDynalite();
const setup = (body: Handler, options: DynamoCacheMiddlewareOptions = {}) => setupMiddy(db, body, options);

afterEach(() => {
  vi.useRealTimers();
});

/** Runs the same GET twice through a handler answering `response`; resolves the second answer and the handler runs. */
async function twice(source: HttpSource, response: Response, spec: RequestSpec = {}, options: DynamoCacheMiddlewareOptions = {}) {
  const { invoke, handlerSpy } = await setup(async () => structuredClone(response), options);
  const event = () => HTTP_SOURCES[source]({ path: '/doc', ...spec });
  await invoke(event());
  const second = await invoke(event());
  return { second, runs: handlerSpy.mock.calls.length, invoke, event };
}

describe.each(Object.keys(HTTP_SOURCES) as HttpSource[])('%s', (source) => {
  describe('Cache-Control directives are case-insensitive (finding 5)', () => {
    it.each(['Private, max-age=60', 'No-Store', 'NO-CACHE', 'max-age=60, NO-STORE', 'Max-Age=0'])('a response with Cache-Control: %s is not stored', async (cacheControl) => {
      const { second, runs } = await twice(source, json(200, { secret: 1 }, { 'Cache-Control': cacheControl }));
      expect(runs).toBe(2);
      expect(header(second, 'X-Cache')).toBe('Miss');
    });

    it('a response with Pragma: NO-CACHE and no Cache-Control is not stored', async () => {
      const { runs } = await twice(source, json(200, { v: 1 }, { Pragma: 'NO-CACHE' }));
      expect(runs).toBe(2);
    });

    it('a request with Cache-Control: NO-STORE is not stored', async () => {
      const { invoke, handlerSpy } = await setup(async () => json(200, { v: 1 }));
      await invoke(HTTP_SOURCES[source]({ path: '/doc', headers: { 'Cache-Control': 'NO-STORE' } }));
      await invoke(HTTP_SOURCES[source]({ path: '/doc' }));
      expect(handlerSpy).toHaveBeenCalledTimes(2);
    });

    it('S-MAXAGE bounds the stored TTL like s-maxage', async () => {
      const { invoke, handlerSpy } = await setup(async () => json(200, { v: 1 }, { 'Cache-Control': 'PUBLIC, S-MAXAGE=2' }), { response: { ttlSeconds: 600 } });
      vi.useFakeTimers({ toFake: ['Date'] });
      await invoke(HTTP_SOURCES[source]({ path: '/doc' }));
      vi.setSystemTime(Date.now() + 3_000);
      await invoke(HTTP_SOURCES[source]({ path: '/doc' }));
      expect(handlerSpy).toHaveBeenCalledTimes(2);
    });
  });

  describe('strict HTTP-date and delta-seconds (finding 9)', () => {
    it.each([
      ['UTC for GMT', 'Sun, 06 Nov 2050 02:01:18 UTC'],
      ['no comma', 'Sun 06 Nov 2050 02:01:18 GMT'],
      ['dashes', 'Sun, 06-Nov-2050 02:01:18 GMT'],
      ['a one-digit hour', 'Sun, 06 Nov 2050 2:01:18 GMT'],
    ])('an Expires with %s is invalid, so already stale: not stored', async (_name, expires) => {
      const { runs } = await twice(source, json(200, { v: 1 }, { Expires: expires }));
      expect(runs).toBe(2);
    });

    it.each([
      ['IMF-fixdate', 'Sun, 06 Nov 2050 02:01:18 GMT'],
      ['rfc850-date', 'Sunday, 06-Nov-50 02:01:18 GMT'],
      ['asctime-date', 'Sun Nov  6 02:01:18 2050'],
    ])('an Expires in the future as an %s is valid: stored', async (_name, expires) => {
      const { second, runs } = await twice(source, json(200, { v: 1 }, { Expires: expires }));
      expect(runs).toBe(1);
      expect(header(second, 'X-Cache')).toBe('Hit');
    });

    it('Age: 7200.0 is not delta-seconds, so it is ignored: a max-age=3600 response stays fresh and is stored', async () => {
      const { second, runs } = await twice(source, json(200, { v: 1 }, { 'Cache-Control': 'max-age=3600', Age: '7200.0' }));
      expect(runs).toBe(1);
      expect(Number(header(second, 'Age'))).toBeLessThan(5);
    });

    it('max-age=60.5 is invalid freshness: stale, not stored', async () => {
      const { runs } = await twice(source, json(200, { v: 1 }, { 'Cache-Control': 'max-age=60.5' }));
      expect(runs).toBe(2);
    });
  });

  it('Proxy-Authenticate, Proxy-Authentication-Info, hop-by-hop fields and fields named in Connection are never stored or replayed (finding 10)', async () => {
    const fields = {
      'Proxy-Authenticate': 'Basic realm="corp-proxy"',
      'Proxy-Authentication-Info': 'nextnonce="abc"',
      Connection: 'close, X-Session-Hint',
      'X-Session-Hint': 'user=alice',
      'Keep-Alive': 'timeout=5',
      'Proxy-Connection': 'keep-alive',
      TE: 'trailers',
      Upgrade: 'h2c',
    };
    const { second } = await twice(source, json(200, { v: 1 }, { ...fields, 'X-Kept': 'yes' }));
    expect(header(second, 'X-Cache')).toBe('Hit');
    for (const name of Object.keys(fields)) expect(header(second, name), name).toBeUndefined();
    expect(header(second, 'X-Kept')).toBe('yes');
  });

  describe('ETags (finding 11)', () => {
    const page = async (e: any) => ({ statusCode: 200, headers: { 'content-type': 'text/plain' }, body: methodOf(e) === 'HEAD' ? '' : 'the page' });

    it('a HEAD carries the same ETag as its GET', async () => {
      const { invoke } = await setup(page);
      const get = await invoke(HTTP_SOURCES[source]({ path: '/page' }));
      const head = await invoke(HTTP_SOURCES[source]({ path: '/page', method: 'HEAD' }));
      expect(header(get, 'ETag')).toMatch(/^"[\w-]+"$/);
      expect(header(head, 'ETag')).toBe(header(get, 'ETag'));
      expect(head.body).toBe('');
      const conditional = await invoke(HTTP_SOURCES[source]({ path: '/page', method: 'HEAD', headers: { 'If-None-Match': header(get, 'ETag')! } }));
      expect(conditional.statusCode).toBe(304);
    });

    it('a HEAD answered without content before any GET gets no generated ETag (not one of an empty body)', async () => {
      const { invoke } = await setup(page);
      const head = await invoke(HTTP_SOURCES[source]({ path: '/page', method: 'HEAD' }));
      expect(header(head, 'ETag')).toBeUndefined();
      const get = await invoke(HTTP_SOURCES[source]({ path: '/page' }));
      const headAfter = await invoke(HTTP_SOURCES[source]({ path: '/page', method: 'HEAD' }));
      expect(header(headAfter, 'ETag')).toBe(header(get, 'ETag'));
    });

    it('a HEAD whose handler answers with the content gets the ETag its GET gets', async () => {
      const { invoke } = await setup(async () => ({ statusCode: 200, body: 'the page' }));
      const head = await invoke(HTTP_SOURCES[source]({ path: '/page', method: 'HEAD' }));
      const get = await invoke(HTTP_SOURCES[source]({ path: '/page' }));
      expect(header(head, 'ETag')).toBe(header(get, 'ETag'));
    });

    it('a 206 gets no generated strong ETag', async () => {
      const { invoke } = await setup(async () => ({ statusCode: 206, headers: { 'Content-Range': 'bytes 0-3/8' }, body: 'the ' }));
      const partial = await invoke(HTTP_SOURCES[source]({ path: '/page', headers: { Range: 'bytes=0-3' } }));
      expect(partial.statusCode).toBe(206);
      expect(header(partial, 'ETag')).toBeUndefined();
    });
  });
});

describe('HTTP-proxy mode (response.requireFreshness)', () => {
  it('stores only responses with explicit freshness', async () => {
    const options = { response: { requireFreshness: true } };
    expect((await twice('HTTP API (v2)', json(200, { v: 1 }), {}, options)).runs).toBe(2);
    expect((await twice('HTTP API (v2)', json(200, { v: 1 }, { 'Cache-Control': 'max-age=30' }), {}, options)).runs).toBe(1);
    expect((await twice('HTTP API (v2)', json(200, { v: 1 }, { 'Cache-Control': 's-maxage=30' }), {}, options)).runs).toBe(1);
    expect((await twice('HTTP API (v2)', json(200, { v: 1 }, { Expires: new Date(Date.now() + 60_000).toUTCString() }), {}, options)).runs).toBe(1);
  });

  it('by default a response with no freshness information is stored for the route TTL', async () => {
    expect((await twice('HTTP API (v2)', json(200, { v: 1 }))).runs).toBe(1);
  });
});

describe('status headers (response.statusHeaders)', () => {
  it('RFC 9211 Cache-Status on a miss and a hit', async () => {
    const { invoke } = await setup(async () => json(200, { v: 1 }, { 'Cache-Control': 'max-age=30' }), { response: { statusHeaders: { cacheStatus: true } } });
    vi.useFakeTimers({ toFake: ['Date'] });
    const miss = await invoke(httpApiEvent({ path: '/s' }));
    vi.setSystemTime(Date.now() + 10_000);
    const hit = await invoke(httpApiEvent({ path: '/s' }));
    expect(header(miss, 'Cache-Status')).toBe('dynamo-cache; fwd=uri-miss; stored');
    expect(header(hit, 'Cache-Status')).toBe('dynamo-cache; hit; ttl=20');
    expect(header(hit, 'X-Cache')).toBe('Hit');
  });

  it('a response that is not stored says so; a named cache uses its name', async () => {
    const { invoke } = await setup(async () => json(200, { v: 1 }, { 'Cache-Control': 'no-store' }), { response: { statusHeaders: { cacheStatus: 'users-api' } } });
    expect(header(await invoke(httpApiEvent({ path: '/s' })), 'Cache-Status')).toBe('users-api; fwd=uri-miss');
  });

  it('a client no-cache honoured is fwd=request', async () => {
    const { invoke } = await setup(async () => json(200, { v: 1 }), { response: { honorClientNoCache: true, statusHeaders: { cacheStatus: true } } });
    const response = await invoke(httpApiEvent({ path: '/s', headers: { 'cache-control': 'No-Cache' } }));
    expect(header(response, 'Cache-Status')).toBe('dynamo-cache; fwd=request; stored');
  });

  it('X-Cache and Age can be turned off, so a hit on a shared route tells an outsider nothing', async () => {
    const { invoke, handlerSpy } = await setup(async () => json(200, { v: 1 }), { response: { shared: true, statusHeaders: { xCache: false, age: false } } });
    await invoke(httpApiEvent({ path: '/s' }));
    const hit = await invoke(httpApiEvent({ path: '/s' }));
    expect(handlerSpy).toHaveBeenCalledTimes(1);
    expect(header(hit, 'X-Cache')).toBeUndefined();
    expect(header(hit, 'Age')).toBeUndefined();
    expect(header(hit, 'Cache-Status')).toBeUndefined();
  });

  it('bad status header options are an InvalidOptionsError', async () => {
    await expect(setup(async () => json(200, {}), { response: { statusHeaders: { cacheStatus: 'two words' } } })).rejects.toThrow(/RFC 8941 token/);
    await expect(setup(async () => json(200, {}), { response: { statusHeaders: { xCache: 'no' as never } } })).rejects.toThrow(/xCache/);
    await expect(setup(async () => json(200, {}), { response: { statusCodes: [200, 206] } })).rejects.toThrow(/206/);
  });
});
